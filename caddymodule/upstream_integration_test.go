package caddymodule_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

const (
	upstreamIAT           = "iat-upstream-integration-0123456789"
	upstreamGatewaySecret = "gateway-secret-0123456789"
)

// upstreamDeployment is examples/Caddyfile.upstream on gatewaytest: the backend's
// registration paths closed to all but the registrar, the client certificate forwarded in a
// header (stripped from incoming requests first), the discovery document rewritten, management
// by registration access token or the client's own client-credentials token (introspected at
// the backend, through the gateway).
func upstreamOptions(port, backendPort int) gatewaytest.Options {
	return gatewaytest.Options{
		Port:     port,
		Upstream: fmt.Sprintf("127.0.0.1:%d", backendPort),
		Env:      []string{"AS_INITIAL_ACCESS_TOKEN=" + upstreamIAT, "DCR_GATEWAY_SECRET=" + upstreamGatewaySecret},
		SiteDirectives: `
	request_header -X-Client-Cert
	@backend_registration {
		path /reg /reg/*
		not vars dcr_registrar_call true
	}
	respond @backend_registration 404
	dcr_discovery {
		token_endpoint_auth_methods
		signing_algs
	}`,
		ReverseProxyBlock: `		header_up X-Client-Cert {http.request.tls.client.certificate_der_base64}`,
		DCRBlock: gatewaytest.DefaultDCRBlock + `
		access_token {
			introspection {{BASE}}/token/introspection
			client dcrgate {
				client_secret_basic {env.DCR_GATEWAY_SECRET}
				trusted_roots {{SANDBOX}}/ca/bundle.pem
			}
			manage * registration_token client_credentials
		}
		registrar upstream /reg {
			initial_access_token {env.AS_INITIAL_ACCESS_TOKEN}
		}
`,
	}
}

func startUpstream(t *testing.T) (*gatewaytest.Gateway, *gatewaytest.OIDCProvider) {
	t.Helper()
	return startUpstreamWith(t, "")
}

// startUpstreamWith is startUpstream with more lines in the `registrar upstream` block.
func startUpstreamWith(t *testing.T, registrarLines string) (*gatewaytest.Gateway, *gatewaytest.OIDCProvider) {
	t.Helper()
	port, backendPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	o := upstreamOptions(port, backendPort)
	if registrarLines != "" {
		const iat = "initial_access_token {env.AS_INITIAL_ACCESS_TOKEN}\n"
		if !strings.Contains(o.DCRBlock, iat) {
			t.Fatal("no registrar block to add to")
		}
		o.DCRBlock = strings.Replace(o.DCRBlock, iat, iat+registrarLines+"\n", 1)
	}
	g := gatewaytest.Start(t, o)
	as := gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{
		Issuer: g.BaseURL, InitialAccessToken: upstreamIAT, Port: backendPort,
		TrustedCAFile: g.Sandbox.Files.CABundle, GatewayClientID: "dcrgate", GatewayClientSecret: upstreamGatewaySecret,
	})
	return g, as
}

// storedBackend reads what the gateway stored about a client's backend registration.
func storedBackend(t *testing.T, g *gatewaytest.Gateway, clientID string) map[string]any {
	t.Helper()
	for _, f := range g.StoreFiles("/registrations/") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			ClientID string         `json:"client_id"`
			Backend  map[string]any `json:"backend"`
		}
		if json.Unmarshal(b, &rec) == nil && rec.ClientID == clientID {
			return rec.Backend
		}
	}
	t.Fatalf("no stored record for %s", clientID)
	return nil
}

// backendRead is RFC 7592 GET straight at the backend with its registration access token:
// 200 and the client's metadata while the backend knows the client.
func backendRead(t *testing.T, as *gatewaytest.OIDCProvider, clientID, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, as.URL+"/reg/"+clientID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// tokenRequest asks the backend's token endpoint, through the gateway, for a client-credentials
// token, as the TPP (over its mTLS connection).
func tokenRequest(t *testing.T, c *tppclient.Client, base string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := c.HTTP.PostForm(base+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func clientCredentials(t *testing.T, c *tppclient.Client, base, clientID string, assertion bool) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {"accounts"}}
	if assertion {
		now := time.Now()
		jwt := sign(t, c, map[string]any{"iss": clientID, "sub": clientID, "aud": base + "/token",
			"jti": uuid.NewString(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}, tppclient.SignOptions{})
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", string(jwt))
	}
	return tokenRequest(t, c, base, form)
}

func introspect(t *testing.T, g *gatewaytest.Gateway, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.BaseURL+"/token/introspection", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("dcrgate", upstreamGatewaySecret)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustPool(t, g.Sandbox)}}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readJSON(t, resp)
}

