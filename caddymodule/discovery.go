package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obprofile"
	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
	"github.com/dcrgate/dcrgate/internal/recorder"
)

func init() {
	caddy.RegisterModule(Discovery{})
	// Not a handler directive: its argument is the document's path, not a request matcher.
	httpcaddyfile.RegisterDirective("dcr_discovery", parseDiscoveryCaddyfile)
	// Like dcr, it runs ahead of handle, route, respond and reverse_proxy: it must wrap the
	// handler that answers the discovery request, and a catch-all handle must not shadow it.
	httpcaddyfile.RegisterDirectiveOrder("dcr_discovery", httpcaddyfile.Before, "invoke")
}

// Defaults of the discovery rewrite.
const (
	DefaultDiscoveryPath = "/.well-known/openid-configuration"
	// DefaultDiscoveryRegistration is the registration_endpoint published when the server has
	// no dcr handler to take it from (the dcr handler's own default).
	DefaultDiscoveryRegistration = "https://{http.request.hostport}/register"
	// DefaultDiscoveryMaxSize bounds the backend's discovery document (they are a few KiB).
	DefaultDiscoveryMaxSize = 256 << 10
)

// Discovery passes the backend's OpenID Provider Metadata (its discovery document) through,
// rewritten to describe what the gateway enforces: a TPP that reads it picks what dcr accepts.
//
// For every field the OB profile governs the published value is the dcr handler's profile,
// intersected with the backend's value where the backend publishes the field, and the
// profile's value where it does not: registration_endpoint (the dcr endpoint),
// token_endpoint_auth_methods_supported, token_endpoint_auth_signing_alg_values_supported
// (only with private_key_jwt or client_secret_jwt published), request_object_signing_alg_values_supported,
// id_token_signing_alg_values_supported, grant_types_supported, response_types_supported,
// scopes_supported, tls_client_certificate_bound_access_tokens (true unless the backend says
// false), and, when the CIBA grant is published, backchannel_token_delivery_modes_supported,
// backchannel_authentication_request_signing_alg_values_supported and
// backchannel_user_code_parameter_supported (false). Lists keep the profile's order. A field
// with nothing in common means no registration could work: the document answers 502 with an
// RFC 7591 error naming the field and both lists, and the log says so once.
//
// The profile is the one the dcr handler of the same server enforces: each dcr handler
// publishes its effective profile when provisioned (see dcrProfiles), so no option repeats it.
// With several, the one whose endpoint is the configured registration_endpoint's path wins,
// then the one nearest in the config (the same site). A server without a dcr handler gets the
// OB profile's defaults, with a warning.
type Discovery struct {
	// Path of the discovery document; default /.well-known/openid-configuration.
	Path string `json:"path,omitempty"`
	// RegistrationEndpoint is the advertised registration_endpoint; placeholders are
	// resolved per request, with the request's replacer (see internal/placeholder). Default: the dcr handler's public_url, or
	// https://{http.request.hostport}{its endpoint}.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// AuthMethods, when set, narrows the published token_endpoint_auth_methods_supported to
	// these (among the dcr profile's). Deprecated: set the dcr handler's profile instead.
	AuthMethods []string `json:"token_endpoint_auth_methods,omitempty"`
	// SigningAlgs, when set, narrows every published signing algorithm list to these (among
	// the dcr profile's). Deprecated: set the dcr handler's profile instead.
	SigningAlgs []string `json:"signing_algs,omitempty"`
	// MaxSize bounds the document in bytes; default 256 KiB.
	MaxSize int64 `json:"max_size,omitempty"`

	logger *zap.Logger
	// scope is the chain of modules this handler was provisioned under (see dcrProfiles).
	scope []caddy.Module
	// logged keeps the problems already logged, so each is logged once, not per request.
	logged *onceSet
}

// CaddyModule returns the Caddy module information.
func (Discovery) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.dcr_discovery",
		New: func() caddy.Module { return new(Discovery) },
	}
}

