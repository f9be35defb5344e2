package caddymodule

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr"
)

// consoleCall is one request to a dcr_console handler over the admin fixture's registry.
func consoleCall(t *testing.T, c *Console, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if err := c.ServeHTTP(w, httptest.NewRequest(method, target, nil), nil); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return w
}

func consoleJSON(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json: %s", ct, w.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("not JSON: %q", w.Body)
	}
	return body
}

func newTestConsole(f *adminFixture, endpoint, server string) *Console {
	return &Console{Endpoint: endpoint, Server: server, site: &consoleSite{directory: f.dir, endpoint: endpoint, server: server}}
}

func TestConsoleAPIListsWithFilters(t *testing.T) {
	f := newAdminFixture(t)
	c := newTestConsole(f, "", "")
	for target, want := range map[string]string{
		"/api/clients":                                                         "client-0 client-1 client-2",
		"/api/clients?org_id=org-X":                                            "client-0 client-2",
		"/api/clients?org_id=org-Y":                                            "client-1",
		"/api/clients?software_id=software-2":                                  "client-2",
		"/api/clients?org_id=org-X&cursor=client-0":                            "client-2",
		"/api/clients?created_to=2025-01-02T03:05:05Z":                         "client-0 client-1",
		"/api/clients?token_endpoint_auth_method=private_key_jwt&org_id=org-Y": "client-1",
		"/api/clients?status=deleted":                                          "",
		"/api/clients?endpoint=/register&server=srv0":                          "client-0 client-1 client-2",
	} {
		w := consoleCall(t, c, http.MethodGet, target)
		body := consoleJSON(t, w)
		if got := strings.Join(clientIDs(body), " "); w.Code != http.StatusOK || got != want {
			t.Errorf("GET %s = %d %q, want 200 %q", target, w.Code, got, want)
		}
	}
	w := consoleCall(t, c, http.MethodGet, "/api/clients?limit=1")
	if body := consoleJSON(t, w); body["next_cursor"] != "client-0" {
		t.Errorf("first page of one: next_cursor = %v", body["next_cursor"])
	}
	w = consoleCall(t, c, http.MethodGet, "/api/endpoints")
	if !strings.Contains(w.Body.String(), `"endpoint": "/register"`) {
		t.Errorf("endpoints: %s", w.Body)
	}
}

func TestConsoleAPIShowAndHistoryHaveNoSecret(t *testing.T) {
	f := newAdminFixture(t)
	c := newTestConsole(f, "", "")
	rec, err := f.store.Get(t.Context(), "client-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/api/clients/client-1", "/api/clients", "/api/clients/client-1/history"} {
		w := consoleCall(t, c, http.MethodGet, target)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", target, w.Code, w.Body)
		}
		raw := w.Body.String()
		for _, secret := range []string{rec.RegistrationTokenHash, rec.ClientSecretHash, rec.SoftwareStatement, "s3cr3t-in-metadata",
			"registration_token_hash", "client_secret", "software_statement", "backend_id"} {
			if strings.Contains(raw, secret) {
				t.Errorf("GET %s contains %q:\n%s", target, secret, raw)
			}
		}
	}
	if body := consoleJSON(t, consoleCall(t, c, http.MethodGet, "/api/clients/client-1")); body["org_id"] != "org-Y" || body["cert_subject"] != rec.CertSubject {
		t.Errorf("show = %v", body)
	}
}