func TestUpstreamLifecycle(t *testing.T) {
	g, as := startUpstream(t)
	ctx := gatewaytest.Context(t)
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustPool(t, g.Sandbox)}}}

	// Discovery: the backend's document, pointing registrations at the gateway.
	resp, err := anon.Get(g.BaseURL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	disco := readJSON(t, resp)
	if disco["registration_endpoint"] != g.Endpoint || disco["token_endpoint"] != g.BaseURL+"/token" || disco["issuer"] != g.BaseURL {
		t.Fatalf("discovery: %v", disco)
	}
	if got := fmt.Sprint(disco["token_endpoint_auth_methods_supported"]); got != "[tls_client_auth private_key_jwt]" {
		t.Fatalf("advertised auth methods %s, want the profile's", got)
	}
	// The backend's own registration endpoint is closed to everyone but the registrar, even
	// with its initial access token.
	req, _ := http.NewRequest(http.MethodPost, g.BaseURL+"/reg", strings.NewReader(`{"redirect_uris":["https://x.example/cb"]}`))
	req.Header.Set("Authorization", "Bearer "+upstreamIAT)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := anon.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /reg from outside: %v %v", err, resp)
	}

	// TPP 1: tls_client_auth, hybrid flow and client credentials, certificate-bound tokens.
	c1 := newClient(t, g, 1)
	claims1 := c1.Claims()
	claims1["tls_client_certificate_bound_access_tokens"] = true
	r1, err := c1.Register(ctx, sign(t, c1, claims1, tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
	if err != nil || r1.Status != http.StatusCreated {
		t.Fatalf("register tls_client_auth: %v %+v\n%s", err, r1, g.Logs())
	}
	// TPP 2: private_key_jwt, client credentials only.
	c2 := newClient(t, g, 2)
	claims2 := c2.Claims()
	claims2["token_endpoint_auth_method"] = "private_key_jwt"
	claims2["token_endpoint_auth_signing_alg"] = "PS256"
	claims2["grant_types"] = []string{"client_credentials"}
	claims2["scope"] = "accounts"
	delete(claims2, "tls_client_auth_subject_dn")
	delete(claims2, "response_types")
	r2, err := c2.Register(ctx, sign(t, c2, claims2, tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
	if err != nil || r2.Status != http.StatusCreated {
		t.Fatalf("register private_key_jwt: %v %+v\n%s", err, r2, g.Logs())
	}
	id1, rat1 := r1.JSON["client_id"].(string), r1.JSON["registration_access_token"].(string)
	id2, rat2 := r2.JSON["client_id"].(string), r2.JSON["registration_access_token"].(string)

	// The client_id is the backend's (a UUID, ≤ 36 characters), the TPP sees the OB shape, and
	// the backend knows each client under the token the gateway keeps to itself.
	for _, r := range []*tppclient.Response{r1, r2} {
		id := r.JSON["client_id"].(string)
		if _, err := uuid.Parse(id); err != nil || len(id) > 36 {
			t.Fatalf("client_id %q", id)
		}
		if r.JSON["software_statement"] == "" || r.JSON["org_id"] == nil || r.JSON["registration_client_uri"] != g.Endpoint+"/"+id {
			t.Fatalf("not the OB response shape: %v", r.JSON)
		}
		back := storedBackend(t, g, id)
		if back["registration_access_token"] == r.JSON["registration_access_token"] {
			t.Fatal("the TPP got the backend's registration access token")
		}
		status, md := backendRead(t, as, id, back["registration_access_token"].(string))
		if status != http.StatusOK || md["client_id"] != id {
			t.Fatalf("the backend does not know %s: %d %v", id, status, md)
		}
		if id == id1 && (md["token_endpoint_auth_method"] != "tls_client_auth" || md["tls_client_auth_subject_dn"] != c1.CertSubjectDN) {
			t.Fatalf("backend metadata of the tls_client_auth client: %v", md)
		}
		if id == id2 && (md["token_endpoint_auth_method"] != "private_key_jwt" || !strings.HasPrefix(fmt.Sprint(md["jwks_uri"]), g.BaseURL+"/sandbox/jwks/")) {
			t.Fatalf("backend metadata of the private_key_jwt client: %v", md)
		}
	}

	// Client-credentials tokens from the backend's token endpoint, through the gateway.
	status, tok1 := clientCredentials(t, c1, g.BaseURL, id1, false)
	if status != http.StatusOK || tok1["access_token"] == nil {
		t.Fatalf("tls_client_auth token: %d %v\n%s", status, tok1, as.Logs())
	}
	status, tok2 := clientCredentials(t, c2, g.BaseURL, id2, true)
	if status != http.StatusOK || tok2["access_token"] == nil {
		t.Fatalf("private_key_jwt token: %d %v\n%s", status, tok2, as.Logs())
	}
	cc1, cc2 := tok1["access_token"].(string), tok2["access_token"].(string)
	// The forwarded certificate bound the token to TPP 1's transport certificate.
	cert, err := tls.LoadX509KeyPair(g.Sandbox.TPP(1).TransportCert, g.Sandbox.TPP(1).TransportKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	if cnf, _ := introspect(t, g, cc1)["cnf"].(map[string]any); cnf["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatalf("token not bound to the transport certificate: cnf %v", cnf)
	}
	// tls_client_auth with another TPP's certificate fails at the backend.
	if status, m := clientCredentials(t, c2, g.BaseURL, id1, false); status != http.StatusUnauthorized {
		t.Fatalf("tls_client_auth with another certificate: %d %v", status, m)
	}

	// Management with the client's own client-credentials token.
	if resp, err := c1.Get(ctx, id1, cc1); err != nil || resp.Status != http.StatusOK || resp.JSON["client_id"] != id1 {
		t.Fatalf("GET with the client-credentials token: %v %+v", err, resp)
	}
	if resp, err := c2.Get(ctx, id2, rat2); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("GET with the registration access token: %v %+v", err, resp)
	}
	oldBackendToken := storedBackend(t, g, id2)["registration_access_token"].(string)
	claims2 = c2.Claims()
	claims2["token_endpoint_auth_method"] = "private_key_jwt"
	claims2["token_endpoint_auth_signing_alg"] = "ES256"
	claims2["grant_types"] = []string{"client_credentials"}
	claims2["scope"] = "accounts"
	delete(claims2, "tls_client_auth_subject_dn")
	delete(claims2, "response_types")
	up, err := c2.Update(ctx, id2, cc2, sign(t, c2, claims2, tppclient.SignOptions{}))
	if err != nil || up.Status != http.StatusOK || up.JSON["token_endpoint_auth_signing_alg"] != "ES256" {
		t.Fatalf("PUT with the client-credentials token: %v %+v", err, up)
	}
	newBackendToken := storedBackend(t, g, id2)["registration_access_token"].(string)
	if newBackendToken == oldBackendToken {
		t.Fatal("the backend's rotated registration access token was not stored")
	}
	if status, md := backendRead(t, as, id2, newBackendToken); status != http.StatusOK || md["token_endpoint_auth_signing_alg"] != "ES256" {
		t.Fatalf("backend after PUT: %d %v", status, md)
	}

	// Another client's token, a garbage token: the same 401.
	for name, tc := range map[string]struct {
		c     *tppclient.Client
		id, t string
	}{"another client's token": {c1, id1, cc2}, "garbage": {c1, id1, "garbage"}} {
		if resp, err := tc.c.Get(ctx, tc.id, tc.t); err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("%s: %v %+v", name, err, resp)
		}
	}

	// DELETE: the backend forgets the client, the gateway answers 401 from then on.
	backend1 := storedBackend(t, g, id1)["registration_access_token"].(string)
	if resp, err := c1.Delete(ctx, id1, cc1); err != nil || resp.Status != http.StatusNoContent {
		t.Fatalf("DELETE with the client-credentials token: %v %+v", err, resp)
	}
	if resp, err := c2.Delete(ctx, id2, rat2); err != nil || resp.Status != http.StatusNoContent {
		t.Fatalf("DELETE with the registration access token: %v %+v", err, resp)
	}
	for _, x := range []struct {
		c       *tppclient.Client
		id, tok string
		backend string
	}{{c1, id1, cc1, backend1}, {c2, id2, rat2, newBackendToken}} {
		if status, _ := backendRead(t, as, x.id, x.backend); status != http.StatusUnauthorized {
			t.Fatalf("the backend still knows %s: %d", x.id, status)
		}
		if resp, err := x.c.Get(ctx, x.id, x.tok); err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("GET after DELETE: %v %+v", err, resp)
		}
	}
	if status, m := clientCredentials(t, c1, g.BaseURL, id1, false); status != http.StatusUnauthorized || m["error"] != "invalid_client" {
		t.Fatalf("token for a deleted client: %d %v", status, m)
	}
	_ = rat1
	if n := len(g.StoreFiles("/registrations/")); n < 2 {
		t.Fatalf("tombstones: %d records", n)
	}
	if strings.Contains(g.Logs(), upstreamIAT) || slices.ContainsFunc([]string{backend1, newBackendToken, rat1, rat2}, func(s string) bool { return strings.Contains(g.Logs(), s) }) {
		t.Fatal("a secret reached the gateway's log")
	}
}
