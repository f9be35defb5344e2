package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// callBody is call with a request body.
func (f *adminFixture) callBody(t *testing.T, method, target, contentType, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	if err := f.api.serve(w, req); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, target, w.Body)
	}
	return w.Code, out
}

func strikeOff(t *testing.T, f *adminFixture, body string) (int, map[string]any) {
	t.Helper()
	return f.callBody(t, http.MethodPost, "/dcr/revocations", "application/json", body)
}

func strs(v any) []string {
	out := []string{}
	l, _ := v.([]any)
	for _, x := range l {
		switch x := x.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			out = append(out, x["client_id"].(string))
		}
	}
	return out
}

func liveIDs(t *testing.T, f *adminFixture) string {
	t.Helper()
	_, body, _ := f.call(t, http.MethodGet, "/dcr/clients")
	return strings.Join(clientIDs(body), " ")
}

func TestAdminStrikeOffDeletesEveryRegistrationAndDenies(t *testing.T) {
	f := newAdminFixture(t)
	status, body := strikeOff(t, f, `{"org_id": "org-X", "reason": "FCA notice 42"}`)
	if status != http.StatusOK || body["deleted_count"] != float64(2) || body["deny_entry_created"] != true ||
		!slices.Equal(strs(body["deleted"]), []string{"client-0", "client-2"}) || len(strs(body["failed"])) != 0 {
		t.Fatalf("strike-off = %d %v", status, body)
	}
	if got := liveIDs(t, f); got != "client-1" {
		t.Fatalf("live after strike-off: %q, want org-Y's client-1 only", got)
	}
	// Each deletion is audited and in the client's history, with the operator and the reason.
	if n := f.audit.FilterMessage("dcr admin delete").Len(); n != 2 {
		t.Errorf("%d delete audit lines, want 2", n)
	}
	so := f.audit.FilterMessage("dcr admin strike_off").All()
	if len(so) != 1 || so[0].ContextMap()["actor"] != "local admin" || so[0].ContextMap()["deleted"] != int64(2) ||
		so[0].ContextMap()["reason"] != "FCA notice 42" {
		t.Fatalf("strike-off audit = %v", so)
	}
	events, err := f.store.History(t.Context(), dcr.HistoryOfClient, "client-0", time.Time{})
	if err != nil || len(events) != 1 || events[0].Event != dcr.EventDeleted || events[0].Actor != "local admin" ||
		events[0].Reason != "struck off: FCA notice 42" {
		t.Fatalf("history of client-0 = %+v, %v", events, err)
	}

	// Idempotent: the second call deletes nothing, says 0, keeps the first entry.
	status, body = strikeOff(t, f, `{"org_id": "org-X", "reason": "again"}`)
	if status != http.StatusOK || body["deleted_count"] != float64(0) || body["deny_entry_created"] != false {
		t.Fatalf("second strike-off = %d %v", status, body)
	}
	if entry, _ := body["deny_entry"].(map[string]any); entry["reason"] != "FCA notice 42" {
		t.Errorf("second strike-off reports entry %v, want the first one's reason", body["deny_entry"])
	}
	if got := liveIDs(t, f); got != "client-1" {
		t.Fatalf("live after the second strike-off: %q", got)
	}
}

func TestAdminDenyListLifecycle(t *testing.T) {
	f := newAdminFixture(t)
	status, body, _ := f.call(t, http.MethodGet, "/dcr/revocations")
	if status != http.StatusOK || len(body["entries"].([]any)) != 0 {
		t.Fatalf("empty deny list = %d %v", status, body)
	}
	strikeOff(t, f, `{"software_id": "software-1", "reason": "compromised"}`)
	strikeOff(t, f, `{"org_id": "org-Z", "reason": "withdrawn"}`)
	_, body, _ = f.call(t, http.MethodGet, "/dcr/revocations")
	entries, _ := body["entries"].([]any)
	if len(entries) != 2 {
		t.Fatalf("deny list = %v", body)
	}
	first := entries[0].(map[string]any)
	if first["kind"] != "org_id" || first["id"] != "org-Z" || first["reason"] != "withdrawn" || first["actor"] != "local admin" || first["created_at"] == "" {
		t.Errorf("first entry = %v", first)
	}
	denial, err := dcr.ReadOnly(f.store).Denied(t.Context(), "org-Z", "software-1")
	if err != nil || !denial.Org || !denial.Software {
		t.Fatalf("Denied = %+v, %v", denial, err)
	}

	status, body = f.callBody(t, http.MethodDelete, "/dcr/revocations?org_id=org-Z", "", "")
	if status != http.StatusOK || body["lifted"] != true {
		t.Fatalf("lift = %d %v", status, body)
	}
	if status, body = f.callBody(t, http.MethodDelete, "/dcr/revocations?org_id=org-Z", "", ""); status != http.StatusNotFound || body["error"] != "not_found" {
		t.Fatalf("second lift = %d %v", status, body)
	}
	_, body, _ = f.call(t, http.MethodGet, "/dcr/revocations")
	if entries, _ := body["entries"].([]any); len(entries) != 1 || entries[0].(map[string]any)["id"] != "software-1" {
		t.Fatalf("deny list after lift = %v", body)
	}
	if n := f.audit.FilterMessage("dcr admin lift").Len(); n != 2 {
		t.Errorf("%d lift audit lines, want 2", n)
	}
}

