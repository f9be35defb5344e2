package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
)

// realBackend starts examples/backends/oidc-provider and returns a Next that proxies to it
// (as reverse_proxy would), recording the backend's answers to registrations.
func realBackend(t *testing.T) (*gatewaytest.OIDCProvider, func(w http.ResponseWriter, r *http.Request) error, *[]map[string]any) {
	t.Helper()
	as := gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{Issuer: "https://gw.example", InitialAccessToken: "iat-secret"})
	target, _ := url.Parse(as.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var created []map[string]any
	next := func(w http.ResponseWriter, r *http.Request) error {
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && rec.Code == http.StatusCreated {
			var m map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &m)
			created = append(created, m)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return nil
	}
	return as, next, &created
}

func backendKnows(t *testing.T, as *gatewaytest.OIDCProvider, clientID, token string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, as.URL+"/reg/"+clientID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestRealBackendCompensation: against node-oidc-provider, a store that fails right after the
// backend created the client leaves no client in the backend; with a working store the same
// registration exists there (so the check can tell).
func TestRealBackendCompensation(t *testing.T) {
	as, next, created := realBackend(t)
	u := newRegistrar(t)
	store := newStore(t)

	x := exchange(t, &failingStore{Store: store, create: true}, nil)
	x.Next = next
	_, _, err := x.register(context.Background(), u)
	if e := dcr.AsError(err); e.Status != http.StatusServiceUnavailable {
		t.Fatalf("store down after the backend said yes: %v", err)
	}
	if len(*created) != 1 {
		t.Fatalf("backend created %d clients, want 1", len(*created))
	}
	orphan := (*created)[0]
	if backendKnows(t, as, orphan["client_id"].(string), orphan["registration_access_token"].(string)) {
		t.Fatal("compensation left the client in the backend")
	}

	x = exchange(t, store, nil)
	x.Next = next
	rec, _, err := x.register(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if !backendKnows(t, as, rec.ClientID, rec.Backend[backendToken].(string)) {
		t.Fatal("the registered client is not in the backend")
	}

	// Update with the store down: the backend gets the previous metadata back.
	u2 := exchange(t, &failingStore{Store: store, update: true}, nil)
	u2.Next, u2.Operation, u2.ClientID, u2.Existing = next, dcr.OpUpdate, rec.ClientID, rec
	u2.AcceptedMetadata = map[string]any{"token_endpoint_auth_method": "private_key_jwt", "scope": "openid payments",
		"grant_types": []any{"client_credentials"}}
	if _, _, err := u2.update(context.Background(), u); !errors.Is(err, errStoreDown) {
		t.Fatalf("update with the store down: %v", err)
	}
}
