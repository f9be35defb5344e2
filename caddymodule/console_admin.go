package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(ConsoleAdmin{})
}

// ConsoleAdmin is admin.api.dcr_console: the console page on Caddy's admin endpoint, beside
// admin.api.dcr's /dcr/clients, and the outcome counts.
//
//	GET /dcr/console/        the page, its files, and its read-only API under /dcr/console/api/
//	GET /dcr/counts          outcome counts over time (?range=24h, the default, or 30d)
//
// Caddy's admin endpoint refuses a browser's navigation that carries neither an Origin nor a
// Referer header of an allowed origin (a typed or bookmarked URL carries neither), so a browser
// can open the page here only when the admin `origins` allow it: see docs/console.md. The
// admin endpoint's protection is the console's: anyone who may use the admin API may see it.
type ConsoleAdmin struct {
	// site is the console over dcrRegistries unless a test sets its own.
	site *consoleSite
}

// CaddyModule returns the Caddy module information.
func (ConsoleAdmin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.dcr_console",
		New: func() caddy.Module { return &ConsoleAdmin{site: &consoleSite{directory: &dcrRegistries}} },
	}
}

// Routes returns /dcr/console/ and /dcr/counts; both are more specific than admin.api.dcr's
// /dcr/, so Caddy's admin mux gives them these paths.
func (a *ConsoleAdmin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: consoleAdminPrefix, Handler: caddy.AdminHandlerFunc(a.serveConsole)},
		{Pattern: "/dcr/counts", Handler: caddy.AdminHandlerFunc(a.serveCounts)},
	}
}

const consoleAdminPrefix = "/dcr/console/"

func (a *ConsoleAdmin) serveConsole(w http.ResponseWriter, r *http.Request) error {
	a.site.serve(w, r, strings.TrimPrefix(r.URL.Path, consoleAdminPrefix))
	return nil
}

func (a *ConsoleAdmin) serveCounts(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeConsoleJSON(w, http.StatusMethodNotAllowed, adminMethodNotAllowed(r))
		return nil
	}
	serveCounts(w, r)
	return nil
}

// Interface guards
var _ caddy.AdminRouter = (*ConsoleAdmin)(nil)
