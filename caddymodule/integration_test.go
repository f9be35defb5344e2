package caddymodule_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

func newClient(t *testing.T, g *gatewaytest.Gateway, index int) *tppclient.Client {
	t.Helper()
	c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(index), g.Endpoint, g.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sign(t *testing.T, c *tppclient.Client, claims map[string]any, o tppclient.SignOptions) []byte {
	t.Helper()
	b, err := c.Sign(claims, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ssaWith returns TPP 1's SSA with claims changed (nil value removes a claim), signed by the
// sandbox directory.
func ssaWith(t *testing.T, g *gatewaytest.Gateway, change map[string]any) string {
	t.Helper()
	claims := g.Sandbox.SSAClaims(g.Sandbox.TPP(1))
	for k, v := range change {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	s, err := g.Sandbox.SignSSA(claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRSAJWK(t *testing.T, kid string) jwk.Key {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	return k
}

func strp(s string) *string { return &s }

type badRequest struct {
	name   string
	status int
	code   string
	// build returns the HTTP request to send; nil client = TPP 1's mTLS client.
	build func(t *testing.T) (*http.Request, *http.Client)
}

// TestBadRequestsThroughServer sends one malformed or disallowed request per rule through the
// real server, and checks each answer and that nothing was stored or consumed.
func TestBadRequestsThroughServer(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 2})
	c1 := newClient(t, g, 1)
	c2 := newClient(t, g, 2)
	noCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: mustPool(t, g.Sandbox)}}}

	post := func(body []byte, ct string) func(t *testing.T) (*http.Request, *http.Client) {
		return func(t *testing.T) (*http.Request, *http.Client) {
			r, _ := http.NewRequest(http.MethodPost, g.Endpoint, bytes.NewReader(body))
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			return r, nil
		}
	}
	// claims builds a request from TPP 1's default claims with changes (nil removes).
	claims := func(change map[string]any, o tppclient.SignOptions) func(t *testing.T) (*http.Request, *http.Client) {
		return func(t *testing.T) (*http.Request, *http.Client) {
			cl := c1.Claims()
			for k, v := range change {
				if v == nil {
					delete(cl, k)
				} else {
					cl[k] = v
				}
			}
			return post(sign(t, c1, cl, o), "application/jose")(t)
		}
	}
	withSSA := func(change map[string]any) func(t *testing.T) (*http.Request, *http.Client) {
		return func(t *testing.T) (*http.Request, *http.Client) {
			return claims(map[string]any{"software_statement": ssaWith(t, g, change)}, tppclient.SignOptions{})(t)
		}
	}
	now := time.Now().Unix()
	good := func(t *testing.T) []byte { return sign(t, c1, c1.Claims(), tppclient.SignOptions{}) }
	attacker := newRSAJWK(t, g.Sandbox.TPP(1).SigningKID)
	attackerPub, _ := attacker.PublicKey()

	cases := []badRequest{
		{"content type json", 415, "invalid_request", func(t *testing.T) (*http.Request, *http.Client) { return post(good(t), "application/json")(t) }},
		{"no content type", 415, "invalid_request", func(t *testing.T) (*http.Request, *http.Client) { return post(good(t), "")(t) }},
		{"body too large", 413, "invalid_request", post(bytes.Repeat([]byte("a"), 70<<10), "application/jose")},
		{"empty body", 400, "invalid_client_metadata", post(nil, "application/jose")},
		{"not a JWS", 400, "invalid_client_metadata", post([]byte("hello"), "application/jwt")},
		{"JSON serialization", 400, "invalid_client_metadata", post([]byte(`{"payload":"e30","signatures":[]}`), "application/jose")},
		{"GET on the endpoint", 405, "invalid_request", func(t *testing.T) (*http.Request, *http.Client) {
			r, _ := http.NewRequest(http.MethodGet, g.Endpoint, nil)
			return r, nil
		}},
		{"PATCH on a client", 405, "invalid_request", func(t *testing.T) (*http.Request, *http.Client) {
			r, _ := http.NewRequest(http.MethodPatch, g.Endpoint+"/abc", nil)
			return r, nil
		}},
		{"no client certificate", 400, "invalid_client_metadata", func(t *testing.T) (*http.Request, *http.Client) {
			r, _ := post(good(t), "application/jose")(t)
			return r, noCert
		}},
		{"software_statement missing", 400, "invalid_software_statement", claims(map[string]any{"software_statement": nil}, tppclient.SignOptions{})},
		{"software_statement not a JWS", 400, "invalid_software_statement", claims(map[string]any{"software_statement": "abc"}, tppclient.SignOptions{})},
		{"software_statement a number", 400, "invalid_software_statement", claims(map[string]any{"software_statement": 42}, tppclient.SignOptions{})},
		{"SSA unknown issuer", 400, "unapproved_software_statement", withSSA(map[string]any{"iss": "Evil Directory"})},
		{"SSA org_status Revoked", 400, "unapproved_software_statement", withSSA(map[string]any{"org_status": "Revoked"})},
		{"SSA software_mode not accepted", 400, "unapproved_software_statement", withSSA(map[string]any{"software_mode": "Sandbox"})},
		{"SSA without software_id", 400, "invalid_software_statement", withSSA(map[string]any{"software_id": nil})},
		{"SSA without org_id", 400, "invalid_software_statement", withSSA(map[string]any{"org_id": nil})},
		{"SSA without software_roles", 400, "invalid_software_statement", withSSA(map[string]any{"software_roles": nil})},
		{"SSA jwks endpoint on another host", 400, "invalid_software_statement", withSSA(map[string]any{"software_jwks_endpoint": "https://evil.example/jwks.json"})},
		{"SSA jwks endpoint over http", 400, "invalid_software_statement", withSSA(map[string]any{"software_jwks_endpoint": strings.Replace(g.Sandbox.TPP(1).JWKSURL, "https:", "http:", 1)})},
		{"SSA expired", 400, "invalid_software_statement", withSSA(map[string]any{"exp": now - 3600})},
		{"SSA issued in the future", 400, "invalid_software_statement", withSSA(map[string]any{"iat": now + 3600})},
		{"SSA of another TPP", 400, "invalid_software_statement", func(t *testing.T) (*http.Request, *http.Client) {
			return claims(map[string]any{"software_statement": c2.SoftwareStatement, "iss": c2.SoftwareID}, tppclient.SignOptions{})(t)
		}},
		{"SSA signed by another key", 400, "invalid_software_statement", func(t *testing.T) (*http.Request, *http.Client) {
			forged := sign(t, c1, g.Sandbox.SSAClaims(g.Sandbox.TPP(1)), tppclient.SignOptions{Key: newRSAJWK(t, g.Sandbox.DirectoryKID), Alg: "PS256"})
			return claims(map[string]any{"software_statement": string(forged)}, tppclient.SignOptions{})(t)
		}},
		{"SSA alg none", 400, "invalid_software_statement", func(t *testing.T) (*http.Request, *http.Client) {
			forged := sign(t, c1, g.Sandbox.SSAClaims(g.Sandbox.TPP(1)), tppclient.SignOptions{Alg: "none", KID: strp(g.Sandbox.DirectoryKID)})
			return claims(map[string]any{"software_statement": string(forged)}, tppclient.SignOptions{})(t)
		}},
		{"request alg none", 400, "invalid_client_metadata", claims(nil, tppclient.SignOptions{Alg: "none"})},
		{"request HS256 with the public key as secret", 400, "invalid_client_metadata", func(t *testing.T) (*http.Request, *http.Client) {
			pub, _ := c1.SigningKey.PublicKey()
			der, _ := jwk.EncodePEM(pub)
			sym, _ := jwk.FromRaw(der)
			_ = sym.Set(jwk.KeyIDKey, c1.SigningKey.KeyID())
			return claims(nil, tppclient.SignOptions{Alg: "HS256", Key: sym})(t)
		}},
		{"request alg RS256 not allowed", 400, "invalid_client_metadata", claims(nil, tppclient.SignOptions{Alg: "RS256"})},
		{"request without kid", 400, "invalid_client_metadata", claims(nil, tppclient.SignOptions{KID: strp("")})},
		{"request with unknown kid", 400, "invalid_client_metadata", claims(nil, tppclient.SignOptions{KID: strp("no-such-kid")})},
		{"request signed by a key in its jwk header", 400, "invalid_client_metadata", claims(nil, tppclient.SignOptions{Key: attacker, Alg: "PS256", ExtraHeaders: map[string]any{"jwk": attackerPub}})},
		{"request tampered", 400, "invalid_client_metadata", func(t *testing.T) (*http.Request, *http.Client) {
			// A validly signed request whose payload is then changed (one more scope).
			parts := strings.Split(string(good(t)), ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var cl map[string]any
			_ = json.Unmarshal(payload, &cl)
			cl["scope"] = "openid accounts payments fundsconfirmations"
			payload, _ = json.Marshal(cl)
			return post([]byte(parts[0]+"."+base64.RawURLEncoding.EncodeToString(payload)+"."+parts[2]), "application/jose")(t)
		}},
		{"iss is not the software_id", 400, "invalid_client_metadata", claims(map[string]any{"iss": "someone-else"}, tppclient.SignOptions{})},
		{"aud missing", 400, "invalid_client_metadata", claims(map[string]any{"aud": nil}, tppclient.SignOptions{})},
		{"aud another bank", 400, "invalid_client_metadata", claims(map[string]any{"aud": "https://other-bank.example"}, tppclient.SignOptions{})},
		{"iat missing", 400, "invalid_client_metadata", claims(map[string]any{"iat": nil}, tppclient.SignOptions{})},
		{"iat in the future", 400, "invalid_client_metadata", claims(map[string]any{"iat": now + 600, "exp": now + 900}, tppclient.SignOptions{})},
		{"iat too old", 400, "invalid_client_metadata", claims(map[string]any{"iat": now - 7200, "exp": now + 60}, tppclient.SignOptions{})},
		{"iat a string", 400, "invalid_client_metadata", claims(map[string]any{"iat": "yesterday"}, tppclient.SignOptions{})},
		{"exp missing", 400, "invalid_client_metadata", claims(map[string]any{"exp": nil}, tppclient.SignOptions{})},
		{"exp in the past", 400, "invalid_client_metadata", claims(map[string]any{"iat": now - 600, "exp": now - 300}, tppclient.SignOptions{})},
		{"lifetime too long", 400, "invalid_client_metadata", claims(map[string]any{"exp": now + 7200}, tppclient.SignOptions{})},
		{"jti missing", 400, "invalid_client_metadata", claims(map[string]any{"jti": nil}, tppclient.SignOptions{})},
		{"jti too long", 400, "invalid_client_metadata", claims(map[string]any{"jti": strings.Repeat("j", 300)}, tppclient.SignOptions{})},
		{"redirect_uri over http", 400, "invalid_redirect_uri", claims(map[string]any{"redirect_uris": []string{"http://tpp.example.com/cb"}}, tppclient.SignOptions{})},
		{"redirect_uri on localhost", 400, "invalid_redirect_uri", claims(map[string]any{"redirect_uris": []string{"https://localhost/cb"}}, tppclient.SignOptions{})},
		{"redirect_uri not in the SSA", 400, "invalid_redirect_uri", claims(map[string]any{"redirect_uris": []string{"https://elsewhere.example.com/cb"}}, tppclient.SignOptions{})},
		{"redirect_uri too long", 400, "invalid_redirect_uri", claims(map[string]any{"redirect_uris": []string{"https://tpp.example.com/" + strings.Repeat("a", 300)}}, tppclient.SignOptions{})},
		{"token_endpoint_auth_method missing", 400, "invalid_client_metadata", claims(map[string]any{"token_endpoint_auth_method": nil}, tppclient.SignOptions{})},
		{"token_endpoint_auth_method none", 400, "invalid_client_metadata", claims(map[string]any{"token_endpoint_auth_method": "none"}, tppclient.SignOptions{})},
		{"tls_client_auth_subject_dn another subject", 400, "invalid_client_metadata", claims(map[string]any{"tls_client_auth_subject_dn": "CN=someone,OU=else,O=OpenBanking,C=GB"}, tppclient.SignOptions{})},
		{"tls_client_auth_subject_dn missing", 400, "invalid_client_metadata", claims(map[string]any{"tls_client_auth_subject_dn": nil}, tppclient.SignOptions{})},
		{"private_key_jwt without signing alg", 400, "invalid_client_metadata", claims(map[string]any{"token_endpoint_auth_method": "private_key_jwt", "tls_client_auth_subject_dn": nil}, tppclient.SignOptions{})},
		{"id_token alg HS256", 400, "invalid_client_metadata", claims(map[string]any{"id_token_signed_response_alg": "HS256"}, tppclient.SignOptions{})},
		{"grant type password", 400, "invalid_client_metadata", claims(map[string]any{"grant_types": []string{"authorization_code", "password"}}, tppclient.SignOptions{})},
		{"response type token", 400, "invalid_client_metadata", claims(map[string]any{"response_types": []string{"token"}}, tppclient.SignOptions{})},
		{"application_type native", 400, "invalid_client_metadata", claims(map[string]any{"application_type": "native"}, tppclient.SignOptions{})},
		{"scope not supported", 400, "invalid_client_metadata", claims(map[string]any{"scope": "openid admin"}, tppclient.SignOptions{})},
		{"scope beyond the software roles", 400, "invalid_client_metadata", func(t *testing.T) (*http.Request, *http.Client) {
			return claims(map[string]any{"scope": "openid payments", "software_statement": ssaWith(t, g, map[string]any{"software_roles": []string{"AISP"}})}, tppclient.SignOptions{})(t)
		}},
		{"CIBA ping without notification endpoint", 400, "invalid_client_metadata", claims(map[string]any{"grant_types": []string{"urn:openid:params:grant-type:ciba"}, "backchannel_token_delivery_mode": "ping"}, tppclient.SignOptions{})},
		{"CIBA push mode", 400, "invalid_client_metadata", claims(map[string]any{"grant_types": []string{"urn:openid:params:grant-type:ciba"}, "backchannel_token_delivery_mode": "push", "backchannel_client_notification_endpoint": "https://tpp.example.com/notify"}, tppclient.SignOptions{})},
		{"software_id differs from the SSA", 400, "invalid_client_metadata", claims(map[string]any{"software_id": "another-software"}, tppclient.SignOptions{})},
		{"management without token", 401, "invalid_token", func(t *testing.T) (*http.Request, *http.Client) {
			r, _ := http.NewRequest(http.MethodGet, g.Endpoint+"/0e6e7e2a-8a4c-4e3c-9a7e-2f6f7a1b2c3d", nil)
			return r, nil
		}},
		{"management of an unknown client", 401, "invalid_token", func(t *testing.T) (*http.Request, *http.Client) {
			r, _ := http.NewRequest(http.MethodDelete, g.Endpoint+"/0e6e7e2a-8a4c-4e3c-9a7e-2f6f7a1b2c3d", nil)
			r.Header.Set("Authorization", "Bearer abc")
			return r, nil
		}},
		{"management with a malformed Authorization", 401, "invalid_token", func(t *testing.T) (*http.Request, *http.Client) {
			r, _ := http.NewRequest(http.MethodGet, g.Endpoint+"/x", nil)
			r.Header.Set("Authorization", "Bearer")
			return r, nil
		}},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d bad requests", len(cases))
	}

	regsBefore, onceBefore := len(g.StoreFiles("/registrations/")), len(g.StoreFiles("/once/"))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, client := tc.build(t)
			if client == nil {
				client = c1.HTTP
			}
			resp, err := client.Do(req.WithContext(gatewaytest.Context(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := readJSON(t, resp)
			if resp.StatusCode != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
			if d, _ := body["error_description"].(string); d == "" {
				t.Fatalf("no error_description in %v", body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			switch tc.status {
			case 413:
				if d, _ := body["error_description"].(string); !strings.Contains(d, "larger than 64 KiB") {
					t.Fatalf("413 does not state the limit: %q", d)
				}
			case 405:
				if resp.Header.Get("Allow") == "" {
					t.Fatal("405 without Allow")
				}
			case 401:
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
				}
			}
			if n, m := len(g.StoreFiles("/registrations/")), len(g.StoreFiles("/once/")); n != regsBefore || m != onceBefore {
				t.Fatalf("store changed: registrations %d→%d, one-time keys %d→%d", regsBefore, n, onceBefore, m)
			}
		})
	}

	// The control: the same client and setup register fine, so the rejections above were
	// each caused by what the case changed.
	body := good(t)
	resp, err := c1.Register(gatewaytest.Context(t), body, "application/jose", "")
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("control registration: %v %+v\n%s", err, resp, g.Logs())
	}
	// ...and the same request again is a replay.
	resp, err = c1.Register(gatewaytest.Context(t), body, "application/jose", "")
	if err != nil || resp.Status != http.StatusBadRequest || resp.JSON["error"] != "invalid_client_metadata" ||
		!strings.Contains(fmt.Sprint(resp.JSON["error_description"]), "already been used") {
		t.Fatalf("replayed jti: %v %+v", err, resp)
	}
	if n := len(g.StoreFiles("/registrations/")); n != regsBefore+1 {
		t.Fatalf("registrations %d, want %d", n, regsBefore+1)
	}
}
