package caddymodule_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

const atIssuer = "https://as.test"

// testAS is a stand-in authorization server over HTTPS: it publishes a JWKS, mints JWT access
// tokens with its key, introspects the tokens it was told about and records revocations.
type testAS struct {
	srv  *httptest.Server
	ca   string
	key  *rsa.PrivateKey
	jwks []byte

	mu        sync.Mutex
	active    map[string]map[string]any
	revoked   []string
	revokeCh  chan string
	down      atomic.Bool
	basicAuth []string
}

func newTestAS(t *testing.T) *testAS {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := jwk.FromRaw(key.Public())
	_ = pub.Set(jwk.KeyIDKey, "as-key")
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	as := &testAS{key: key, active: map[string]map[string]any{}, revokeCh: make(chan string, 200)}
	as.jwks, _ = json.Marshal(set)
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(as.jwks)
	})
	mux.HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		if as.down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if !as.authorized(r) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		as.mu.Lock()
		answer, ok := as.active[r.PostForm.Get("token")]
		as.mu.Unlock()
		if !ok {
			answer = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
	mux.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		if !as.authorized(r) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		as.mu.Lock()
		as.revoked = append(as.revoked, r.PostForm.Get("token"))
		as.mu.Unlock()
		as.revokeCh <- r.PostForm.Get("token")
	})
	as.srv = httptest.NewTLSServer(mux)
	t.Cleanup(as.srv.Close)
	as.ca = filepath.Join(t.TempDir(), "as-ca.pem")
	if err := os.WriteFile(as.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: as.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return as
}

func (as *testAS) authorized(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	return r.ParseForm() == nil && ok && id == "dcr-gateway" && secret == "gw-secret"
}

// claims are a valid token's claims for audience aud, changed by change (nil removes).
func (as *testAS) claims(aud string, change map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": atIssuer, "aud": aud, "client_id": "onboarding-client", "scope": "dcr_register",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": uuid.NewString()}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (as *testAS) mint(t *testing.T, claims map[string]any) string {
	t.Helper()
	return as.mintWith(t, claims, jwa.PS256, as.key, "as-key")
}

func (as *testAS) mintWith(t *testing.T, claims map[string]any, alg jwa.SignatureAlgorithm, key any, kid string) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, kid)
	_ = hdr.Set(jws.TypeKey, "at+jwt")
	var (
		b   []byte
		err error
	)
	if alg == jwa.NoSignature {
		b, err = jws.Sign(payload, jws.WithInsecureNoSignature(jws.WithProtectedHeaders(hdr)))
	} else {
		b, err = jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitRevoked waits until the server received a revocation of token (revocations run in the
// background once the answer is sent).
func (as *testAS) waitRevoked(t *testing.T, token string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case got := <-as.revokeCh:
			if got == token {
				return
			}
		case <-timeout:
			t.Fatal("the token was never revoked")
		}
	}
}

func (as *testAS) wasRevoked(token string) bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, r := range as.revoked {
		if r == token {
			return true
		}
	}
	return false
}

func startAccessTokenGateway(t *testing.T, as *testAS, verification string) *gatewaytest.Gateway {
	t.Helper()
	block := gatewaytest.DefaultDCRBlock + fmt.Sprintf(`
		access_token {
			issuer %s
			audience {{BASE}}
			%s
			revocation %s/revoke
			client dcr-gateway {
				client_secret_basic {env.DCR_TEST_AS_SECRET}
				trusted_roots %s
			}
			register {
				revoke
			}
			manage read registration_token client_credentials
			manage update client_credentials
			manage delete registration_token client_credentials
		}
`, atIssuer, verification, as.srv.URL, as.ca)
	return gatewaytest.Start(t, gatewaytest.Options{TPPs: 2, DCRBlock: block, Env: []string{"DCR_TEST_AS_SECRET=gw-secret"}})
}

// storeCounts are the registrations and one-time keys in the gateway's store.
func storeCounts(g *gatewaytest.Gateway) (int, int) {
	return len(g.StoreFiles("/registrations/")), len(g.StoreFiles("/once/"))
}

