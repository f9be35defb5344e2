package accesstoken

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/manage"
	"github.com/dcrgate/dcrgate/dcr/secret"
)

func jwtConfig(is *issuer, extra string) string {
	return fmt.Sprintf(`{"issuer": %q, "audience": ["https://gateway.example"], "keys": {"jwks": %s}, "register": {}%s}`, testIssuer, is.jwks, extra)
}

// TestJWTVerifyRejects feeds one bad token per rule through the verifier: each is a 401
// invalid_token, and the good control token verifies.
func TestJWTVerifyRejects(t *testing.T) {
	is := newIssuer(t)
	a := mustProvision(t, jwtConfig(is, ""))
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	cases := map[string]string{
		"expired":                     is.mint(t, is.claims(map[string]any{"iat": now - 600, "exp": now - 300})),
		"no exp":                      is.mint(t, is.claims(map[string]any{"exp": nil})),
		"not yet valid":               is.mint(t, is.claims(map[string]any{"nbf": now + 600})),
		"issued in the future":        is.mint(t, is.claims(map[string]any{"iat": now + 600})),
		"wrong issuer":                is.mint(t, is.claims(map[string]any{"iss": "https://evil.example"})),
		"no issuer":                   is.mint(t, is.claims(map[string]any{"iss": nil})),
		"wrong audience":              is.mint(t, is.claims(map[string]any{"aud": "https://other.example"})),
		"no audience":                 is.mint(t, is.claims(map[string]any{"aud": nil})),
		"alg none":                    is.mintWith(t, is.claims(nil), jwa.NoSignature, nil, is.kid),
		"HS256 with the public key":   is.mintWith(t, is.claims(nil), jwa.HS256, is.publicKeyPEM(t), is.kid),
		"RS256 not in the allow-list": is.mintWith(t, is.claims(nil), jwa.RS256, is.key, is.kid),
		"unknown kid":                 is.mintWith(t, is.claims(nil), jwa.PS256, is.key, "no-such-kid"),
		"signed by another key":       is.mintWith(t, is.claims(nil), jwa.PS256, other, is.kid),
		"not a JWS":                   "opaque-token-value",
		"tampered payload":            tamper(is.mint(t, is.claims(nil))),
		"exp a string":                is.mint(t, is.claims(map[string]any{"exp": "tomorrow"})),
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			claims, derr := a.verifier.Verify(context.Background(), token, time.Now())
			if derr == nil {
				t.Fatalf("accepted: %v", claims)
			}
			if derr.Status != http.StatusUnauthorized || derr.Code != dcr.CodeInvalidToken {
				t.Fatalf("got %d %s, want 401 invalid_token", derr.Status, derr.Code)
			}
			if derr.Header.Get("Www-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("challenge %q", derr.Header.Get("Www-Authenticate"))
			}
			if strings.Contains(derr.Description, token) {
				t.Fatal("the description quotes the token")
			}
		})
	}
	if _, derr := a.verifier.Verify(context.Background(), is.mint(t, is.claims(nil)), time.Now()); derr != nil {
		t.Fatalf("control token refused: %v", derr)
	}
	// Leeway: a token that expired 10s ago is still accepted with the default 30s.
	if _, derr := a.verifier.Verify(context.Background(), is.mint(t, is.claims(map[string]any{"exp": now - 10})), time.Now()); derr != nil {
		t.Fatalf("token within leeway refused: %v", derr)
	}
}

func tamper(token string) string {
	parts := strings.Split(token, ".")
	parts[1] = strings.TrimSuffix(parts[1], parts[1][len(parts[1])-2:]) + "xx"
	return strings.Join(parts, ".")
}