func TestConsoleAPIRefusesBadInputAndWrites(t *testing.T) {
	f := newAdminFixture(t)
	c := newTestConsole(f, "", "")
	for _, tc := range []struct {
		method, target string
		status         int
		code           string
	}{
		{http.MethodGet, "/api/clients?limit=0", 400, "invalid_request"},
		{http.MethodGet, "/api/clients?limit=abc", 400, "invalid_request"},
		{http.MethodGet, "/api/clients?orgid=org-X", 400, "invalid_request"},
		{http.MethodGet, "/api/clients?org_id=a&org_id=b", 400, "invalid_request"},
		{http.MethodGet, "/api/clients?created_from=yesterday", 400, "invalid_request"},
		{http.MethodGet, "/api/clients?status=deleted&org_id=org-X", 400, "invalid_request"},
		{http.MethodGet, "/api/clients?endpoint=/other", 400, "invalid_request"},
		{http.MethodGet, "/api/clients/client-0?limit=1", 400, "invalid_request"},
		{http.MethodGet, "/api/counts?range=7d", 400, "invalid_request"},
		{http.MethodGet, "/api/counts?since=1", 400, "invalid_request"},
		{http.MethodGet, "/api/counts?range=24h&range=30d", 400, "invalid_request"},
		{http.MethodGet, "/api/clients/no-such-client", 404, "not_found"},
		{http.MethodGet, "/api/nothing", 404, "not_found"},
		{http.MethodGet, "/api/clients/client-0/history/more", 404, "not_found"},
		{http.MethodGet, "/secrets.txt", 404, "not_found"},
		{http.MethodDelete, "/api/clients/client-0", 405, "method_not_allowed"},
		{http.MethodPost, "/api/clients", 405, "method_not_allowed"},
		{http.MethodPut, "/api/clients/client-0", 405, "method_not_allowed"},
		{http.MethodPost, "/", 405, "method_not_allowed"},
	} {
		w := consoleCall(t, c, tc.method, tc.target)
		body := consoleJSON(t, w)
		if w.Code != tc.status || body["error"] != tc.code || body["error_description"] == "" {
			t.Errorf("%s %s = %d %v, want %d %s", tc.method, tc.target, w.Code, body, tc.status, tc.code)
		}
	}
	page, err := f.store.List(t.Context(), dcr.ListQuery{})
	if err != nil || len(page.Registrations) != 3 {
		t.Fatalf("the registry changed: %d registrations, %v", len(page.Registrations), err)
	}
}

func TestConsolePinnedToOneRegistry(t *testing.T) {
	f := newAdminFixture(t)
	c := newTestConsole(f, "/register", "srv0")
	if w := consoleCall(t, c, http.MethodGet, "/api/clients?org_id=org-Y"); w.Code != 200 || strings.Join(clientIDs(consoleJSON(t, w)), " ") != "client-1" {
		t.Errorf("pinned list = %d %s", w.Code, w.Body)
	}
	w := consoleCall(t, c, http.MethodGet, "/api/clients?endpoint=/elsewhere")
	if body := consoleJSON(t, w); w.Code != 400 || !strings.Contains(body["error_description"].(string), "only endpoint") {
		t.Errorf("another endpoint through a pinned console = %d %v", w.Code, body)
	}
	other := newTestConsole(f, "/other", "")
	if w := consoleCall(t, other, http.MethodGet, "/api/clients"); w.Code != 400 {
		t.Errorf("a console pinned to a missing endpoint = %d %s", w.Code, w.Body)
	}
	if w := consoleCall(t, other, http.MethodGet, "/api/endpoints"); !strings.Contains(w.Body.String(), `"endpoints": []`) {
		t.Errorf("endpoints of a console pinned elsewhere: %s", w.Body)
	}
}