func register(t *testing.T, c *tppclient.Client, token string) *tppclient.Response {
	t.Helper()
	resp, err := c.Register(gatewaytest.Context(t), sign(t, c, c.Claims(), tppclient.SignOptions{}), "", token)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// postWithAuthorization sends a valid registration with raw Authorization header values.
func postWithAuthorization(t *testing.T, g *gatewaytest.Gateway, c *tppclient.Client, values ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(gatewaytest.Context(t), http.MethodPost, g.Endpoint, bytes.NewReader(sign(t, c, c.Claims(), tppclient.SignOptions{})))
	req.Header.Set("Content-Type", "application/jose")
	for _, v := range values {
		req.Header.Add("Authorization", v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readJSON(t, resp), resp.Header
}

// TestAccessTokenJWTThroughServer drives protect-by-access-token and client-credentials
// management through the real gateway, with JWT access tokens verified against an HTTPS JWKS.
func TestAccessTokenJWTThroughServer(t *testing.T) {
	as := newTestAS(t)
	g := startAccessTokenGateway(t, as, fmt.Sprintf("jwks_url %s/jwks\n\t\t\tfetch {\n\t\t\t\ttrusted_roots %s\n\t\t\t}", as.srv.URL, as.ca))
	c1 := newClient(t, g, 1)
	aud := g.BaseURL
	now := time.Now().Unix()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(as.key.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	t.Run("bad tokens", func(t *testing.T) {
		cases := []struct {
			name   string
			auth   []string
			status int
			code   string
		}{
			{"no Authorization", nil, 401, "invalid_token"},
			{"expired", []string{"Bearer " + as.mint(t, as.claims(aud, map[string]any{"iat": now - 900, "exp": now - 600}))}, 401, "invalid_token"},
			{"not yet valid", []string{"Bearer " + as.mint(t, as.claims(aud, map[string]any{"nbf": now + 600}))}, 401, "invalid_token"},
			{"wrong issuer", []string{"Bearer " + as.mint(t, as.claims(aud, map[string]any{"iss": "https://evil.test"}))}, 401, "invalid_token"},
			{"wrong audience", []string{"Bearer " + as.mint(t, as.claims("https://other-bank.example", nil))}, 401, "invalid_token"},
			{"alg none", []string{"Bearer " + as.mintWith(t, as.claims(aud, nil), jwa.NoSignature, nil, "as-key")}, 401, "invalid_token"},
			{"HS256 with the RSA public key as secret", []string{"Bearer " + as.mintWith(t, as.claims(aud, nil), jwa.HS256, pubPEM, "as-key")}, 401, "invalid_token"},
			{"unknown kid", []string{"Bearer " + as.mintWith(t, as.claims(aud, nil), jwa.PS256, other, "rotated-away")}, 401, "invalid_token"},
			{"signed by another key", []string{"Bearer " + as.mintWith(t, as.claims(aud, nil), jwa.PS256, other, "as-key")}, 401, "invalid_token"},
			{"missing scope", []string{"Bearer " + as.mint(t, as.claims(aud, map[string]any{"scope": "openid accounts"}))}, 403, "insufficient_scope"},
			{"Bearer alone", []string{"Bearer"}, 401, "invalid_token"},
			{"two tokens", []string{"Bearer " + as.mint(t, as.claims(aud, nil)), "Bearer " + as.mint(t, as.claims(aud, nil))}, 401, "invalid_token"},
			{"token with spaces", []string{"Bearer " + as.mint(t, as.claims(aud, nil)) + " extra"}, 401, "invalid_token"},
			{"Basic scheme", []string{"Basic ZGNyOnNlY3JldA=="}, 401, "invalid_token"},
		}
		regs, once := storeCounts(g)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				status, body, hdr := postWithAuthorization(t, g, c1, tc.auth...)
				if status != tc.status || body["error"] != tc.code {
					t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
				}
				if d, _ := body["error_description"].(string); d == "" {
					t.Fatalf("no error_description in %v", body)
				}
				want := `Bearer error="` + tc.code + `"`
				if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), want) {
					t.Fatalf("WWW-Authenticate %q, want %s", hdr.Get("WWW-Authenticate"), want)
				}
				if r, o := storeCounts(g); r != regs || o != once {
					t.Fatalf("store changed: registrations %d→%d, one-time keys %d→%d", regs, r, once, o)
				}
			})
		}
	})

	t.Run("single use, then revoked", func(t *testing.T) {
		token := as.mint(t, as.claims(aud, nil))
		if resp := register(t, c1, token); resp.Status != http.StatusCreated {
			t.Fatalf("first use: %d %s\n%s", resp.Status, resp.Body, g.Logs())
		}
		as.waitRevoked(t, token)
		resp := register(t, c1, token)
		if resp.Status != http.StatusUnauthorized || resp.JSON["error"] != "invalid_token" ||
			resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Fatalf("second use: %d %s", resp.Status, resp.Body)
		}
		if strings.Contains(g.Logs(), token) {
			t.Fatal("the gateway logged the token")
		}
	})

	t.Run("the scheme is case-insensitive", func(t *testing.T) {
		status, body, _ := postWithAuthorization(t, g, c1, "bEaReR "+as.mint(t, as.claims(aud, nil)))
		if status != http.StatusCreated {
			t.Fatalf("got %d %v", status, body)
		}
	})

	t.Run("a rejected registration leaves the token usable", func(t *testing.T) {
		token := as.mint(t, as.claims(aud, nil))
		cl := c1.Claims()
		cl["redirect_uris"] = []string{"https://elsewhere.example.com/cb"}
		resp, err := c1.Register(gatewaytest.Context(t), sign(t, c1, cl, tppclient.SignOptions{}), "", token)
		if err != nil || resp.Status != http.StatusBadRequest || resp.JSON["error"] != "invalid_redirect_uri" {
			t.Fatalf("rejected registration: %v %+v", err, resp)
		}
		if resp := register(t, c1, token); resp.Status != http.StatusCreated {
			t.Fatalf("the token was consumed by a rejected registration: %d %s", resp.Status, resp.Body)
		}
	})

	t.Run("50 concurrent registrations with one token", func(t *testing.T) {
		token := as.mint(t, as.claims(aud, nil))
		bodies := make([][]byte, 50)
		for i := range bodies {
			bodies[i] = sign(t, c1, c1.Claims(), tppclient.SignOptions{}) // each its own jti
		}
		regs, _ := storeCounts(g)
		statuses := make([]int, len(bodies))
		var wg sync.WaitGroup
		for i, body := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c1.Register(gatewaytest.Context(t), body, "", token)
				if err != nil {
					t.Error(err)
					return
				}
				statuses[i] = resp.Status
			}()
		}
		wg.Wait()
		count := map[int]int{}
		for _, s := range statuses {
			count[s]++
		}
		if count[http.StatusCreated] != 1 || count[http.StatusUnauthorized] != len(bodies)-1 {
			t.Fatalf("statuses %v, want exactly one 201 and the rest 401", count)
		}
		if r, _ := storeCounts(g); r != regs+1 {
			t.Fatalf("registrations %d → %d, want one more", regs, r)
		}
	})

	t.Run("management by client-credentials token", func(t *testing.T) {
		ctx := gatewaytest.Context(t)
		resp := register(t, c1, as.mint(t, as.claims(aud, nil)))
		if resp.Status != http.StatusCreated {
			t.Fatalf("register: %d %s", resp.Status, resp.Body)
		}
		clientID, _ := resp.JSON["client_id"].(string)
		rat, _ := resp.JSON["registration_access_token"].(string)
		own := as.mint(t, as.claims(aud, map[string]any{"client_id": clientID, "scope": nil}))
		foreign := as.mint(t, as.claims(aud, map[string]any{"client_id": "another-client", "scope": nil}))

		expect := func(name string, r *tppclient.Response, err error, status int) {
			t.Helper()
			if err != nil || r.Status != status {
				t.Fatalf("%s: %v %d %s, want %d", name, err, r.Status, r.Body, status)
			}
			if status == 401 && (r.JSON["error"] != "invalid_token" || r.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"`) {
				t.Fatalf("%s: %s %q", name, r.Body, r.Header.Get("WWW-Authenticate"))
			}
		}
		r, err := c1.Get(ctx, clientID, own)
		expect("read with the client's own token", r, err, 200)
		if r.JSON["client_id"] != clientID {
			t.Fatalf("read another registration: %s", r.Body)
		}
		r, err = c1.Get(ctx, clientID, rat)
		expect("read with the registration access token", r, err, 200)
		r, err = c1.Get(ctx, clientID, foreign)
		expect("read with another client's token", r, err, 401)
		r, err = c1.Get(ctx, clientID, as.mint(t, as.claims(aud, map[string]any{"client_id": clientID, "exp": now - 600, "iat": now - 900})))
		expect("read with an expired own token", r, err, 401)

		r, err = c1.Update(ctx, clientID, rat, sign(t, c1, c1.Claims(), tppclient.SignOptions{}))
		expect("update with the registration access token (not accepted for update)", r, err, 401)
		r, err = c1.Update(ctx, clientID, own, sign(t, c1, c1.Claims(), tppclient.SignOptions{}))
		expect("update with the client's own token", r, err, 200)

		unknown := as.mint(t, as.claims(aud, map[string]any{"client_id": "0e6e7e2a-8a4c-4e3c-9a7e-2f6f7a1b2c3d", "scope": nil}))
		r, err = c1.Get(ctx, "0e6e7e2a-8a4c-4e3c-9a7e-2f6f7a1b2c3d", unknown)
		expect("read of an unknown client", r, err, 401)
		as.waitRevoked(t, unknown)
		if as.wasRevoked(foreign) {
			t.Fatal("another client's token presented for a known client was revoked")
		}

		r, err = c1.Delete(ctx, clientID, own)
		expect("delete with the client's own token", r, err, 204)
		r, err = c1.Get(ctx, clientID, own)
		expect("read after delete", r, err, 401)
	})
}