// TestJWTFromHTTPSJWKS verifies tokens against a JWKS served over HTTPS, and answers 503 when
// that endpoint fails with nothing cached.
func TestJWTFromHTTPSJWKS(t *testing.T) {
	is := newIssuer(t)
	var fail atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(is.jwks)
	}))
	defer srv.Close()
	ca := writeCA(t, srv)
	a := mustProvision(t, fmt.Sprintf(`{"issuer": %q, "keys": {"url": %q}, "fetch": {"trusted_roots": [%q]}, "register": {}}`, testIssuer, srv.URL+"/jwks", ca))
	if _, derr := a.verifier.Verify(context.Background(), is.mint(t, is.claims(nil)), time.Now()); derr != nil {
		t.Fatalf("token refused: %v", derr)
	}

	fail.Store(true)
	b := mustProvision(t, fmt.Sprintf(`{"issuer": %q, "keys": {"url": %q}, "fetch": {"trusted_roots": [%q]}, "register": {}}`, testIssuer, srv.URL+"/other-jwks", ca))
	_, derr := b.verifier.Verify(context.Background(), is.mint(t, is.claims(nil)), time.Now())
	if derr == nil || derr.Status != http.StatusServiceUnavailable {
		t.Fatalf("JWKS down: got %v, want 503", derr)
	}
}

