package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
	"github.com/dcrgate/dcrgate/registrars/local"
	"github.com/dcrgate/dcrgate/storage/caddystorage"
)

// adminFixture is admin.api.dcr over a directory of its own with one local registry of
// three registrations (org-X: client-0, client-2; org-Y: client-1) and an audit log to read.
// client-1 carries backend data, as a record an upstream registrar made.
type adminFixture struct {
	api   *AdminAPI
	dir   *registryDirectory
	store dcr.Store
	audit *observer.ObservedLogs
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	store := caddystorage.New(&certmagic.FileStorage{Path: t.TempDir()}, "dcr")
	for i, org := range []string{"org-X", "org-Y", "org-X"} {
		rec := storetest.NewRegistration(i)
		rec.OrgID = org
		if i != 1 {
			rec.Backend = nil // client-1 keeps one, as an upstream registrar's record would
		}
		rec.Metadata["client_secret"] = "s3cr3t-in-metadata"
		if err := store.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zapcore.InfoLevel)
	dir := &registryDirectory{}
	dir.add(&publishedRegistry{Server: "srv0", Endpoint: "/register", RegistrarID: "dcr.registrars.local",
		Store: store, Registrar: local.Local{}, audit: &auditor{log: zap.New(core),
			history: &historyKeeper{store: store, logger: zap.NewNop()}}})
	return &adminFixture{api: &AdminAPI{directory: dir}, dir: dir, store: store, audit: logs}
}

func (f *adminFixture) call(t *testing.T, method, target string) (int, map[string]any, string) {
	t.Helper()
	w := httptest.NewRecorder()
	if err := f.api.serve(w, httptest.NewRequest(method, target, nil)); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, target, w.Body)
	}
	return w.Code, body, w.Body.String()
}

func clientIDs(body map[string]any) []string {
	var ids []string
	clients, _ := body["clients"].([]any)
	for _, c := range clients {
		ids = append(ids, c.(map[string]any)["client_id"].(string))
	}
	return ids
}

func TestAdminListFiltersAndPages(t *testing.T) {
	f := newAdminFixture(t)
	for target, want := range map[string]string{
		"/dcr/clients":                                            "client-0 client-1 client-2",
		"/dcr/clients?org_id=org-X":                               "client-0 client-2",
		"/dcr/clients?org_id=org-Y":                               "client-1",
		"/dcr/clients?software_id=software-1":                     "client-1",
		"/dcr/clients?endpoint=/register":                         "client-0 client-1 client-2",
		"/dcr/clients?org_id=org-X&cursor=client-0":               "client-2",
		"/dcr/clients?created_from=2025-01-02T03:05:05Z":          "client-1 client-2",
		"/dcr/clients?token_endpoint_auth_method=tls_client_auth": "",
		"/dcr/clients?status=deleted":                             "",
	} {
		status, body, _ := f.call(t, http.MethodGet, target)
		if got := strings.Join(clientIDs(body), " "); status != http.StatusOK || got != want {
			t.Errorf("GET %s = %d %q, want 200 %q", target, status, got, want)
		}
	}
	status, body, _ := f.call(t, http.MethodGet, "/dcr/clients?limit=2")
	if status != http.StatusOK || strings.Join(clientIDs(body), " ") != "client-0 client-1" || body["next_cursor"] != "client-1" {
		t.Fatalf("first page = %d %v", status, body)
	}
	status, body, _ = f.call(t, http.MethodGet, "/dcr/clients?limit=2&cursor=client-1")
	if status != http.StatusOK || strings.Join(clientIDs(body), " ") != "client-2" || body["next_cursor"] != nil {
		t.Fatalf("second page = %d %v", status, body)
	}
}