// The page and its files: embedded, with a policy that allows nothing but themselves, and no
// reference to another origin and no HTML built from strings in the script.
func TestConsolePageIsSelfContained(t *testing.T) {
	f := newAdminFixture(t)
	c := newTestConsole(f, "", "")
	for path, ctype := range map[string]string{"/": "text/html; charset=utf-8", "/console.js": "text/javascript; charset=utf-8", "/console.css": "text/css; charset=utf-8"} {
		w := consoleCall(t, c, http.MethodGet, path)
		if w.Code != 200 || w.Header().Get("Content-Type") != ctype || w.Body.Len() == 0 {
			t.Errorf("GET %s = %d %q (%d bytes)", path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", path, w.Header())
		}
	}
	if w := consoleCall(t, c, http.MethodHead, "/console.js"); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD /console.js = %d, %d bytes", w.Code, w.Body.Len())
	}
	err := fs.WalkDir(consoleAssets, "console", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := fs.ReadFile(consoleAssets, p)
		for _, banned := range []string{"http://", "https://", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(string(data), banned) {
				t.Errorf("%s contains %q", p, banned)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConsoleAdminRoutes(t *testing.T) {
	f := newAdminFixture(t)
	a := &ConsoleAdmin{site: &consoleSite{directory: f.dir}}
	routes := map[string]caddy.AdminHandler{}
	for _, r := range a.Routes() {
		routes[r.Pattern] = r.Handler
	}
	call := func(pattern, method, target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h, ok := routes[pattern]
		if !ok {
			t.Fatalf("no route %s", pattern)
		}
		if err := h.ServeHTTP(w, httptest.NewRequest(method, target, nil)); err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := call("/dcr/console/", http.MethodGet, "/dcr/console/"); w.Code != 200 || !strings.Contains(w.Body.String(), `src="console.js"`) {
		t.Errorf("GET /dcr/console/ = %d", w.Code)
	}
	if w := call("/dcr/console/", http.MethodGet, "/dcr/console/api/clients?org_id=org-X"); strings.Join(clientIDs(consoleJSON(t, w)), " ") != "client-0 client-2" {
		t.Errorf("GET /dcr/console/api/clients?org_id=org-X = %d %s", w.Code, w.Body)
	}
	if w := call("/dcr/console/", http.MethodDelete, "/dcr/console/api/clients/client-0"); w.Code != 405 {
		t.Errorf("DELETE through the console = %d", w.Code)
	}
	if w := call("/dcr/counts", http.MethodGet, "/dcr/counts?range=30d"); w.Code != 200 || consoleJSON(t, w)["bucket"] != "24h0m0s" {
		t.Errorf("GET /dcr/counts?range=30d = %d %s", w.Code, w.Body)
	}
	if w := call("/dcr/counts", http.MethodPost, "/dcr/counts"); w.Code != 405 {
		t.Errorf("POST /dcr/counts = %d", w.Code)
	}
}

func TestOutcomeTimelineBuckets(t *testing.T) {
	tl := newOutcomeTimeline()
	now := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	tl.count(now, EventRegistered, "")
	tl.count(now.Add(-10*time.Minute), EventRegistered, "")
	tl.count(now.Add(-2*time.Hour), EventUpdated, "")
	tl.count(now.Add(-3*time.Hour), EventRejected, "invalid_software_statement")
	tl.count(now.Add(-3*time.Hour), EventRejected, "invalid_software_statement")
	tl.count(now.Add(-23*time.Hour), EventDeleted, "")
	tl.count(now.Add(-30*time.Hour), EventRegistered, "") // out of the 24h window, in the 30d one
	tl.count(now, "dcr.read", "")                         // no outcome

	day, err := tl.window(now, "24h")
	if err != nil {
		t.Fatal(err)
	}
	if len(day.Buckets) != countHours || !day.Buckets[len(day.Buckets)-1].Start.Equal(now.Truncate(time.Hour)) {
		t.Fatalf("24h window: %d buckets, last at %v", len(day.Buckets), day.Buckets[len(day.Buckets)-1].Start)
	}
	tot := day.Totals
	if tot.Registered != 2 || tot.Updated != 1 || tot.Deleted != 1 || tot.Rejected != 2 || tot.Errors["invalid_software_statement"] != 2 {
		t.Errorf("24h totals = %+v", *tot)
	}
	if last := day.Buckets[len(day.Buckets)-1]; last.Registered != 2 {
		t.Errorf("current hour = %+v", last)
	}
	if b := day.Buckets[len(day.Buckets)-4]; b.Rejected != 2 || !b.Start.Equal(now.Add(-3*time.Hour).Truncate(time.Hour)) {
		t.Errorf("bucket of three hours ago = %+v", b)
	}
	month, err := tl.window(now, "30d")
	if err != nil {
		t.Fatal(err)
	}
	if len(month.Buckets) != countDays || month.Totals.Registered != 3 || month.Bucket != "24h0m0s" {
		t.Errorf("30d window: %d buckets, totals %+v", len(month.Buckets), *month.Totals)
	}
	if _, err := tl.window(now, "7d"); err == nil {
		t.Error("a 7d window was answered")
	}
	// Old buckets are dropped as new ones start: the rings stay bounded.
	for h := range 200 {
		tl.count(now.Add(time.Duration(h)*time.Hour), EventRegistered, "")
	}
	if len(tl.hours) > countHours+1 || len(tl.days) > countDays+1 {
		t.Errorf("%d hourly and %d daily buckets kept", len(tl.hours), len(tl.days))
	}
}

func TestOutcomeTimelineBoundsErrorCodes(t *testing.T) {
	tl := newOutcomeTimeline()
	now := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	for i := range maxCountedErrorCodes + 8 {
		tl.count(now, EventRejected, fmt.Sprintf("code_%d", i))
	}
	w, _ := tl.window(now, "24h")
	if len(w.Totals.Errors) != maxCountedErrorCodes+1 || w.Totals.Errors[otherErrorCode] != 8 || w.Totals.Rejected != int64(maxCountedErrorCodes+8) {
		t.Errorf("errors = %d codes, other %d, rejected %d", len(w.Totals.Errors), w.Totals.Errors[otherErrorCode], w.Totals.Rejected)
	}
}