func TestProtectRegister(t *testing.T) {
	is := newIssuer(t)
	a := mustProvision(t, jwtConfig(is, ""))
	ctx := context.Background()

	t.Run("no token", func(t *testing.T) {
		err := exchange(dcr.OpRegister, &onceStore{}).protect(ctx, a)
		assertErr(t, err, 401, dcr.CodeInvalidToken, `Bearer error="invalid_token"`)
	})
	for name, hdr := range map[string][]string{
		"Bearer alone":         {"Bearer"},
		"Bearer and a space":   {"Bearer "},
		"token with spaces":    {"Bearer abc def"},
		"two headers":          {"Bearer " + is.mint(t, is.claims(nil)), "Bearer " + is.mint(t, is.claims(nil))},
		"Basic scheme":         {"Basic YTpi"},
		"token over the limit": {"Bearer " + strings.Repeat("a", MaxTokenLength+1)},
	} {
		t.Run(name, func(t *testing.T) {
			x := exchange(dcr.OpRegister, &onceStore{}, hdr...)
			assertErr(t, x.protect(ctx, a), 401, dcr.CodeInvalidToken, `Bearer error="invalid_token"`)
			if len(x.Claims) != 0 {
				t.Fatal("a refused token queued a claim")
			}
		})
	}
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		x := exchange(dcr.OpRegister, &onceStore{}, "bEaReR "+is.mint(t, is.claims(nil)))
		if err := x.protect(ctx, a); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing scope", func(t *testing.T) {
		x := exchange(dcr.OpRegister, &onceStore{}, "Bearer "+is.mint(t, is.claims(map[string]any{"scope": "openid accounts"})))
		assertErr(t, x.protect(ctx, a), 403, dcr.CodeInsufficientScope, `Bearer error="insufficient_scope", scope="dcr_register"`)
	})
	t.Run("scope as an array", func(t *testing.T) {
		x := exchange(dcr.OpRegister, &onceStore{}, "Bearer "+is.mint(t, is.claims(map[string]any{"scope": []string{"openid", "dcr_register"}})))
		if err := x.protect(ctx, a); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("single use by jti", func(t *testing.T) {
		store := &onceStore{}
		exp := time.Now().Add(5 * time.Minute)
		token := is.mint(t, is.claims(map[string]any{"jti": "token-1", "exp": exp.Unix()}))
		x := exchange(dcr.OpRegister, store, "Bearer "+token)
		if err := x.protect(ctx, a); err != nil {
			t.Fatal(err)
		}
		if len(x.Claims) != 1 || x.Claims[0].Key != "access_token\x00jti\x00"+testIssuer+"\x00token-1" {
			t.Fatalf("claims %+v", x.Claims)
		}
		if ttl := x.Claims[0].TTL; ttl <= 5*time.Minute-time.Minute || ttl > 5*time.Minute+30*time.Second {
			t.Fatalf("ttl %v, want until exp plus leeway", ttl)
		}
		if x.Claims[0].Reject.Status != 401 || x.AccessTokenClaims["jti"] != "token-1" {
			t.Fatalf("reject %+v, claims %v", x.Claims[0].Reject, x.AccessTokenClaims)
		}
		if len(x.AfterCommit) != 0 {
			t.Fatal("revocation queued without revoke")
		}
		// Nothing is consumed until the handler commits; once it did, the token is refused early.
		if ok, _ := store.Seen(ctx, x.Claims[0].Key); ok {
			t.Fatal("Protect consumed the token itself")
		}
		_, _ = store.Claim(ctx, x.Claims[0].Key, x.Claims[0].TTL)
		assertErr(t, exchange(dcr.OpRegister, store, "Bearer "+token).protect(ctx, a), 401, dcr.CodeInvalidToken, `Bearer error="invalid_token"`)
	})
	t.Run("single use by hash without jti", func(t *testing.T) {
		x := exchange(dcr.OpRegister, &onceStore{}, "Bearer "+is.mint(t, is.claims(map[string]any{"jti": nil})))
		if err := x.protect(ctx, a); err != nil {
			t.Fatal(err)
		}
		if len(x.Claims) != 1 || !strings.HasPrefix(x.Claims[0].Key, "access_token\x00sha256\x00") {
			t.Fatalf("claims %+v", x.Claims)
		}
	})
	t.Run("store down", func(t *testing.T) {
		x := exchange(dcr.OpRegister, &onceStore{err: errors.New("disk gone")}, "Bearer "+is.mint(t, is.claims(nil)))
		assertErr(t, x.protect(ctx, a), 503, dcr.CodeTemporarilyUnavailable, "")
	})
	t.Run("reusable when single_use is off", func(t *testing.T) {
		b := mustProvision(t, fmt.Sprintf(`{"issuer": %q, "keys": {"jwks": %s}, "register": {"single_use": false, "scopes": ["dcr_register", "onboarding"]}}`, testIssuer, is.jwks))
		x := exchange(dcr.OpRegister, &onceStore{}, "Bearer "+is.mint(t, is.claims(map[string]any{"scope": "dcr_register onboarding"})))
		if err := x.protect(ctx, b); err != nil || len(x.Claims) != 0 {
			t.Fatalf("err %v, claims %v", err, x.Claims)
		}
		x = exchange(dcr.OpRegister, &onceStore{}, "Bearer "+is.mint(t, is.claims(nil)))
		assertErr(t, x.protect(ctx, b), 403, dcr.CodeInsufficientScope, `Bearer error="insufficient_scope", scope="dcr_register onboarding"`)
	})
	t.Run("register not configured leaves POST open", func(t *testing.T) {
		b := mustProvision(t, fmt.Sprintf(`{"issuer": %q, "keys": {"jwks": %s}, "manage": {"read": ["client_credentials"]}}`, testIssuer, is.jwks))
		if err := exchange(dcr.OpRegister, &onceStore{}).protect(ctx, b); err != nil {
			t.Fatal(err)
		}
	})
}

func assertErr(t *testing.T, err error, status int, code, challenge string) {
	t.Helper()
	var derr *dcr.Error
	if !errors.As(err, &derr) {
		t.Fatalf("got %v, want a %d %s", err, status, code)
	}
	if derr.Status != status || derr.Code != code {
		t.Fatalf("got %d %s (%v), want %d %s", derr.Status, derr.Code, derr, status, code)
	}
	if challenge != "" && derr.Header.Get("Www-Authenticate") != challenge {
		t.Fatalf("challenge %q, want %q", derr.Header.Get("Www-Authenticate"), challenge)
	}
	if derr.Description == "" {
		t.Fatal("no description")
	}
}

// TestAuthorizeManagement covers who may read/update/delete per the manage setting.
func TestAuthorizeManagement(t *testing.T) {
	is := newIssuer(t)
	revocations := newRecorder()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { revocations.record(r) }))
	defer srv.Close()
	cfg := func(manage, extra string) string {
		return fmt.Sprintf(`{"issuer": %q, "keys": {"jwks": %s}, "manage": %s, "revocation_endpoint": %q,
			"client": {"client_id": "gateway", "auth_method": "client_secret_basic", "client_secret": "s3cret", "trusted_roots": [%q]}%s}`,
			testIssuer, is.jwks, manage, srv.URL+"/revoke", writeCA(t, srv), extra)
	}
	both := mustProvision(t, cfg(`{"read": ["registration_token", "client_credentials"], "update": ["client_credentials"], "delete": ["registration_token"]}`, ""))
	existing := &dcr.Registration{ClientID: "client-a", RegistrationTokenHash: secret.Hash("rat")}
	ccToken := is.mint(t, is.claims(map[string]any{"client_id": "client-a", "scope": nil}))
	otherToken := is.mint(t, is.claims(map[string]any{"client_id": "client-b", "scope": nil}))
	ctx := context.Background()

	mgmt := func(op dcr.Operation, token string, ratValid bool, rec *dcr.Registration) *call {
		x := exchange(op, &onceStore{})
		x.ClientID, x.BearerToken, x.Existing = "client-a", token, rec
		if manage.RegistrationToken(token, rec) != ratValid {
			t.Fatalf("%q: registration access token %v, want %v", token, !ratValid, ratValid)
		}
		return x
	}
	cases := []struct {
		name   string
		a      *AccessToken
		x      *call
		want   bool
		reason string // of a refusal, for the audit log
	}{
		{"read with the registration token", both, mgmt(dcr.OpRead, "rat", true, existing), true, ""},
		{"read with the client's own token", both, mgmt(dcr.OpRead, ccToken, false, existing), true, ""},
		{"read with another client's token", both, mgmt(dcr.OpRead, otherToken, false, existing), false, "the client-credentials token was issued to another client"},
		{"read with an expired token", both, mgmt(dcr.OpRead, is.mint(t, is.claims(map[string]any{"client_id": "client-a", "exp": time.Now().Add(-time.Hour).Unix()})), false, existing), false, "nor a valid client-credentials token: the token has expired"},
		{"update refuses the registration token", both, mgmt(dcr.OpUpdate, "rat", true, existing), false, "the registration access token is not accepted for update"},
		{"update with the client's own token", both, mgmt(dcr.OpUpdate, ccToken, false, existing), true, ""},
		{"delete refuses a client-credentials token", both, mgmt(dcr.OpDelete, ccToken, false, existing), false, "the access token is not the registration access token of this client_id"},
		{"delete with the registration token", both, mgmt(dcr.OpDelete, "rat", true, existing), true, ""},
		{"no token", both, mgmt(dcr.OpRead, "", false, existing), false, "no access token was sent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.x.protect(ctx, tc.a); err != nil {
				t.Fatal(err)
			}
			if tc.x.ManagementAuthorized != tc.want {
				t.Fatalf("authorized %v, want %v", tc.x.ManagementAuthorized, tc.want)
			}
			if (tc.reason == "") != (tc.x.ManagementRefusal == "") || !strings.Contains(tc.x.ManagementRefusal, tc.reason) {
				t.Fatalf("refusal %q, want %q", tc.x.ManagementRefusal, tc.reason)
			}
			// (The real tokens are long; "rat" would match any word.)
			if len(tc.x.BearerToken) > 20 && strings.Contains(tc.x.ManagementRefusal, tc.x.BearerToken) {
				t.Fatal("the refusal reason holds the token")
			}
		})
	}

	t.Run("unknown client revokes the token", func(t *testing.T) {
		x := mgmt(dcr.OpRead, ccToken, false, nil)
		if err := x.protect(ctx, both); err != nil || x.ManagementAuthorized {
			t.Fatalf("err %v, authorized %v", err, x.ManagementAuthorized)
		}
		revocations.waitToken(t, ccToken)
		revocations.mu.Lock()
		defer revocations.mu.Unlock()
		last := len(revocations.auth) - 1
		if revocations.auth[last] != "Basic Z2F0ZXdheTpzM2NyZXQ=" || revocations.forms[last]["token_type_hint"][0] != "access_token" {
			t.Fatalf("revocation call: auth %q form %v", revocations.auth[last], revocations.forms[last])
		}
	})
	t.Run("azp names the client", func(t *testing.T) {
		azp := mustProvision(t, cfg(`{"read": ["client_credentials"]}`, `, "client_claim": "azp"`))
		x := mgmt(dcr.OpRead, is.mint(t, is.claims(map[string]any{"client_id": nil, "azp": "client-a"})), false, existing)
		if err := x.protect(ctx, azp); err != nil || !x.ManagementAuthorized {
			t.Fatalf("err %v, authorized %v", err, x.ManagementAuthorized)
		}
		x = mgmt(dcr.OpRead, ccToken, false, existing) // client_id alone does not count
		if err := x.protect(ctx, azp); err != nil || x.ManagementAuthorized {
			t.Fatalf("err %v, authorized %v", err, x.ManagementAuthorized)
		}
	})
}