func TestAdminRefusesBadInput(t *testing.T) {
	f := newAdminFixture(t)
	for _, tc := range []struct {
		method, target string
		status         int
	}{
		{http.MethodGet, "/dcr/clients?limit=0", 400},
		{http.MethodGet, "/dcr/clients?limit=abc", 400},
		{http.MethodGet, "/dcr/clients?limit=100000", 400},
		{http.MethodGet, "/dcr/clients?status=gone", 400},
		{http.MethodGet, "/dcr/clients?status=deleted&org_id=org-X", 400},
		{http.MethodGet, "/dcr/clients?created_from=yesterday", 400},
		{http.MethodGet, "/dcr/clients?created_from=2025-01-02T00:00:00Z&created_to=2024-01-01T00:00:00Z", 400},
		{http.MethodGet, "/dcr/clients?orgid=org-X", 400},
		{http.MethodGet, "/dcr/clients?org_id=a&org_id=b", 400},
		{http.MethodGet, "/dcr/clients?endpoint=/other", 400},
		{http.MethodGet, "/dcr/clients/client-9", 404},
		{http.MethodGet, "/dcr/clients/client-0?x=1", 400},
		{http.MethodDelete, "/dcr/clients/client-9", 404},
		{http.MethodDelete, "/dcr/clients/client-0?force=1", 400},
		{http.MethodPost, "/dcr/clients", 405},
		{http.MethodPut, "/dcr/clients/client-0", 405},
		{http.MethodGet, "/dcr/nothing", 404},
	} {
		status, body, _ := f.call(t, tc.method, tc.target)
		if status != tc.status || body["error"] == nil || body["error_description"] == nil {
			t.Errorf("%s %s = %d %v, want %d with error and error_description", tc.method, tc.target, status, body, tc.status)
		}
	}
	_, body, _ := f.call(t, http.MethodGet, "/dcr/clients")
	if got := strings.Join(clientIDs(body), " "); got != "client-0 client-1 client-2" {
		t.Errorf("after bad input the registry is %q", got)
	}
}

func TestAdminShowHasNoSecret(t *testing.T) {
	f := newAdminFixture(t)
	status, body, raw := f.call(t, http.MethodGet, "/dcr/clients/client-1")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, raw)
	}
	rec := storetest.NewRegistration(1)
	for k, want := range map[string]any{"client_id": "client-1", "org_id": "org-Y", "software_id": "software-1",
		"status": "live", "version": float64(1), "cert_subject": rec.CertSubject, "client_name": "Client 1",
		"token_endpoint_auth_method": "private_key_jwt", "issued_at": "2025-01-02T03:05:05Z"} {
		if body[k] != want {
			t.Errorf("%s = %v, want %v", k, body[k], want)
		}
	}
	if claims, _ := body["ssa_claims"].(map[string]any); claims["software_client_id"] != "sc-1" {
		t.Errorf("ssa_claims = %v", body["ssa_claims"])
	}
	for _, secret := range []string{rec.RegistrationTokenHash, rec.ClientSecretHash, rec.SoftwareStatement, "s3cr3t-in-metadata",
		"registration_token_hash", "client_secret", "software_statement", "backend_id"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the view contains %q:\n%s", secret, raw)
		}
	}
}

func TestAdminDeleteLocal(t *testing.T) {
	f := newAdminFixture(t)
	status, body, _ := f.call(t, http.MethodDelete, "/dcr/clients/client-2")
	if status != http.StatusOK || body["status"] != "deleted" {
		t.Fatalf("DELETE = %d %v", status, body)
	}
	if _, err := f.store.Get(t.Context(), "client-2"); err != dcr.ErrNotFound {
		t.Errorf("Get after delete: %v", err)
	}
	if status, _, _ := f.call(t, http.MethodGet, "/dcr/clients/client-2"); status != http.StatusNotFound {
		t.Errorf("show after delete = %d", status)
	}
	if status, _, _ := f.call(t, http.MethodDelete, "/dcr/clients/client-2"); status != http.StatusNotFound {
		t.Errorf("second delete = %d", status)
	}
	_, body, _ = f.call(t, http.MethodGet, "/dcr/clients?status=deleted")
	if got := strings.Join(clientIDs(body), " "); got != "client-2" {
		t.Errorf("deleted listing = %q", got)
	}
	entries := f.audit.FilterMessage("dcr admin delete").All()
	if len(entries) != 1 {
		t.Fatalf("audit entries = %v", f.audit.All())
	}
	fields := entries[0].ContextMap()
	if fields["actor"] != "local admin" || fields["client_id"] != "client-2" || fields["org_id"] != "org-X" || fields["outcome"] != "success" {
		t.Errorf("audit fields = %v", fields)
	}
}

