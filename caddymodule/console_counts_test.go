package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The audit step feeds the outcome counts: a registration, a rejection by its error code and an
// operator's delete are counted, a read is not. registryCounts is the process's, so the test
// compares before and after (no test of this package runs in parallel).
func TestAuditFeedsTheOutcomeCounts(t *testing.T) {
	p := newInProcess(t)
	before, err := registryCounts.window(time.Now(), "24h")
	if err != nil {
		t.Fatal(err)
	}
	w := p.do(http.MethodPost, "/register", p.signedRequest(t, nil), "")
	if w.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	reg := decode(t, w)
	id, token := reg["client_id"].(string), reg["registration_access_token"].(string)
	if w := p.do(http.MethodGet, "/register/"+id, nil, token); w.Code != http.StatusOK {
		t.Fatalf("read: %d", w.Code)
	}
	if w := p.do(http.MethodPost, "/register", p.signedRequest(t, map[string]any{"token_endpoint_auth_method": "none"}), ""); w.Code != http.StatusBadRequest {
		t.Fatalf("bad register: %d %s", w.Code, w.Body)
	}
	dir := &registryDirectory{}
	dir.add(&publishedRegistry{Server: "srv0", Endpoint: "/register", RegistrarID: "dcr.registrars.local",
		Store: p.store, Registrar: p.h.registrar, Retention: p.h.audit.history.keep, audit: p.h.audit})
	rw := httptest.NewRecorder()
	if err := (&AdminAPI{directory: dir}).serve(rw, httptest.NewRequest(http.MethodDelete, "/dcr/clients/"+id, nil)); err != nil || rw.Code != http.StatusOK {
		t.Fatalf("admin delete: %d %s", rw.Code, rw.Body)
	}
	after, err := registryCounts.window(time.Now(), "24h")
	if err != nil {
		t.Fatal(err)
	}
	b, a := before.Totals, after.Totals
	if a.Registered-b.Registered != 1 || a.Updated != b.Updated || a.Deleted-b.Deleted != 1 || a.Rejected-b.Rejected != 1 ||
		a.Errors["invalid_client_metadata"]-b.Errors["invalid_client_metadata"] != 1 {
		t.Errorf("counts went from %+v to %+v; want one more registered, deleted and rejected (invalid_client_metadata)", *b, *a)
	}
}

func TestConsoleValidate(t *testing.T) {
	if err := (&Console{Endpoint: "register"}).Validate(); err == nil {
		t.Error("an endpoint without a leading / was accepted")
	}
	if err := (&Console{Endpoint: "/register", Server: "srv0"}).Validate(); err != nil {
		t.Error(err)
	}
}