// Provision sets the defaults.
func (d *Discovery) Provision(ctx caddy.Context) error {
	d.logger = ctx.Logger()
	if d.logger == nil {
		d.logger = zap.NewNop()
	}
	d.scope = parentModules(ctx)
	d.logged = new(onceSet)
	if d.Path == "" {
		d.Path = DefaultDiscoveryPath
	}
	if d.MaxSize == 0 {
		d.MaxSize = DefaultDiscoveryMaxSize
	}
	if len(d.AuthMethods) > 0 || len(d.SigningAlgs) > 0 {
		d.logger.Warn("dcr_discovery: token_endpoint_auth_methods and signing_algs are deprecated and will be removed: "+
			"discovery publishes the dcr handler's OB profile; narrow it there (dcr { profile { ... } })",
			zap.Strings("token_endpoint_auth_methods", d.AuthMethods), zap.Strings("signing_algs", d.SigningAlgs))
	}
	return nil
}

// Validate checks the configuration.
func (d *Discovery) Validate() error {
	if d.Path == "" || d.Path[0] != '/' {
		return errors.New("dcr_discovery: path must start with /")
	}
	if d.MaxSize < 0 {
		return errors.New("dcr_discovery: max_size must not be negative")
	}
	// The overrides name values of the profile, so they follow its rules (no "none", no HS*).
	overrides := obprofile.Config{AuthMethods: d.AuthMethods, SigningAlgs: d.SigningAlgs}
	if err := overrides.Validate(); err != nil {
		return fmt.Errorf("dcr_discovery: %w", err)
	}
	return nil
}

