package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dcrgate/dcrgate/dcr/obprofile"
	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
)

func init() {
	caddy.RegisterModule(Discovery{})
	httpcaddyfile.RegisterHandlerDirective("dcr_discovery", parseDiscoveryCaddyfile)
	// Like dcr, it runs ahead of handle, route, respond and reverse_proxy: it must wrap the
	// handler that answers the discovery request, and a catch-all handle must not shadow it.
	httpcaddyfile.RegisterDirectiveOrder("dcr_discovery", httpcaddyfile.Before, "invoke")
}

// Defaults of the discovery rewrite.
const (
	DefaultDiscoveryPath         = "/.well-known/openid-configuration"
	DefaultDiscoveryRegistration = "https://{http.request.hostport}/register"
	// DefaultDiscoveryMaxSize bounds the backend's discovery document (they are a few KiB).
	DefaultDiscoveryMaxSize = 256 << 10
)

// Discovery passes the backend's OpenID Provider Metadata (its discovery document) through
// with registration_endpoint pointing at the gateway's DCR endpoint, so that TPPs that
// discover the registration endpoint register through dcrgate, never at the backend. When
// configured, the advertised token endpoint auth methods and signing algorithms are trimmed
// to what the gateway's OB profile accepts (a TPP should not be offered what dcr refuses).
type Discovery struct {
	// Path of the discovery document; default /.well-known/openid-configuration.
	Path string `json:"path,omitempty"`
	// RegistrationEndpoint is the advertised registration_endpoint; placeholders are
	// resolved per request. Default https://{http.request.hostport}/register.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// AuthMethods, when set, trims token_endpoint_auth_methods_supported to these.
	AuthMethods []string `json:"token_endpoint_auth_methods,omitempty"`
	// SigningAlgs, when set, trims the token endpoint auth, ID token and request object
	// signing algorithms advertised to these.
	SigningAlgs []string `json:"signing_algs,omitempty"`
	// MaxSize bounds the document in bytes; default 256 KiB.
	MaxSize int64 `json:"max_size,omitempty"`
}

// signingAlgFields are the advertised algorithm lists the OB profile's signing_algs govern.
var signingAlgFields = []string{
	"token_endpoint_auth_signing_alg_values_supported",
	"id_token_signing_alg_values_supported",
	"request_object_signing_alg_values_supported",
}

// CaddyModule returns the Caddy module information.
func (Discovery) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.dcr_discovery",
		New: func() caddy.Module { return new(Discovery) },
	}
}

// Provision sets the defaults.
func (d *Discovery) Provision(caddy.Context) error {
	if d.Path == "" {
		d.Path = DefaultDiscoveryPath
	}
	if d.RegistrationEndpoint == "" {
		d.RegistrationEndpoint = DefaultDiscoveryRegistration
	}
	if d.MaxSize == 0 {
		d.MaxSize = DefaultDiscoveryMaxSize
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
	rec := &discoveryRecorder{header: http.Header{}, limit: d.MaxSize}
	if err := next.ServeHTTP(rec, req); err != nil {
		return err
	}
	if rec.overflow {
		return caddyhttp.Error(http.StatusBadGateway, errors.New("dcr_discovery: the backend's discovery document is larger than max_size"))
	}
	status, body := rec.status, rec.body.Bytes()
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusOK && isJSONResponse(rec.header) {
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if repl == nil {
			repl = caddy.NewReplacer()
		}
		out, err := d.rewrite(body, repl.ReplaceAll(d.RegistrationEndpoint, ""))
		if err != nil {
			return caddyhttp.Error(http.StatusBadGateway, err)
		}
		body = out
	}
	for k, vs := range rec.header {
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

// rewrite sets registration_endpoint and trims the advertised methods and algorithms.
func (d *Discovery) rewrite(doc []byte, registrationEndpoint string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil || m == nil {
		return nil, errors.New("dcr_discovery: the backend's discovery document is not a JSON object")
	}
	m["registration_endpoint"] = registrationEndpoint
	if len(d.AuthMethods) > 0 {
		trimList(m, "token_endpoint_auth_methods_supported", d.AuthMethods)
	}
	if len(d.SigningAlgs) > 0 {
		for _, f := range signingAlgFields {
			trimList(m, f, d.SigningAlgs)
		}
	}
	return json.Marshal(m)
}

// trimList keeps the entries of the advertised list m[field] that allowed contains, in the
// backend's order; a missing field stays missing.
func trimList(m map[string]any, field string, allowed []string) {
	l, ok := m[field].([]any)
	if !ok {
		return
	}
	out := make([]any, 0, len(l))
	for _, v := range l {
		if s, ok := v.(string); ok && slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	m[field] = out
}

func isJSONResponse(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && (mt == "application/json" || mt == "application/jrd+json")
}

// discoveryRecorder keeps the backend's answer, at most limit bytes of it.
type discoveryRecorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int64
	overflow bool
}

func (r *discoveryRecorder) Header() http.Header { return r.header }

func (r *discoveryRecorder) WriteHeader(status int) {
	if r.status == 0 && status >= 200 {
		r.status = status
	}
}

func (r *discoveryRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if int64(r.body.Len())+int64(len(p)) > r.limit {
		r.overflow = true
		return 0, errors.New("discovery document too large")
	}
	return r.body.Write(p)
}

func parseDiscoveryCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(Discovery)
	err := d.UnmarshalCaddyfile(h.Dispenser)
	return d, err
}

// UnmarshalCaddyfile sets up the discovery rewrite. Syntax:
//
//	dcr_discovery [<path>] {
//	    path <path>                               # default /.well-known/openid-configuration
//	    registration_endpoint <url>               # default https://{http.request.hostport}/register
//	    token_endpoint_auth_methods [<method>...] # trim to these; no arguments: the OB profile's defaults
//	    signing_algs [<alg>...]                   # trim to these; no arguments: the OB profile's defaults
//	    max_size <size>                           # largest backend document; default 256KiB
//	}
//
// Put it in the site that proxies to the backend; it answers only GET/HEAD of its path.
func (d *Discovery) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // the directive name
	if disp.NextArg() {
		d.Path = disp.Val()
		if disp.NextArg() {
			return disp.ArgErr()
		}
	}
	var defaults obprofile.Config
	defaults.SetDefaults()
	for nesting := disp.Nesting(); disp.NextBlock(nesting); {
		switch disp.Val() {
		case "path":
			if !disp.Args(&d.Path) || disp.NextArg() {
				return disp.ArgErr()
			}
		case "registration_endpoint":
			if !disp.Args(&d.RegistrationEndpoint) || disp.NextArg() {
				return disp.ArgErr()
			}
		case "token_endpoint_auth_methods":
			d.AuthMethods = disp.RemainingArgs()
			if len(d.AuthMethods) == 0 {
				d.AuthMethods = defaults.AuthMethods
			}
		case "signing_algs":
			d.SigningAlgs = disp.RemainingArgs()
			if len(d.SigningAlgs) == 0 {
				d.SigningAlgs = defaults.SigningAlgs
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
