package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/secret"
	"github.com/dcrgate/dcrgate/internal/placeholder"
	"github.com/dcrgate/dcrgate/storage/caddystorage"
)

// fakeBackend is a minimal RFC 7591/7592 registry for the registrar's unit tests; the real
// backend (node-oidc-provider) is exercised in realbackend_test.go and the integration tests.
type fakeBackend struct {
	mu      sync.Mutex
	clients map[string]string // client_id -> registration access token
	calls   []string          // "METHOD path bearer"
	bodies  []map[string]any  // the JSON body of each call (nil without one)
	// extra is added to every registration answer, as a backend adds its defaults and fields
	// of its own (and may change what it was sent).
	extra map[string]any
	// ignore are metadata the backend leaves out of its answers (it does not support them).
	ignore []string
	n      int
	// reject, when set, answers every call.
	reject func(w http.ResponseWriter)
	// rotate issues a new registration access token on PUT.
	rotate bool
}

func newFakeBackend() *fakeBackend { return &fakeBackend{clients: map[string]string{}} }

func (b *fakeBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	b.calls = append(b.calls, r.Method+" "+r.URL.Path+" "+bearer)
	if b.reject != nil {
		b.reject(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	var body map[string]any
	if r.Body != nil {
		_ = json.NewDecoder(r.Body).Decode(&body)
	}
	b.bodies = append(b.bodies, clone(body))
	for k, v := range b.extra {
		if body != nil {
			body[k] = v
		}
	}
	for _, k := range b.ignore {
		delete(body, k)
	}
	if r.Method == http.MethodPost && r.URL.Path == "/reg" {
		if bearer != "iat-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
			return
		}
		b.n++
		id := fmt.Sprintf("backend-%d", b.n)
		tok := fmt.Sprintf("rat-%d", b.n)
		b.clients[id] = tok
		body["client_id"], body["registration_access_token"] = id, tok
		body["registration_client_uri"] = "https://as.internal/reg/" + id
		body["client_id_issued_at"] = 1700000000
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/reg/")
	if tok, ok := b.clients[id]; !ok || tok != bearer {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
		return
	}
	switch r.Method {
	case http.MethodPut:
		if body["client_id"] != id {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
			return
		}
		if b.rotate {
			b.n++
			b.clients[id] = fmt.Sprintf("rat-%d", b.n)
		}
		body["registration_access_token"] = b.clients[id]
		_ = json.NewEncoder(w).Encode(body)
	case http.MethodDelete:
		delete(b.clients, id)
		w.WriteHeader(http.StatusNoContent)
	}
}

func clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (b *fakeBackend) known(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.clients[id]
	return ok
}

func (b *fakeBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.clients)
}

// failingStore fails the record writes selected by its flags, as a store that goes down
// right after the backend said yes.
type failingStore struct {
	dcr.Store
	create, update, del bool
}

var errStoreDown = errors.New("store down")

func (s *failingStore) Create(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	if s.create {
		return errStoreDown
	}
	return s.Store.Create(ctx, rec, with...)
}

func (s *failingStore) Update(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	if s.update {
		return errStoreDown
	}
	return s.Store.Update(ctx, rec, with...)
}

func (s *failingStore) Delete(ctx context.Context, id string, v int64, with ...dcr.Commit) error {
	if s.del {
		return errStoreDown
	}
	return s.Store.Delete(ctx, id, v, with...)
}

func newRegistrar(t *testing.T) *Upstream {
	t.Helper()
	u := &Upstream{RegistrationPath: "/reg", InitialAccessToken: "{env.DCRGATE_TEST_IAT}", logger: zap.NewNop()}
	t.Setenv("DCRGATE_TEST_IAT", "iat-secret")
	u.MaxResponseSize, u.Timeout = DefaultMaxResponseSize, DefaultTimeout
	u.initialAccessToken = placeholder.Resolve(u.InitialAccessToken)
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	return u
}

// call is an exchange as the handler gives it to the registrar, with the store and the
// next handler (the backend) of the call.
type call struct {
	*dcr.Exchange
	Commit dcr.Commit
	Store  dcr.Store
	Next   func(w http.ResponseWriter, r *http.Request) error
}

// nextHandler is a func as a dcr.Backend.
type nextHandler func(w http.ResponseWriter, r *http.Request) error

func (f nextHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

func (c *call) backend() dcr.Backend {
	if c.Next == nil {
		return nil
	}
	return nextHandler(c.Next)
}

func (c *call) register(ctx context.Context, u *Upstream) (*dcr.Registration, map[string]any, error) {
	return u.Register(ctx, c.Exchange, c.Commit, c.Store, c.backend())
}

func (c *call) update(ctx context.Context, u *Upstream) (*dcr.Registration, map[string]any, error) {
	return u.Update(ctx, c.Exchange, c.Commit, c.Store, c.backend())
}

func (c *call) delete(ctx context.Context, u *Upstream) error {
	return u.Delete(ctx, c.Exchange, c.Commit, c.Store, c.backend())
}

func exchange(t *testing.T, store dcr.Store, b http.Handler) *call {
	t.Helper()
	return &call{
		Store: store,
		Next: func(w http.ResponseWriter, r *http.Request) error {
			b.ServeHTTP(w, r)
			return nil
		},
		Exchange: &dcr.Exchange{
			Operation: dcr.OpRegister,
			Request:   httptest.NewRequest(http.MethodPost, "https://gw.example/register", nil),
			Now:       time.Now(),
			AcceptedMetadata: map[string]any{"token_endpoint_auth_method": "private_key_jwt", "scope": "openid accounts",
				"grant_types": []any{"client_credentials"}},
			MetadataNames: map[string][]string{"tls_client_auth_subject_dn": {"tls_client_auth_dn"}},
			SoftwareStatement: &dcr.SoftwareStatement{Raw: "a.b.c", SoftwareID: "sw1", OrgID: "org1",
				JWKSURI: "https://keys.example/sw1.jwks", Claims: map[string]any{"software_id": "sw1"}, Directory: "OpenBanking Ltd"},
		},
	}
}

func newStore(t *testing.T) dcr.Store {
	return caddystorage.New(&certmagic.FileStorage{Path: t.TempDir()}, "dcr")
}

func TestRegisterProvisionsTheBackend(t *testing.T) {
	b := newFakeBackend()
	u := newRegistrar(t)
	x := exchange(t, newStore(t), b)
	rec, creds, err := x.register(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ClientID != "backend-1" || !b.known("backend-1") {
		t.Fatalf("client_id %q is not the backend's", rec.ClientID)
	}
	if b.calls[0] != "POST /reg iat-secret" {
		t.Fatalf("registration call %q", b.calls[0])
	}
	tok, _ := creds["registration_access_token"].(string)
	if tok == "" || tok == "rat-1" || rec.RegistrationTokenHash != secret.Hash(tok) {
		t.Fatalf("the TPP's token %q must be the gateway's own, not the backend's", tok)
	}
	if rec.Backend[backendToken] != "rat-1" || rec.Backend[backendClientURI] != "https://as.internal/reg/backend-1" {
		t.Fatalf("backend reference %v", rec.Backend)
	}
	// The backend was given the SSA's keys; the TPP's registration is what was accepted.
	if b.bodies[0]["jwks_uri"] != "https://keys.example/sw1.jwks" || rec.Metadata["registration_access_token"] != nil {
		t.Fatalf("backend request %v, stored metadata %v", b.bodies[0], rec.Metadata)
	}
	if _, ok := rec.Metadata["jwks_uri"]; ok {
		t.Fatalf("the backend's translation reached the stored metadata: %v", rec.Metadata)
	}
	if rec.IssuedAt.Unix() != 1700000000 {
		t.Fatalf("client_id_issued_at %v is not the backend's", rec.IssuedAt)
	}
	stored, err := x.Store.Get(context.Background(), rec.ClientID)
	if err != nil || stored.Backend[backendToken] != "rat-1" {
		t.Fatalf("stored %+v %v", stored, err)
	}
	// The names the client sent its metadata under are part of the registration.
	if !reflect.DeepEqual(stored.MetadataNames, x.MetadataNames) {
		t.Fatalf("metadata names %v, want %v", stored.MetadataNames, x.MetadataNames)
	}
}

func TestRegisterStoreFailureIsCompensated(t *testing.T) {
	b := newFakeBackend()
	u := newRegistrar(t)
	x := exchange(t, &failingStore{Store: newStore(t), create: true}, b)
	_, _, err := x.register(context.Background(), u)
	if e := dcr.AsError(err); e.Status != http.StatusServiceUnavailable {
		t.Fatalf("store down after the backend said yes: %v, want 503", err)
	}
	if b.count() != 0 || len(b.calls) != 2 || b.calls[1] != "DELETE /reg/backend-1 rat-1" {
		t.Fatalf("compensation: backend keeps %d clients after calls %v", b.count(), b.calls)
	}
}

func TestRegisterBackendRejections(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		status int
		code   string
	}{
		{"RFC 7591 error passes through", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":"invalid_redirect_uri","error_description":"redirect_uris must\nbe https"}`))
		}, 400, "invalid_redirect_uri"},
		{"400 without an RFC 7591 error", func(w http.ResponseWriter) {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`<html>bad</html>`))
		}, 502, dcr.CodeServerError},
		{"initial access token refused", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
		}, 502, dcr.CodeServerError},
		{"backend error", func(w http.ResponseWriter) { w.WriteHeader(500) }, 502, dcr.CodeServerError},
		{"backend unavailable", func(w http.ResponseWriter) { w.WriteHeader(503) }, 503, dcr.CodeTemporarilyUnavailable},
		{"answer too large", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"client_id":"x","pad":"` + strings.Repeat("a", DefaultMaxResponseSize) + `"}`))
		}, 502, dcr.CodeServerError},
		{"no client_id", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"client_id":"a/b"}`))
		}, 502, dcr.CodeServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend()
			b.reject = tc.answer
			store := newStore(t)
			_, _, err := exchange(t, store, b).register(context.Background(), newRegistrar(t))
			e := dcr.AsError(err)
			if e == nil || e.Status != tc.status || e.Code != tc.code {
				t.Fatalf("got %v, want %d %s", err, tc.status, tc.code)
			}
			if strings.ContainsAny(e.Description, "\n\r") {
				t.Fatalf("control characters passed through: %q", e.Description)
			}
			if ids, _ := store.ListBySoftware(context.Background(), "sw1"); len(ids) != 0 {
				t.Fatalf("stored %v after a rejection", ids)
			}
		})
	}
}