// TestProvisionRefuses checks the configurations that must not load.
func TestProvisionRefuses(t *testing.T) {
	is := newIssuer(t)
	client := `"client": {"client_id": "gw", "auth_method": "client_secret_basic", "client_secret": "x"}`
	cases := map[string]struct{ config, want string }{
		"no verification":         {`{"issuer": "x", "register": {}}`, "configure how tokens are verified"},
		"both verifications":      {fmt.Sprintf(`{"issuer": "x", "keys": {"jwks": %s}, "introspection": {"endpoint": "https://as.example/i"}, %s}`, is.jwks, client), "not both"},
		"JWT without issuer":      {fmt.Sprintf(`{"keys": {"jwks": %s}}`, is.jwks), "issuer is required"},
		"HS256 allowed":           {fmt.Sprintf(`{"issuer": "x", "keys": {"jwks": %s}, "algorithms": ["HS256"]}`, is.jwks), "never allowed"},
		"introspection no client": {`{"introspection": {"endpoint": "https://as.example/i"}}`, "client credentials"},
		"introspection over http": {fmt.Sprintf(`{"introspection": {"endpoint": "http://as.example/i"}, %s}`, client), "https"},
		"revocation over http":    {fmt.Sprintf(`{"issuer": "x", "keys": {"jwks": %s}, "revocation_endpoint": "http://as.example/r", %s}`, is.jwks, client), "https"},
		"revoke without endpoint": {fmt.Sprintf(`{"issuer": "x", "keys": {"jwks": %s}, "register": {"revoke": true}}`, is.jwks), "revocation endpoint"},
		"unknown operation":       {fmt.Sprintf(`{"issuer": "x", "keys": {"jwks": %s}, "manage": {"create": ["client_credentials"]}}`, is.jwks), "unknown operation"},
		"unknown token kind":      {fmt.Sprintf(`{"issuer": "x", "keys": {"jwks": %s}, "manage": {"read": ["password"]}}`, is.jwks), "unknown token kind"},
		"bad client claim":        {fmt.Sprintf(`{"issuer": "x", "keys": {"jwks": %s}, "client_claim": "email"}`, is.jwks), "client_claim"},
		"unknown auth method":     {`{"introspection": {"endpoint": "https://as.example/i"}, "client": {"client_id": "gw", "auth_method": "none"}}`, "auth_method"},
		"secret missing":          {`{"introspection": {"endpoint": "https://as.example/i"}, "client": {"client_id": "gw", "auth_method": "client_secret_basic"}}`, "client_secret"},
		"client_id missing":       {`{"introspection": {"endpoint": "https://as.example/i"}, "client": {"auth_method": "client_secret_basic", "client_secret": "x"}}`, "client_id is required"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := provision(t, tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