func TestAdminStrikeOffRefusesBadInput(t *testing.T) {
	f := newAdminFixture(t)
	long := strings.Repeat("x", dcr.MaxDenyIDLength+1)
	for _, tc := range []struct {
		name, method, target, contentType, body string
		status                                  int
	}{
		{"empty body", http.MethodPost, "/dcr/revocations", "application/json", ``, 400},
		{"not JSON", http.MethodPost, "/dcr/revocations", "application/json", `org-X`, 400},
		{"array", http.MethodPost, "/dcr/revocations", "application/json", `["org-X"]`, 400},
		{"no id", http.MethodPost, "/dcr/revocations", "application/json", `{"reason": "r"}`, 400},
		{"both ids", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": "org-X", "software_id": "software-0", "reason": "r"}`, 400},
		{"no reason", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": "org-X"}`, 400},
		{"blank reason", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": "org-X", "reason": "  "}`, 400},
		{"unknown member", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": "org-X", "reason": "r", "force": true}`, 400},
		{"wrong type", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": 7, "reason": "r"}`, 400},
		{"control character", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": "org-X\n", "reason": "r"}`, 400},
		{"id too long", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": "` + long + `", "reason": "r"}`, 400},
		{"trailing data", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": "org-X", "reason": "r"} {}`, 400},
		{"media type", http.MethodPost, "/dcr/revocations", "text/plain", `{"org_id": "org-X", "reason": "r"}`, 415},
		{"too large", http.MethodPost, "/dcr/revocations", "application/json", `{"org_id": "org-X", "reason": "` + strings.Repeat("r", 20<<10) + `"}`, 413},
		{"unknown parameter", http.MethodPost, "/dcr/revocations?dry_run=1", "application/json", `{"org_id": "org-X", "reason": "r"}`, 400},
		{"lift without id", http.MethodDelete, "/dcr/revocations", "", ``, 400},
		{"lift both", http.MethodDelete, "/dcr/revocations?org_id=a&software_id=b", "", ``, 400},
		{"lift empty", http.MethodDelete, "/dcr/revocations?org_id=", "", ``, 400},
		{"lift twice", http.MethodDelete, "/dcr/revocations?org_id=a&org_id=b", "", ``, 400},
		{"method", http.MethodPut, "/dcr/revocations", "application/json", `{}`, 405},
	} {
		status, body := f.callBody(t, tc.method, tc.target, tc.contentType, tc.body)
		if status != tc.status || body["error"] == nil || body["error_description"] == nil {
			t.Errorf("%s: %d %v, want %d with error and error_description", tc.name, status, body, tc.status)
		}
	}
	if got := liveIDs(t, f); got != "client-0 client-1 client-2" {
		t.Errorf("after bad input the registry is %q", got)
	}
	if entries, err := f.store.DenyList(t.Context()); err != nil || len(entries) != 0 {
		t.Errorf("after bad input the deny list is %v, %v", entries, err)
	}
}

// TestAdminStrikeOffPartialFailure: with the backend failing for one client, the strike-off
// reports which were deleted and which not, keeps the deny entry, and a retry finishes.
func TestAdminStrikeOffPartialFailure(t *testing.T) {
	f := newAdminFixture(t)
	reg := f.dir.entries[0]
	reg.RegistrarID = "dcr.registrars.upstream"
	backendDown := true
	var calls []string
	reg.viaServer = func(ctx context.Context, rec *dcr.Registration) error {
		calls = append(calls, rec.ClientID)
		if rec.ClientID == "client-2" && backendDown {
			return dcr.Unavailable(context.DeadlineExceeded, "the authorization server is unavailable")
		}
		return dcr.TombstoneLatest(ctx, reg.Store, rec, 3, dcr.Commit{})
	}
	status, body := strikeOff(t, f, `{"org_id": "org-X", "reason": "r"}`)
	if status != http.StatusServiceUnavailable || body["error"] != "incomplete" ||
		!slices.Equal(strs(body["deleted"]), []string{"client-0"}) || !slices.Equal(strs(body["failed"]), []string{"client-2"}) {
		t.Fatalf("strike-off with the backend down for client-2 = %d %v", status, body)
	}
	if failed := body["failed"].([]any)[0].(map[string]any); failed["status"] != float64(503) || failed["error"] != "temporarily_unavailable" {
		t.Errorf("failed entry = %v", failed)
	}
	if d, err := dcr.ReadOnly(f.store).Denied(t.Context(), "org-X", ""); err != nil || !d.Org {
		t.Fatalf("the deny entry is not recorded after a partial strike-off: %+v %v", d, err)
	}
	if got := liveIDs(t, f); got != "client-1 client-2" {
		t.Fatalf("live after the partial strike-off: %q", got)
	}
	backendDown = false
	status, body = strikeOff(t, f, `{"org_id": "org-X", "reason": "r"}`)
	if status != http.StatusOK || !slices.Equal(strs(body["deleted"]), []string{"client-2"}) || body["deny_entry_created"] != false {
		t.Fatalf("retry = %d %v", status, body)
	}
	if got := liveIDs(t, f); got != "client-1" {
		t.Fatalf("live after the retry: %q", got)
	}
	if !slices.Equal(calls, []string{"client-0", "client-2", "client-2"}) {
		t.Errorf("deletions through the server: %v", calls)
	}
}
