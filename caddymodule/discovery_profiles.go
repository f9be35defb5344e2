package caddymodule

import (
	"reflect"
	"slices"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dcrgate/dcrgate/dcr/obprofile"
)

// dcrProfiles is how dcr_discovery learns what the dcr handler of its own deployment enforces,
// without the operator writing the OB profile twice. Each dcr handler publishes its effective
// profile (defaults filled) and endpoint when it is provisioned and withdraws them in Cleanup;
// dcr_discovery looks them up per request.
//
// An entry is keyed by the *caddyhttp.Server the handler was provisioned in (Caddy puts it in
// the provisioning context under caddyhttp.ServerCtxKey, and in every request's context). A
// config load makes new Server values, so during a reload the old and the new config never
// see each other's profile, and the entries of a config go away with its Cleanup: the
// bookkeeping a caddy.UsagePool does across reloads is here the Server pointer itself. Within
// one server (several sites on one port), dcr_discovery takes the dcr handler whose endpoint is
// the path of a configured registration_endpoint, then the one nearest to it in the config tree
// (the longest chain of common parent modules: the same site's subroute beats another site's),
// then the first provisioned, which is the first in the route.
var dcrProfiles profileRegistry

type profileRegistry struct {
	mu      sync.Mutex
	entries []*publishedProfile
}

// publishedProfile is what one dcr handler tells dcr_discovery.
type publishedProfile struct {
	server *caddyhttp.Server
	// scope is the chain of modules the handler was provisioned under (the http app, the
	// subroutes of its site and handle blocks), outermost first.
	scope []caddy.Module
	// Endpoint and PublicURL are the handler's (PublicURL may be empty).
	Endpoint, PublicURL string
	// Profile is the effective OB profile, defaults filled; never modified after publishing.
	Profile obprofile.Config
}

// publish records the profile of the dcr handler provisioned with ctx and returns the function
// that withdraws it. A handler outside an HTTP server (embedded, in-process tests) publishes
// nothing.
func (reg *profileRegistry) publish(ctx caddy.Context, endpoint, publicURL string, profile obprofile.Config) (withdraw func()) {
	srv := serverOf(ctx)
	if srv == nil {
		return func() {}
	}
	return reg.add(&publishedProfile{server: srv, scope: parentModules(ctx), Endpoint: endpoint, PublicURL: publicURL, Profile: profile})
}

// add records e and returns the function that withdraws it (once).
func (reg *profileRegistry) add(e *publishedProfile) (withdraw func()) {
	reg.mu.Lock()
	reg.entries = append(reg.entries, e)
	reg.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			reg.mu.Lock()
			defer reg.mu.Unlock()
			reg.entries = slices.DeleteFunc(reg.entries, func(x *publishedProfile) bool { return x == e })
		})
	}
}

// lookup finds the dcr handler a discovery document in server, provisioned under scope, speaks
// for; endpointPath, when not empty, is the path of the configured registration_endpoint.
// It returns nil when the server has no dcr handler.
func (reg *profileRegistry) lookup(server *caddyhttp.Server, scope []caddy.Module, endpointPath string) *publishedProfile {
	if server == nil {
		return nil
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var best *publishedProfile
	bestRank := -1
	for _, e := range reg.entries {
		if e.server != server {
			continue
		}
		rank := commonPrefix(e.scope, scope)
		if endpointPath != "" && e.Endpoint == endpointPath {
			rank += 1 << 16 // a matching endpoint outranks any nesting depth
		}
		if rank > bestRank {
			best, bestRank = e, rank
		}
	}
	return best
}

// serverOf is the HTTP server a module is being provisioned in, if any.
func serverOf(ctx caddy.Context) *caddyhttp.Server {
	if ctx.Context == nil {
		return nil
	}
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return srv
}

// parentModules is the chain of modules above the one being provisioned with ctx.
func parentModules(ctx caddy.Context) []caddy.Module {
	mods := ctx.Modules()
	if len(mods) > 0 {
		mods = mods[:len(mods)-1]
	}
	return mods
}

// commonPrefix counts the leading modules a and b share (the same instances).
func commonPrefix(a, b []caddy.Module) int {
	n := 0
	for n < len(a) && n < len(b) && sameInstance(a[n], b[n]) {
		n++
	}
	return n
}

// sameInstance compares module instances by identity. Modules are pointers in practice; a
// value module (whose == could panic on an uncomparable type) never counts as shared.
func sameInstance(a, b caddy.Module) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Kind() == reflect.Pointer && vb.Kind() == reflect.Pointer && va.Type() == vb.Type() && va.Pointer() == vb.Pointer()
}