func TestAdminDeleteUpstreamIsRefused(t *testing.T) {
	f := newAdminFixture(t)
	// A record with backend data is refused even by a local registrar (the config changed
	// since it was made); any record is refused by an upstream registrar.
	status, body, _ := f.call(t, http.MethodDelete, "/dcr/clients/client-1")
	if status != http.StatusNotImplemented || body["error"] != "upstream_registration" {
		t.Fatalf("DELETE client-1 = %d %v", status, body)
	}
	f.dir.entries[0].RegistrarID = "dcr.registrars.upstream"
	status, body, _ = f.call(t, http.MethodDelete, "/dcr/clients/client-0")
	if status != http.StatusNotImplemented || body["error"] != "upstream_registration" {
		t.Fatalf("DELETE client-0 = %d %v", status, body)
	}
	for _, id := range []string{"client-0", "client-1"} {
		if rec, err := f.store.Get(t.Context(), id); err != nil || rec.Version != 1 {
			t.Errorf("the refused delete changed %s: %v", id, err)
		}
	}
	if n := f.audit.FilterMessage("dcr admin delete refused").Len(); n != 2 {
		t.Errorf("refusals audited %d times, want 2", n)
	}
}

func TestAdminSelectsTheRegistry(t *testing.T) {
	f := newAdminFixture(t)
	if status, body, _ := f.call(t, http.MethodGet, "/dcr/endpoints"); status != 200 || len(body["endpoints"].([]any)) != 1 {
		t.Fatalf("endpoints = %d %v", status, body)
	}
	other := caddystorage.New(&certmagic.FileStorage{Path: t.TempDir()}, "dcr")
	withdraw := f.dir.add(&publishedRegistry{Server: "srv1", Endpoint: "/register", RegistrarID: "dcr.registrars.local", Store: other})
	if status, _, _ := f.call(t, http.MethodGet, "/dcr/clients"); status != http.StatusBadRequest {
		t.Errorf("ambiguous listing = %d", status)
	}
	status, body, _ := f.call(t, http.MethodGet, "/dcr/clients?server=srv1")
	if status != 200 || len(clientIDs(body)) != 0 {
		t.Errorf("srv1 listing = %d %v", status, body)
	}
	if status, body, _ := f.call(t, http.MethodGet, "/dcr/clients?server=srv0&endpoint=/register"); status != 200 || len(clientIDs(body)) != 3 {
		t.Errorf("srv0 listing = %d %v", status, body)
	}
	// A reload publishes the same server and endpoint again: the latest one is shown.
	withdrawNewer := f.dir.add(&publishedRegistry{Server: "srv0", Endpoint: "/register", RegistrarID: "dcr.registrars.local", Store: other})
	if status, body, _ := f.call(t, http.MethodGet, "/dcr/clients?server=srv0"); status != 200 || len(clientIDs(body)) != 0 {
		t.Errorf("after a reload = %d %v", status, body)
	}
	withdraw()
	withdrawNewer()
	f.dir.entries = nil
	if status, body, _ := f.call(t, http.MethodGet, "/dcr/clients"); status != http.StatusNotFound || body["error"] != "no_registry" {
		t.Errorf("without a registry = %d %v", status, body)
	}
}