// ServeHTTP rewrites the discovery document; every other request passes untouched.
func (d *Discovery) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path != d.Path || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return next.ServeHTTP(w, r)
	}
	// The document is rewritten, so ask for it unencoded.
	req := r.Clone(r.Context())
	req.Header.Del("Accept-Encoding")
	rec := recorder.New(d.MaxSize)
	if err := next.ServeHTTP(rec, req); err != nil {
		return err
	}
	if rec.Overflowed() {
		d.fail(w, errors.New("dcr_discovery: the backend's discovery document is larger than max_size"))
		return nil
	}
	status, body := rec.Status(), rec.Body()
	if status == http.StatusOK && isJSONResponse(rec.Header()) {
		out, err := d.rewrite(r, body)
		if err != nil {
			d.fail(w, err)
			return nil
		}
		body = out
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.Header().Del("Etag") // the backend's tag is for the document before the rewrite
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// fail answers a document that cannot be published with an RFC 7591 error, logged once.
func (d *Discovery) fail(w http.ResponseWriter, err error) {
	if d.logged.first(err.Error()) {
		d.logger.Error("the discovery document cannot be published", zap.Error(err))
	}
	e := &dcr.Error{Status: http.StatusBadGateway, Code: dcr.CodeServerError, Description: err.Error()}
	e.Write(w)
}

// warn logs a warning the first time it occurs.
func (d *Discovery) warn(msg string) {
	if d.logged.first(msg) {
		d.logger.Warn(msg)
	}
}

// rewrite publishes the governed fields of the backend's document doc.
func (d *Discovery) rewrite(r *http.Request, doc []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil || m == nil {
		return nil, errors.New("dcr_discovery: the backend's discovery document is not a JSON object")
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	configured := ""
	if d.RegistrationEndpoint != "" {
		configured = repl.ReplaceKnown(d.RegistrationEndpoint, "")
	}
	server, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	pub := dcrProfiles.lookup(server, d.scope, endpointPath(configured))

	var profile obprofile.Config
	if pub != nil {
		profile = pub.Profile
	} else {
		d.warn("dcr_discovery: no dcr handler in this server, so the discovery document publishes the OB profile's defaults; " +
			"put dcr_discovery in the site of the dcr handler whose registrations it describes")
		profile.SetDefaults()
	}
	if err := d.narrow(&profile); err != nil {
		return nil, err
	}

	switch {
	case configured != "":
		m["registration_endpoint"] = configured
	case pub != nil && pub.PublicURL != "":
		m["registration_endpoint"] = strings.TrimSuffix(pub.PublicURL, "/") // as dcr builds registration_client_uri
	case pub != nil:
		m["registration_endpoint"] = "https://" + r.Host + pub.Endpoint
	default:
		m["registration_endpoint"] = repl.ReplaceKnown(DefaultDiscoveryRegistration, "")
	}
	warnings, err := applyProfile(m, &profile)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		d.warn("dcr_discovery: " + w)
	}
	return json.Marshal(m)
}

// narrow applies the deprecated overrides: they can only take values out of the profile, since
// publishing a value dcr refuses would send clients to certain failure.
func (d *Discovery) narrow(p *obprofile.Config) error {
	for _, o := range []struct {
		option   string
		override []string
		profile  *[]string
	}{
		{"token_endpoint_auth_methods", d.AuthMethods, &p.AuthMethods},
		{"signing_algs", d.SigningAlgs, &p.SigningAlgs},
	} {
		if len(o.override) == 0 {
			continue
		}
		kept := intersectLists(o.override, *o.profile, exact)
		if len(kept) == 0 {
			return fmt.Errorf("dcr_discovery: %s %s has nothing in common with the dcr handler's profile (%s)",
				o.option, strings.Join(o.override, " "), strings.Join(*o.profile, ", "))
		}
		if len(kept) < len(o.override) {
			d.warn(fmt.Sprintf("dcr_discovery: %s lists values the dcr handler refuses; they are not published (published: %s; the dcr profile: %s)",
				o.option, strings.Join(kept, ", "), strings.Join(*o.profile, ", ")))
		}
		*o.profile = kept
	}
	return nil
}

// endpointPath is the path of a registration endpoint URL, as dcr handlers keep theirs.
func endpointPath(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// onceSet remembers which messages were seen, so that a problem of every request is logged
// at its first occurrence only. It is bounded: past onceSetMax messages it starts afresh.
type onceSet struct {
	mu   sync.Mutex
	seen map[string]bool
}

const onceSetMax = 64

// first reports whether msg is new, and remembers it.
func (s *onceSet) first(msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[msg] {
		return false
	}
	if s.seen == nil || len(s.seen) >= onceSetMax {
		s.seen = map[string]bool{}
	}
	s.seen[msg] = true
	return true
}

func isJSONResponse(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && (mt == "application/json" || mt == "application/jrd+json")
}

func parseDiscoveryCaddyfile(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	d := new(Discovery)
	if err := d.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return h.NewRoute(nil, d), nil
}

// UnmarshalCaddyfile sets up the discovery rewrite. Syntax:
//
//	dcr_discovery [<path>] {
//	    path <path>                               # default /.well-known/openid-configuration
//	    registration_endpoint <url>               # default the dcr handler's public_url or https://{http.request.hostport}<endpoint>
//	    max_size <size>                           # largest backend document; default 256KiB
//	    token_endpoint_auth_methods <method>...   # deprecated: narrows the published methods
//	    signing_algs <alg>...                     # deprecated: narrows the published algorithms
//	}
//
// Put it in the site of the dcr handler, which proxies to the backend; it answers only
// GET/HEAD of its path. Without options (a bare `dcr_discovery`), the document publishes
// what that dcr handler's OB profile accepts and the backend supports. The values the
// profile governs are configured once, in `dcr { profile { ... } }`; the two deprecated
// options can only narrow them, and without arguments (they used to mean the OB profile's
// defaults) they do nothing but warn.
func (d *Discovery) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // the directive name
	if disp.NextArg() {
		d.Path = disp.Val()
		if disp.NextArg() {
			return disp.ArgErr()
		}
	}
	for nesting := disp.Nesting(); disp.NextBlock(nesting); {
		switch opt := disp.Val(); opt {
		case "path":
			if !disp.Args(&d.Path) || disp.NextArg() {
				return disp.ArgErr()
			}
		case "registration_endpoint":
			if !disp.Args(&d.RegistrationEndpoint) || disp.NextArg() {
				return disp.ArgErr()
			}
		case "token_endpoint_auth_methods", "signing_algs":
			args := disp.RemainingArgs()
			if len(args) == 0 {
				caddy.Log().Named("config.adapter.caddyfile").Warn("dcr_discovery: " + opt +
					" without arguments is deprecated and does nothing: the document publishes the dcr handler's OB profile; remove the line")
				continue
			}
			if opt == "signing_algs" {
				d.SigningAlgs = args
			} else {
				d.AuthMethods = args
			}
		case "max_size":
			var v string
			if !disp.Args(&v) || disp.NextArg() {
				return disp.ArgErr()
			}
			n, err := caddyfileargs.ParseSize(v)
			if err != nil {
				return disp.Errf("max_size: %v", err)
			}
			d.MaxSize = n
		default:
			return disp.Errf("unknown dcr_discovery option %q", disp.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Discovery)(nil)
	_ caddy.Validator             = (*Discovery)(nil)
	_ caddyhttp.MiddlewareHandler = (*Discovery)(nil)
	_ caddyfile.Unmarshaler       = (*Discovery)(nil)
)
