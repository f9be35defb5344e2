package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// The handler's audit hook writes the client's lifecycle and the rejections of its
// software_id into the store; admin.api.dcr shows both, also after an operator's delete.
func TestHistoryThroughThePipelineAndAdminAPI(t *testing.T) {
	p := newInProcess(t)
	p.h.audit.history.keep = dcr.HistoryRetention{MaxEvents: 2, MaxAge: time.Hour}
	w := p.do(http.MethodPost, "/register", p.signedRequest(t, nil), "")
	if w.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	reg := decode(t, w)
	id, token := reg["client_id"].(string), reg["registration_access_token"].(string)
	softwareID := reg["software_id"].(string)
	if w := p.do(http.MethodGet, "/register/"+id, nil, token); w.Code != http.StatusOK {
		t.Fatalf("read: %d", w.Code)
	}
	for range 3 {
		w = p.do(http.MethodPost, "/register", p.signedRequest(t, map[string]any{"token_endpoint_auth_method": "none"}), "")
		if w.Code != http.StatusBadRequest {
			t.Fatalf("bad register: %d %s", w.Code, w.Body)
		}
	}

	dir := &registryDirectory{}
	dir.add(&publishedRegistry{Server: "srv0", Endpoint: "/register", RegistrarID: "dcr.registrars.local",
		Store: p.store, Registrar: p.h.registrar, Retention: p.h.audit.history.keep, audit: p.h.audit})
	api := &AdminAPI{directory: dir}
	get := func(target string) (int, map[string]any, string) {
		t.Helper()
		rw := httptest.NewRecorder()
		if err := api.serve(rw, httptest.NewRequest(http.MethodGet, target, nil)); err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal(rw.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %q", target, rw.Body)
		}
		return rw.Code, body, rw.Body.String()
	}
	status, body, raw := get("/dcr/clients/" + id + "/history")
	if status != http.StatusOK || body["software_id"] != softwareID || body["status"] != "live" {
		t.Fatalf("history = %d %s", status, raw)
	}
	events := body["events"].([]any)
	if len(events) != 1 || events[0].(map[string]any)["event"] != "registered" {
		t.Errorf("events = %v (a read is not history)", events)
	}
	// Three rejections, kept two.
	rejections := body["rejections"].([]any)
	if len(rejections) != 2 {
		t.Fatalf("rejections = %v, want the newest 2", rejections)
	}
	if r := rejections[1].(map[string]any); r["event"] != "rejected" || r["error"] != "invalid_client_metadata" || r["status"] != float64(400) {
		t.Errorf("rejection = %v", r)
	}
	if strings.Contains(raw, token) {
		t.Error("the history contains the registration access token")
	}

	rw := httptest.NewRecorder()
	if err := api.serve(rw, httptest.NewRequest(http.MethodDelete, "/dcr/clients/"+id, nil)); err != nil || rw.Code != http.StatusOK {
		t.Fatalf("admin delete: %d %s", rw.Code, rw.Body)
	}
	status, body, raw = get("/dcr/clients/" + id + "/history")
	if status != http.StatusOK || body["status"] != "deleted" || body["software_id"] != softwareID {
		t.Fatalf("history after delete = %d %s", status, raw)
	}
	events = body["events"].([]any)
	last := events[len(events)-1].(map[string]any)
	if len(events) != 2 || last["event"] != "deleted" || last["actor"] != "local admin" {
		t.Errorf("events after delete = %v", events)
	}
	if status, _, _ := get("/dcr/clients/never-registered/history"); status != http.StatusNotFound {
		t.Errorf("history of an unknown client = %d", status)
	}
}
