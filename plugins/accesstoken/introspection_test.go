package accesstoken

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/dcr"
)

// introspector is a test RFC 7662 endpoint: answers by token, counts calls per token.
type introspector struct {
	mu      sync.Mutex
	answers map[string]map[string]any
	calls   map[string]int
	// check validates the caller's authentication; nil accepts anyone.
	check func(r *http.Request) bool
	// raw, when set, is sent instead of an answer.
	raw    string
	status int
}

func (in *introspector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if in.check != nil && !in.check(r) {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	token := r.PostForm.Get("token")
	if in.calls == nil {
		in.calls = map[string]int{}
	}
	in.calls[token]++
	if in.status != 0 {
		w.WriteHeader(in.status)
	}
	if in.raw != "" {
		_, _ = w.Write([]byte(in.raw))
		return
	}
	answer, ok := in.answers[token]
	if !ok {
		answer = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

func (in *introspector) callsFor(token string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[token]
}

func (in *introspector) set(f func(in *introspector)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	f(in)
}

func introspectionConfig(t *testing.T, srv *httptest.Server, client string) string {
	return fmt.Sprintf(`{"issuer": %q, "introspection": {"endpoint": %q, "cache_ttl": "10m"}, "client": %s, "register": {}}`,
		testIssuer, srv.URL+"/introspect", strings.Replace(client, "CA", writeCA(t, srv), 1))
}

func TestIntrospection(t *testing.T) {
	exp := time.Now().Add(5 * time.Minute)
	in := &introspector{answers: map[string]map[string]any{
		"good":     {"active": true, "scope": "dcr_register", "client_id": "onboarding", "iss": testIssuer, "exp": exp.Unix(), "jti": "j-1"},
		"noscope":  {"active": true, "scope": "openid", "client_id": "onboarding", "exp": exp.Unix()},
		"otheriss": {"active": true, "scope": "dcr_register", "iss": "https://evil.example", "exp": exp.Unix()},
		"noexp":    {"active": true, "scope": "dcr_register"},
		"expired":  {"active": true, "scope": "dcr_register", "exp": time.Now().Add(-time.Hour).Unix()},
	}, check: func(r *http.Request) bool {
		id, secret, ok := r.BasicAuth()
		return ok && id == "gateway" && secret == "s3cret"
	}}
	srv := httptest.NewTLSServer(in)
	defer srv.Close()
	a := mustProvision(t, introspectionConfig(t, srv, `{"client_id": "gateway", "auth_method": "client_secret_basic", "client_secret": "s3cret", "trusted_roots": ["CA"]}`))
	ctx := context.Background()

	now := time.Now()
	claims, derr := a.verifier.Verify(ctx, "good", now)
	if derr != nil || claims["client_id"] != "onboarding" {
		t.Fatalf("good token: %v %v", claims, derr)
	}
	for token, want := range map[string]int{"unknown": 401, "otheriss": 401, "expired": 401} {
		if _, derr := a.verifier.Verify(ctx, token, now); derr == nil || derr.Status != want || derr.Code != dcr.CodeInvalidToken {
			t.Fatalf("%s: got %v, want %d", token, derr, want)
		}
	}
	x := exchange(dcr.OpRegister, &onceStore{}, "Bearer noscope")
	assertErr(t, x.protect(ctx, a), 403, dcr.CodeInsufficientScope, "")
	x = exchange(dcr.OpRegister, &onceStore{}, "Bearer good")
	if err := x.protect(ctx, a); err != nil || len(x.Claims) != 1 || !strings.HasSuffix(x.Claims[0].Key, "\x00j-1") {
		t.Fatalf("err %v, claims %+v", err, x.Claims)
	}
	x = exchange(dcr.OpRegister, &onceStore{}, "Bearer noexp")
	if err := x.protect(ctx, a); err != nil || len(x.Claims) != 1 || x.Claims[0].TTL != 24*time.Hour {
		t.Fatalf("a token without exp is remembered for consumed_ttl: err %v, claims %+v", err, x.Claims)
	}

	t.Run("cache bounded by exp and cache_ttl", func(t *testing.T) {
		before := in.callsFor("good")
		if _, derr := a.verifier.Verify(ctx, "good", now.Add(time.Minute)); derr != nil {
			t.Fatal(derr)
		}
		if in.callsFor("good") != before {
			t.Fatal("a fresh answer was not reused")
		}
		// Past the token's exp (5m, before the 10m cache_ttl) the answer is not reused.
		in.set(func(in *introspector) { in.answers["good"] = map[string]any{"active": false} })
		if _, derr := a.verifier.Verify(ctx, "good", exp.Add(time.Second)); derr == nil {
			t.Fatal("an answer was reused past the token's exp")
		}
		if in.callsFor("good") != before+1 {
			t.Fatalf("calls %d, want %d", in.callsFor("good"), before+1)
		}
		// An inactive answer is reused up to cache_ttl, then asked again.
		in.set(func(in *introspector) { in.answers["good"]["active"] = true })
		if _, derr := a.verifier.Verify(ctx, "good", exp.Add(2*time.Second)); derr == nil {
			t.Fatal("the cached inactive answer was not reused")
		}
		if in.callsFor("good") != before+1 {
			t.Fatal("an inactive answer was not cached")
		}
		if _, derr := a.verifier.Verify(ctx, "good", exp.Add(11*time.Minute)); derr != nil {
			t.Fatalf("after cache_ttl: %v", derr)
		}
		if in.callsFor("good") != before+2 {
			t.Fatal("the answer was reused past cache_ttl")
		}
	})

	t.Run("endpoint failures are 503", func(t *testing.T) {
		for name, f := range map[string]func(in *introspector){
			"500":               func(in *introspector) { in.status, in.raw = 500, "oops" },
			"not JSON":          func(in *introspector) { in.status, in.raw = 0, "<html>" },
			"active a string":   func(in *introspector) { in.status, in.raw = 0, `{"active":"true"}` },
			"two objects":       func(in *introspector) { in.status, in.raw = 0, `{"active":true}{"active":true}` },
			"larger than 64KiB": func(in *introspector) { in.status, in.raw = 0, `{"active":true,"x":"`+strings.Repeat("a", 70<<10)+`"}` },
		} {
			t.Run(name, func(t *testing.T) {
				in.set(f)
				defer in.set(func(in *introspector) { in.status, in.raw = 0, "" })
				_, derr := a.verifier.Verify(ctx, "fresh-"+name, now)
				if derr == nil || derr.Status != http.StatusServiceUnavailable || derr.Code != dcr.CodeTemporarilyUnavailable {
					t.Fatalf("got %v, want 503", derr)
				}
			})
		}
		bad := mustProvision(t, introspectionConfig(t, srv, `{"client_id": "gateway", "auth_method": "client_secret_basic", "client_secret": "wrong", "trusted_roots": ["CA"]}`))
		if _, derr := bad.verifier.Verify(ctx, "good", now); derr == nil || derr.Status != 503 {
			t.Fatalf("rejected gateway credentials: got %v, want 503", derr)
		}
		down := httptest.NewTLSServer(in)
		cfg := introspectionConfig(t, down, `{"client_id": "gateway", "auth_method": "client_secret_basic", "client_secret": "s3cret", "trusted_roots": ["CA"]}`)
		down.Close()
		gone := mustProvision(t, cfg)
		if _, derr := gone.verifier.Verify(ctx, "good", now); derr == nil || derr.Status != 503 {
			t.Fatalf("endpoint down: got %v, want 503", derr)
		}
		untrusted := mustProvision(t, fmt.Sprintf(`{"introspection": {"endpoint": %q}, "client": {"client_id": "gateway", "auth_method": "client_secret_basic", "client_secret": "s3cret"}}`, srv.URL+"/i"))
		if _, derr := untrusted.verifier.Verify(ctx, "good", now); derr == nil || derr.Status != 503 {
			t.Fatalf("untrusted certificate: got %v, want 503", derr)
		}
	})

	t.Run("management uses the introspected client_id", func(t *testing.T) {
		in.set(func(in *introspector) {
			in.answers["cc-a"] = map[string]any{"active": true, "client_id": "client-a", "sub": "client-b", "exp": exp.Unix()}
		})
		m := mustProvision(t, fmt.Sprintf(`{"introspection": {"endpoint": %q}, "client": {"client_id": "gateway", "auth_method": "client_secret_basic", "client_secret": "s3cret", "trusted_roots": [%q]}, "manage": {"read": ["client_credentials"]}, "client_claim": "sub"}`, srv.URL+"/i", writeCA(t, srv)))
		x := exchange(dcr.OpRead, &onceStore{})
		x.ClientID, x.BearerToken, x.Existing = "client-a", "cc-a", &dcr.Registration{ClientID: "client-a"}
		if err := x.protect(ctx, m); err != nil || !x.ManagementAuthorized {
			t.Fatalf("err %v, authorized %v", err, x.ManagementAuthorized)
		}
		in.set(func(in *introspector) { in.status, in.raw = 500, "down" })
		defer in.set(func(in *introspector) { in.status, in.raw = 0, "" })
		for _, rec := range []*dcr.Registration{{ClientID: "client-a"}, nil} {
			x := exchange(dcr.OpRead, &onceStore{})
			x.ClientID, x.BearerToken, x.Existing = "client-a", "cc-down", rec
			assertErr(t, x.protect(ctx, m), 503, dcr.CodeTemporarilyUnavailable, "")
		}
	})
}

// TestIntrospectionPrivateKeyJWT checks the client assertion the gateway sends.
func TestIntrospectionPrivateKeyJWT(t *testing.T) {
	keyFile, key := writeECKey(t)
	var srvURL string
	in := &introspector{answers: map[string]map[string]any{"good": {"active": true, "scope": "dcr_register"}}}
	in.check = func(r *http.Request) bool {
		if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			return false
		}
		payload, err := jws.Verify([]byte(r.PostForm.Get("client_assertion")), jws.WithKey(jwa.ES256, &key.PublicKey))
		if err != nil {
			return false
		}
		msg, _ := jws.Parse([]byte(r.PostForm.Get("client_assertion")))
		var c map[string]any
		_ = json.Unmarshal(payload, &c)
		return c["iss"] == "gateway" && c["sub"] == "gateway" && c["aud"] == srvURL+"/introspect" &&
			c["jti"] != "" && c["exp"] != nil && msg.Signatures()[0].ProtectedHeaders().KeyID() == "gw-key"
	}
	srv := httptest.NewTLSServer(in)
	defer srv.Close()
	srvURL = srv.URL
	a := mustProvision(t, introspectionConfig(t, srv, fmt.Sprintf(`{"client_id": "gateway", "auth_method": "private_key_jwt", "signing_key": %q, "signing_kid": "gw-key", "trusted_roots": ["CA"]}`, keyFile)))
	if _, derr := a.verifier.Verify(context.Background(), "good", time.Now()); derr != nil {
		t.Fatalf("private_key_jwt introspection: %v", derr)
	}
}

// TestIntrospectionTLSClientAuth checks that the gateway presents its certificate and client_id.
func TestIntrospectionTLSClientAuth(t *testing.T) {
	in := &introspector{answers: map[string]map[string]any{"good": {"active": true, "scope": "dcr_register"}}}
	in.check = func(r *http.Request) bool {
		return r.TLS != nil && len(r.TLS.PeerCertificates) == 1 && r.PostForm.Get("client_id") == "gateway" && r.Header.Get("Authorization") == ""
	}
	srv := httptest.NewUnstartedServer(in)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()
	// The test server's own certificate doubles as the gateway's client certificate.
	certFile, keyFile := writeServerPair(t, srv)
	a := mustProvision(t, introspectionConfig(t, srv, fmt.Sprintf(`{"client_id": "gateway", "auth_method": "tls_client_auth", "certificate": %q, "certificate_key": %q, "trusted_roots": ["CA"]}`, certFile, keyFile)))
	if _, derr := a.verifier.Verify(context.Background(), "good", time.Now()); derr != nil {
		t.Fatalf("tls_client_auth introspection: %v", derr)
	}
	if in.callsFor("good") != 1 {
		t.Fatal("the endpoint was not called")
	}
}
