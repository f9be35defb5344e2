package caddymodule

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Console{})
}

// Console is http.handlers.dcr_console: the console page and its read-only JSON API, for an
// operator to mount behind their own authentication (basic_auth, forward_auth) on a site of
// their choice. It shows the registries of the dcr handlers of the running config, the same
// ones admin.api.dcr shows, through the same allow-listed views:
//
//	GET /                              the page (and /console.js, /console.css)
//	GET /api/endpoints                 the dcr handlers it can show
//	GET /api/clients                   registrations, with admin.api.dcr's filters and cursor
//	GET /api/clients/{client_id}       one registration (never a secret, token or hash)
//	GET /api/clients/{client_id}/history
//	GET /api/counts                    outcome counts over time (?range=24h or 30d)
//
// Paths are below where it is mounted: use it in `handle_path`, which strips the prefix. It
// never changes the registry: every method but GET (HEAD for the page's files) gets 405. It is
// terminal: it answers every request that reaches it.
type Console struct {
	// Endpoint and Server, when set, pin the console to the dcr handler at that endpoint
	// path (and in that HTTP server): it shows no other registry.
	Endpoint string `json:"endpoint,omitempty"`
	Server   string `json:"server,omitempty"`

	site *consoleSite
}

// CaddyModule returns the Caddy module information.
func (Console) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.dcr_console",
		New: func() caddy.Module { return new(Console) },
	}
}

// Provision sets the console over the registries the dcr handlers publish.
func (c *Console) Provision(caddy.Context) error {
	c.site = &consoleSite{directory: &dcrRegistries, server: c.Server, endpoint: c.Endpoint}
	return nil
}

// Validate checks the configuration.
func (c *Console) Validate() error {
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "/") {
		return errors.New("dcr_console: endpoint must be the dcr handler's path, starting with /")
	}
	return nil
}

// ServeHTTP answers the console's page and API.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	c.site.serve(w, r, strings.TrimPrefix(r.URL.Path, "/"))
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Console)(nil)
	_ caddy.Validator             = (*Console)(nil)
	_ caddyhttp.MiddlewareHandler = (*Console)(nil)
)
