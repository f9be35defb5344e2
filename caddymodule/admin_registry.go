package caddymodule

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr"
)

// dcrRegistries is how admin.api.dcr finds the registries it shows: each dcr handler running
// in an HTTP server publishes its store and registrar when it is provisioned and withdraws
// them in Cleanup, as it does its profile for dcr_discovery (see dcrProfiles). Caddy
// provisions a new config before it cleans up the old one, so during a reload one server's
// endpoint is published twice for a moment; the latest publication wins.
var dcrRegistries registryDirectory

type registryDirectory struct {
	mu      sync.Mutex
	seq     uint64
	entries []*publishedRegistry
}

// publishedRegistry is one dcr handler as the admin API sees it.
type publishedRegistry struct {
	seq uint64
	// Server is the name of the HTTP server (srv0, ...) and Endpoint the handler's path.
	Server, Endpoint string
	// RegistrarID is the registrar's module ID (dcr.registrars.local, ...).
	RegistrarID string
	Store       dcr.Store
	Registrar   dcr.Registrar
	// Retention bounds the history the handler keeps.
	Retention dcr.HistoryRetention
	audit     *auditor
	// viaServer deletes a client with the registrar inside the handler's route, so that an
	// upstream registrar reaches its backend (see admin_backend.go); nil outside a server.
	viaServer func(ctx context.Context, rec *dcr.Registration) error
}

// localRegistrar reports whether the registrar keeps the registry itself, so that deleting a
// record is the whole deletion (an upstream registrar also has a client in the backend).
func (e *publishedRegistry) localRegistrar() bool {
	return e.RegistrarID == "dcr.registrars.local"
}

// publishHandler publishes a provisioned handler; it returns the function that withdraws it.
// A handler outside an HTTP server (embedded, in-process tests) publishes nothing.
func (d *registryDirectory) publishHandler(ctx caddy.Context, h *Handler) (withdraw func()) {
	srv := serverOf(ctx)
	if srv == nil {
		return func() {}
	}
	id := ""
	if m, ok := h.registrar.(caddy.Module); ok {
		id = string(m.CaddyModule().ID)
	}
	h.operator = &operatorRoute{srv: srv}
	return d.add(&publishedRegistry{Server: srv.Name(), Endpoint: h.Endpoint, RegistrarID: id,
		Store: h.store, Registrar: h.registrar, Retention: h.historyRetention(), audit: h.audit,
		viaServer: func(ctx context.Context, rec *dcr.Registration) error {
			return h.operator.deleteThroughServer(ctx, h, rec)
		}})
}

// add records e and returns the function that withdraws it (once).
func (d *registryDirectory) add(e *publishedRegistry) (withdraw func()) {
	d.mu.Lock()
	d.seq++
	e.seq = d.seq
	d.entries = append(d.entries, e)
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.entries = slices.DeleteFunc(d.entries, func(x *publishedRegistry) bool { return x == e })
		})
	}
}

// current returns one entry per (server, endpoint), the latest published, sorted.
func (d *registryDirectory) current() []*publishedRegistry {
	d.mu.Lock()
	defer d.mu.Unlock()
	latest := map[[2]string]*publishedRegistry{}
	for _, e := range d.entries {
		k := [2]string{e.Server, e.Endpoint}
		if cur := latest[k]; cur == nil || e.seq > cur.seq {
			latest[k] = e
		}
	}
	out := make([]*publishedRegistry, 0, len(latest))
	for _, e := range latest {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *publishedRegistry) int {
		if c := strings.Compare(a.Server, b.Server); c != 0 {
			return c
		}
		return strings.Compare(a.Endpoint, b.Endpoint)
	})
	return out
}

// selectRegistry picks the registry a request means: the only one, or the one its endpoint
// (and, when two servers share an endpoint, server) parameters name.
func (d *registryDirectory) selectRegistry(server, endpoint string) (*publishedRegistry, error) {
	var matches []*publishedRegistry
	for _, e := range d.current() {
		if (server == "" || e.Server == server) && (endpoint == "" || e.Endpoint == endpoint) {
			matches = append(matches, e)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		if server == "" && endpoint == "" {
			return nil, errNoRegistry
		}
		return nil, fmt.Errorf("no dcr handler with server %q and endpoint %q (GET /dcr/endpoints lists them)", server, endpoint)
	default:
		return nil, fmt.Errorf("%d dcr handlers match; choose one with ?endpoint= (and ?server=) (GET /dcr/endpoints lists them)", len(matches))
	}
}

var errNoRegistry = fmt.Errorf("no dcr handler is running in the current config")