// TestAccessTokenIntrospectionThroughServer verifies tokens by RFC 7662 introspection through
// the real gateway: active tokens register once, inactive ones are 401, and an endpoint that
// is down is a 503 with nothing stored.
// The same flow against the real OpenID provider comes with the upstream issue (#6), which
// brings that provider into the integration tests.
func TestAccessTokenIntrospectionThroughServer(t *testing.T) {
	as := newTestAS(t)
	g := startAccessTokenGateway(t, as, fmt.Sprintf("introspection %s/introspect {\n\t\t\t\tcache_ttl 1m\n\t\t\t}", as.srv.URL))
	c1 := newClient(t, g, 1)
	exp := time.Now().Add(10 * time.Minute).Unix()
	as.mu.Lock()
	as.active["opaque-good"] = map[string]any{"active": true, "scope": "dcr_register openid", "client_id": "onboarding", "iss": atIssuer, "aud": g.BaseURL, "exp": exp}
	as.active["opaque-noscope"] = map[string]any{"active": true, "scope": "openid", "client_id": "onboarding", "aud": g.BaseURL, "exp": exp}
	as.active["opaque-fresh"] = map[string]any{"active": true, "scope": "dcr_register", "aud": g.BaseURL, "exp": exp}
	as.mu.Unlock()

	regs, once := storeCounts(g)
	for token, want := range map[string]int{"opaque-inactive": 401, "opaque-noscope": 403} {
		resp := register(t, c1, token)
		if resp.Status != want {
			t.Fatalf("%s: %d %s, want %d", token, resp.Status, resp.Body, want)
		}
	}
	if r, o := storeCounts(g); r != regs || o != once {
		t.Fatalf("store changed: registrations %d→%d, one-time keys %d→%d", regs, r, once, o)
	}
	if resp := register(t, c1, "opaque-good"); resp.Status != http.StatusCreated {
		t.Fatalf("active token: %d %s\n%s", resp.Status, resp.Body, g.Logs())
	}
	as.waitRevoked(t, "opaque-good")
	if resp := register(t, c1, "opaque-good"); resp.Status != http.StatusUnauthorized {
		t.Fatalf("token reused: %d %s", resp.Status, resp.Body)
	}

	// A consumed token is refused before it is introspected (the screen): after a restart
	// (no introspection cache) with the authorization server down, it is the same 401, where
	// a token that has to be introspected gets 503.
	as.down.Store(true)
	g.Restart()
	if resp := register(t, c1, "opaque-good"); resp.Status != http.StatusUnauthorized || resp.JSON["error"] != "invalid_token" {
		t.Fatalf("consumed token with introspection down: %d %s, want 401 from the screen", resp.Status, resp.Body)
	}
	regs, once = storeCounts(g)
	resp := register(t, c1, "opaque-fresh")
	if resp.Status != http.StatusServiceUnavailable || resp.JSON["error"] != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("introspection down: %d %s, want 503", resp.Status, resp.Body)
	}
	if r, o := storeCounts(g); r != regs || o != once {
		t.Fatalf("store changed while introspection was down")
	}
	as.down.Store(false)
	if resp := register(t, c1, "opaque-fresh"); resp.Status != http.StatusCreated {
		t.Fatalf("after recovery: %d %s", resp.Status, resp.Body)
	}
}