func TestRegisterBackendDown(t *testing.T) {
	store := newStore(t)
	x := exchange(t, store, nil)
	x.Next = func(http.ResponseWriter, *http.Request) error { return errors.New("dial tcp: connection refused") }
	_, _, err := x.register(context.Background(), newRegistrar(t))
	if e := dcr.AsError(err); e.Status != http.StatusServiceUnavailable || e.Header.Get("Retry-After") == "" {
		t.Fatalf("backend down: %v", err)
	}
	if ids, _ := store.ListBySoftware(context.Background(), "sw1"); len(ids) != 0 {
		t.Fatalf("stored %v with the backend down", ids)
	}
}

func register(t *testing.T, u *Upstream, b *fakeBackend, store dcr.Store) *dcr.Registration {
	t.Helper()
	rec, _, err := exchange(t, store, b).register(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestUpdateStoresTheRotatedToken(t *testing.T) {
	b := newFakeBackend()
	b.rotate = true
	u, store := newRegistrar(t), newStore(t)
	rec := register(t, u, b, store)
	x := exchange(t, store, b)
	x.Operation, x.ClientID, x.Existing = dcr.OpUpdate, rec.ClientID, rec
	x.AcceptedMetadata = map[string]any{"token_endpoint_auth_method": "private_key_jwt", "scope": "openid payments",
		"grant_types": []any{"client_credentials"}}
	got, _, err := x.update(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata["scope"] != "openid payments" || got.Backend[backendToken] != "rat-2" {
		t.Fatalf("after update: scope %v, backend token %v", got.Metadata["scope"], got.Backend[backendToken])
	}
	if last := b.calls[len(b.calls)-1]; last != "PUT /reg/backend-1 rat-1" {
		t.Fatalf("update call %q", last)
	}
	// The rotated token is the one that works next.
	x.Existing = got
	if err := x.delete(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if b.known(rec.ClientID) {
		t.Fatal("the backend still knows the client after delete")
	}
}

func TestUpdateStoreFailureRestoresTheBackend(t *testing.T) {
	b := newFakeBackend()
	u, store := newRegistrar(t), newStore(t)
	rec := register(t, u, b, store)
	x := exchange(t, &failingStore{Store: store, update: true}, b)
	x.Operation, x.ClientID, x.Existing = dcr.OpUpdate, rec.ClientID, rec
	x.AcceptedMetadata = map[string]any{"scope": "openid payments", "grant_types": []any{"client_credentials"}}
	if _, _, err := x.update(context.Background(), u); err == nil {
		t.Fatal("update succeeded with the store down")
	}
	calls := b.calls[len(b.calls)-2:]
	if calls[0] != "PUT /reg/backend-1 rat-1" || calls[1] != "PUT /reg/backend-1 rat-1" {
		t.Fatalf("calls %v: want the update and its compensation", calls)
	}
	// The compensation puts back what the backend was asked for at registration.
	restored, first := b.bodies[len(b.bodies)-1], clone(b.bodies[0])
	first["client_id"] = rec.ClientID
	if !reflect.DeepEqual(restored, first) {
		t.Fatalf("compensation sent\n %v\nwant the registration's request\n %v", restored, first)
	}
}

func TestDelete(t *testing.T) {
	b := newFakeBackend()
	u, store := newRegistrar(t), newStore(t)
	rec := register(t, u, b, store)

	// The tombstone fails: the backend is gone already, so the retry must still succeed.
	x := exchange(t, &failingStore{Store: store, del: true}, b)
	x.Operation, x.ClientID, x.Existing = dcr.OpDelete, rec.ClientID, rec
	if err := x.delete(context.Background(), u); !errors.Is(err, errStoreDown) {
		t.Fatalf("delete with the store down: %v", err)
	}
	if b.known(rec.ClientID) {
		t.Fatal("backend still knows the client")
	}
	x.Store = store
	if err := x.delete(context.Background(), u); err != nil {
		t.Fatalf("retried delete: %v", err)
	}
	if _, err := store.Get(context.Background(), rec.ClientID); !errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestDeleteBackendErrorKeepsTheRecord(t *testing.T) {
	b := newFakeBackend()
	u, store := newRegistrar(t), newStore(t)
	rec := register(t, u, b, store)
	b.reject = func(w http.ResponseWriter) { w.WriteHeader(500) }
	x := exchange(t, store, b)
	x.Operation, x.ClientID, x.Existing = dcr.OpDelete, rec.ClientID, rec
	if e := dcr.AsError(x.delete(context.Background(), u)); e == nil || e.Status != http.StatusBadGateway {
		t.Fatalf("backend error on delete: %v", e)
	}
	if _, err := store.Get(context.Background(), rec.ClientID); err != nil {
		t.Fatalf("the record must stay while the backend keeps the client: %v", err)
	}
}
