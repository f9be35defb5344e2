package caddymodule

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// consoleAssets are the console page's files: plain HTML, CSS and JavaScript, no build step and
// nothing fetched from elsewhere.
//
//go:embed console/index.html console/console.js console/console.css
var consoleAssets embed.FS

// consoleFiles are the assets by the name the page uses, with their media types.
var consoleFiles = map[string]string{
	"index.html":  "text/html; charset=utf-8",
	"console.js":  "text/javascript; charset=utf-8",
	"console.css": "text/css; charset=utf-8",
}

// consoleSecurityHeaders go on every console answer. The policy allows nothing but the page's
// own files (no inline script, no other origin, no framing); same-origin referrers are kept
// because Caddy's admin endpoint checks the Referer of the page's API calls (see
// docs/console.md).
var consoleSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "same-origin",
	"Cache-Control":          "no-store",
}

// consoleSite serves the console below some prefix: the page and its files, and a read-only
// JSON API under api/ that the page calls with relative URLs, so it works wherever it is
// mounted. The API is admin.api.dcr's own list, show, history and endpoints (the allow-listed
// views), never its delete, plus the outcome counts.
type consoleSite struct {
	directory *registryDirectory
	// server and endpoint, when set, pin the registry: a request may not choose another.
	server, endpoint string
}

// serve answers one console request; rel is the path below the console's prefix, without
// the leading slash ("" is the page).
func (c *consoleSite) serve(w http.ResponseWriter, r *http.Request, rel string) {
	for k, v := range consoleSecurityHeaders {
		w.Header().Set(k, v)
	}
	if api, ok := strings.CutPrefix(rel, "api/"); ok {
		c.serveAPI(w, r, api)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeConsoleJSON(w, http.StatusMethodNotAllowed, adminMethodNotAllowed(r))
		return
	}
	name := rel
	if name == "" {
		name = "index.html"
	}
	ctype, ok := consoleFiles[name]
	if !ok {
		writeConsoleJSON(w, http.StatusNotFound, &adminError{http.StatusNotFound, "not_found", "no such console resource: " + r.URL.Path})
		return
	}
	data, err := fs.ReadFile(consoleAssets, path.Join("console", name))
	if err != nil { // cannot happen: the files are embedded
		writeConsoleJSON(w, http.StatusInternalServerError, &adminError{http.StatusInternalServerError, "server_error", err.Error()})
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(data)
	}
}

// serveAPI answers api/endpoints, api/clients[/{id}[/history]] through admin.api.dcr's own
// read routes, and api/counts. Only GET: the console never changes the registry.
func (c *consoleSite) serveAPI(w http.ResponseWriter, r *http.Request, api string) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeConsoleJSON(w, http.StatusMethodNotAllowed, adminMethodNotAllowed(r))
		return
	}
	if api == "counts" {
		serveCounts(w, r)
		return
	}
	if api != "endpoints" && api != "clients" && !strings.HasPrefix(api, "clients/") {
		writeConsoleJSON(w, http.StatusNotFound, &adminError{http.StatusNotFound, "not_found", "no such console API resource: " + r.URL.Path})
		return
	}
	query, aerr := c.pinned(r.URL.Query())
	if aerr != nil {
		writeConsoleJSON(w, aerr.Status, aerr)
		return
	}
	// admin.api.dcr's route is the registry's read API; the request is rewritten onto its paths.
	inner := r.Clone(r.Context())
	inner.URL = &url.URL{Path: "/dcr/" + api, RawQuery: query.Encode()}
	status, body := (&AdminAPI{directory: c.directory}).route(inner)
	if e, ok := body.(*adminError); ok {
		status = e.Status
	}
	if api == "endpoints" && (c.server != "" || c.endpoint != "") {
		body = c.pinnedEndpoints(body)
	}
	writeConsoleJSON(w, status, body)
}

// pinned applies the console's pinned server and endpoint to a request's parameters.
func (c *consoleSite) pinned(q url.Values) (url.Values, *adminError) {
	for _, p := range []struct{ name, value string }{{"server", c.server}, {"endpoint", c.endpoint}} {
		if p.value == "" {
			continue
		}
		if got := q.Get(p.name); got != "" && got != p.value {
			return nil, badRequest("this console shows only %s %q", p.name, p.value)
		}
		q.Set(p.name, p.value)
	}
	return q, nil
}

// pinnedEndpoints keeps, of the endpoints list, those the console may show.
func (c *consoleSite) pinnedEndpoints(body any) any {
	all, ok := body.(map[string]any)
	if !ok {
		return body
	}
	list, _ := all["endpoints"].([]endpointView)
	kept := []endpointView{}
	for _, e := range list {
		if (c.server == "" || e.Server == c.server) && (c.endpoint == "" || e.Endpoint == c.endpoint) {
			kept = append(kept, e)
		}
	}
	return map[string]any{"endpoints": kept}
}

// serveCounts answers GET .../counts[?range=24h|30d]: the outcome timeline (registryCounts).
func serveCounts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name, vals := range q {
		if name != "range" {
			writeConsoleJSON(w, http.StatusBadRequest, badRequest("unknown parameter %q", name))
			return
		}
		if len(vals) != 1 {
			writeConsoleJSON(w, http.StatusBadRequest, badRequest("parameter %q given %d times", name, len(vals)))
			return
		}
	}
	rangeName := q.Get("range")
	if rangeName == "" {
		rangeName = "24h"
	}
	counts, err := registryCounts.window(time.Now(), rangeName)
	if err != nil {
		writeConsoleJSON(w, http.StatusBadRequest, badRequest("%s", err.Error()))
		return
	}
	writeConsoleJSON(w, http.StatusOK, counts)
}

// writeConsoleJSON writes body as admin.api.dcr does: JSON, never cached.
func writeConsoleJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}
