package conformance

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
)

// modes are the tool's two auth modes; each mode and spec is run by its own TPP of the
// sandbox (so that a failed scenario's leftovers never count against another's registration
// limit), and the last TPP is the stranger of FAPI-cert-bound.
var modes = []struct {
	method string
	tpps   map[Spec]int
}{
	{TLSClientAuth, map[Spec]int{Spec32: 1, Spec33: 2}},
	{PrivateKeyJWT, map[Spec]int{Spec32: 3, Spec33: 4}},
}

const (
	strangerTPP = 5
	sandboxTPPs = 5
)

// scenario is one of the tool's scenarios, by its id.
type scenario struct {
	id, name string
	run      func(t *testing.T, r *run)
}

// scenarios are conformance-dcr v1.3.1's, in its order (it has no DCR-006). DCR-001 runs
// before the client is built, since it is about discovery itself.
var scenarios = []scenario{
	{"DCR-002", "Dynamically create a new software client", func(t *testing.T, r *run) {
		id := r.register(t)
		tok := r.token(t, id)
		r.delete(t, id, tok)
	}},
	{"DCR-003", "Delete software is supported", func(t *testing.T, r *run) {
		id := r.register(t)
		tok := r.token(t, id)
		r.delete(t, id, tok)
		r.unauthorized(t, "GET of the deleted client", r.do(t)(r.c.Retrieve(r.ctx, id, tok)))
	}},
	{"DCR-004", "Dynamically create a new software client will fail on invalid registration request", func(t *testing.T, r *run) {
		reasonExp := regexp.MustCompile(`\bexp\b|expired`)
		reasonIss := regexp.MustCompile(`\biss\b`)
		r.refused(t, "expired claims", func(m map[string]any) {
			// The tool's WithJwtExpiration(-time.Hour): exp an hour before iat.
			m["exp"] = time.Now().Add(-time.Hour).Unix()
		}, "", reasonExp)
		r.refused(t, "invalid issuer", func(m map[string]any) { m["iss"] = "foo.is/invalid" }, "", reasonIss)
		r.refused(t, "invalid issuer too short", func(m map[string]any) { m["iss"] = "" }, "", reasonIss)
		r.refused(t, "invalid issuer too long", func(m map[string]any) { m["iss"] = "123456789012345678901234567890" }, "", reasonIss)
		r.refused(t, "signed RS256", func(m map[string]any) {
			// The tool's WithTokenEndpointAuthMethod(RS256): its one algorithm everywhere.
			m["id_token_signed_response_alg"] = "RS256"
			if _, ok := m["token_endpoint_auth_signing_alg"]; ok {
				m["token_endpoint_auth_signing_alg"] = "RS256"
			}
		}, "RS256", regexp.MustCompile(`RS256`))
		r.stillRegisters(t)
	}},
	{"DCR-005", "Dynamically retrieve a new software client", func(t *testing.T, r *run) {
		id := r.register(t)
		tok := r.token(t, id)
		r.read(t, id, tok)
		r.delete(t, id, tok)
	}},
	{"DCR-007", "I should not be able to retrieve a software client with invalid credentials", func(t *testing.T, r *run) {
		id := r.register(t)
		r.unauthorized(t, "GET with an invalid token", r.do(t)(r.c.Retrieve(r.ctx, id, "foobar")))
		tok := r.token(t, id)
		r.delete(t, id, tok)
	}},
	{"DCR-008", "I should be able update a registered software", func(t *testing.T, r *run) {
		id := r.register(t)
		tok := r.token(t, id)
		r.update(t, id, tok)
		r.delete(t, id, tok)
	}},
	{"DCR-009", "When I try to update a non existing software client I should be unauthorized", func(t *testing.T, r *run) {
		id := r.register(t)
		tok := r.token(t, id)
		r.delete(t, id, tok)
		r.unauthorized(t, "PUT of the deleted client", r.do(t)(r.c.Update(r.ctx, id, tok, r.sign(t, r.c.RegistrationClaims(), ""))))
	}},
	{"DCR-010", "When I try to retrieve a non existing software client I should be unauthorized", func(t *testing.T, r *run) {
		id := r.register(t)
		tok := r.token(t, id)
		r.delete(t, id, tok)
		r.unauthorized(t, "GET of the deleted client", r.do(t)(r.c.Retrieve(r.ctx, id, tok)))
	}},
	{"DCR-011", "When I try to register a software with invalid response_types it should be fail", func(t *testing.T, r *run) {
		r.refused(t, "response_types id_token token", func(m map[string]any) {
			m["response_types"] = []string{"id_token", "token"}
		}, "", regexp.MustCompile(`response_types`))
		r.stillRegisters(t)
	}},
}

// TestConformance runs the tool's scenarios, for spec 3.2 and 3.3, in both auth modes,
// against the documented upstream deployment.
func TestConformance(t *testing.T) {
	d := startDeployment(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("deployment output:\n%s", d.Logs())
		}
	})
	for _, mode := range modes {
		t.Run(mode.method, func(t *testing.T) {
			for _, spec := range []Spec{Spec32, Spec33} {
				t.Run(string(spec), func(t *testing.T) {
					t.Run("DCR-001", func(t *testing.T) {
						t.Log("DCR-001: Validate OIDC Config Registration URL")
						hc, _, err := NewHTTPClient(d.files(mode.tpps[spec]))
						if err != nil {
							t.Fatal(err)
						}
						disco, err := FetchDiscovery(gatewaytest.Context(t), hc, d.DiscoveryURL)
						if err != nil {
							t.Fatal(err)
						}
						if err := disco.CheckRegistrationEndpoint(); err != nil {
							t.Error(err)
						}
					})
					r := newRun(t, d, mode.method, mode.tpps[spec], spec)
					for _, s := range scenarios {
						t.Run(s.id, func(t *testing.T) {
							t.Logf("%s: %s", s.id, s.name)
							r.ctx = gatewaytest.Context(t)
							s.run(t, r)
						})
					}
				})
			}
			t.Run("FAPI-cert-bound", func(t *testing.T) {
				t.Log("FAPI-cert-bound: the client-credentials token is bound to the transport certificate (RFC 8705)")
				r := newRun(t, d, mode.method, mode.tpps[Spec32], Spec32)
				certBound(t, r, d)
			})
		})
	}
}

// run is one mode and spec: the OB client and what the scenarios share.
type run struct {
	c    *Client
	spec Spec
	ctx  context.Context
}

func newRun(t *testing.T, d *deployment, method string, tpp int, spec Spec) *run {
	t.Helper()
	ctx := gatewaytest.Context(t)
	c, err := New(ctx, Options{DiscoveryURL: d.DiscoveryURL, Files: d.files(tpp), AuthMethod: method})
	if err != nil {
		t.Fatalf("the OB client cannot start from discovery: %v", err)
	}
	t.Logf("from discovery: token_endpoint_auth_method %s, request_object_signing_alg %s, response_types %v, signing alg %s",
		c.AuthMethod, c.RequestObjectSigningAlg, c.ResponseTypes, c.SigningAlg)
	return &run{c: c, spec: spec, ctx: ctx}
}

// do turns a call's (response, error) into the response, failing the test on a transport
// error.
func (r *run) do(t *testing.T) func(*Response, error) *Response {
	return func(resp *Response, err error) *Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
}

func (r *run) sign(t *testing.T, claims map[string]any, alg string) string {
	t.Helper()
	jwt, err := r.c.Sign(claims, alg)
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

// registration checks an answer that carries a registration (201 of POST, 200 of GET and
// PUT): the status, a JSON content type, the data dictionary and the auth method the client
// registered with.
func (r *run) registration(t *testing.T, what string, resp *Response, status int) map[string]any {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("%s: want %d, got %s", what, status, resp)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, resp.Header.Get("Content-Type"))
	}
	for _, f := range CheckRegistration(r.spec, resp.Body) {
		t.Errorf("%s: OB DCR %s data dictionary: %s", what, r.spec, f)
	}
	m, err := resp.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if m["token_endpoint_auth_method"] != r.c.AuthMethod {
		t.Errorf("%s: token_endpoint_auth_method %v, registered %s", what, m["token_endpoint_auth_method"], r.c.AuthMethod)
	}
	return m
}

// register makes a valid registration and returns its client_id.
func (r *run) register(t *testing.T) string {
	t.Helper()
	resp := r.do(t)(r.c.Register(r.ctx, r.sign(t, r.c.RegistrationClaims(), "")))
	m := r.registration(t, "POST register", resp, http.StatusCreated)
	id, _ := m["client_id"].(string)
	if id == "" {
		t.Fatalf("POST register: no client_id: %s", resp)
	}
	// A scenario that fails half-way leaves its client behind; the harness removes it with
	// the RFC 7592 registration access token (a passing scenario has deleted it already).
	if rat, _ := m["registration_access_token"].(string); rat != "" {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = r.c.Delete(ctx, id, rat)
		})
	}
	return id
}

// token gets a client-credentials token at the discovered token endpoint.
func (r *run) token(t *testing.T, clientID string) string {
	t.Helper()
	tok, err := r.c.AccessToken(r.ctx, clientID)
	if err != nil {
		t.Fatalf("client-credentials token for %s: %v", r.c.AuthMethod, err)
	}
	return tok
}

func (r *run) read(t *testing.T, clientID, tok string) {
	t.Helper()
	m := r.registration(t, "GET register/{client_id}", r.do(t)(r.c.Retrieve(r.ctx, clientID, tok)), http.StatusOK)
	if m["client_id"] != clientID {
		t.Errorf("GET: client_id %v, want %s", m["client_id"], clientID)
	}
}

func (r *run) update(t *testing.T, clientID, tok string) {
	t.Helper()
	resp := r.do(t)(r.c.Update(r.ctx, clientID, tok, r.sign(t, r.c.RegistrationClaims(), "")))
	m := r.registration(t, "PUT register/{client_id}", resp, http.StatusOK)
	if m["client_id"] != clientID {
		t.Errorf("PUT: client_id %v, want %s", m["client_id"], clientID)
	}
}

func (r *run) delete(t *testing.T, clientID, tok string) {
	t.Helper()
	if resp := r.do(t)(r.c.Delete(r.ctx, clientID, tok)); resp.Status != http.StatusNoContent {
		t.Fatalf("DELETE register/{client_id}: want 204, got %s", resp)
	}
}

// unauthorized wants RFC 6750's answer to a token that is not (or no longer) good: 401 with a
// Bearer challenge.
func (r *run) unauthorized(t *testing.T, what string, resp *Response) {
	t.Helper()
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("%s: want 401, got %s", what, resp)
		return
	}
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(strings.ToLower(ch), "bearer") {
		t.Errorf("%s: 401 without a Bearer WWW-Authenticate challenge (got %q)", what, ch)
	}
}

// refused sends a valid registration changed by change (and signed with alg) and wants it
// refused for its reason: 400, invalid_client_metadata, a description matching reason.
func (r *run) refused(t *testing.T, what string, change func(map[string]any), alg string, reason *regexp.Regexp) {
	t.Helper()
	claims := r.c.RegistrationClaims()
	change(claims)
	resp := r.do(t)(r.c.Register(r.ctx, r.sign(t, claims, alg)))
	if resp.Status != http.StatusBadRequest {
		t.Errorf("%s: want 400, got %s", what, resp)
		return
	}
	code, desc, err := resp.Error()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	t.Logf("%s: %d %s %q", what, resp.Status, code, desc)
	if code != "invalid_client_metadata" || !reason.MatchString(desc) {
		t.Errorf("%s: want invalid_client_metadata for %s, got %q %q", what, reason, code, desc)
	}
}

// stillRegisters: after the refusals, nothing was stored or consumed that stops a valid
// registration, its token and its deletion.
func (r *run) stillRegisters(t *testing.T) {
	t.Helper()
	id := r.register(t)
	tok := r.token(t, id)
	r.delete(t, id, tok)
}

// certBound: FAPI 1.0 Advanced (5.2.2-5) and RFC 8705 §3: the token is bound to the TPP's
// transport certificate (cnf.x5t#S256 in the AS's introspection answer, read here with the
// gateway's own client credentials, which only the harness knows), and another TPP cannot
// use it.
func certBound(t *testing.T, r *run, d *deployment) {
	ctx := gatewaytest.Context(t)
	r.ctx = ctx
	id := r.register(t)
	tok := r.token(t, id)
	defer r.delete(t, id, tok)

	endpoint, _ := r.c.Discovery.Raw["introspection_endpoint"].(string)
	if endpoint == "" {
		t.Fatal("discovery has no introspection_endpoint")
	}
	roots, err := d.Sandbox.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(gatewayClientID, gatewaySecret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var intro struct {
		Active bool              `json:"active"`
		Cnf    map[string]string `json:"cnf"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&intro); err != nil || !intro.Active {
		t.Fatalf("introspection: %d %v %+v", resp.StatusCode, err, intro)
	}
	sum := sha256.Sum256(r.c.TransportCert.Raw)
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); intro.Cnf["x5t#S256"] != want {
		t.Errorf("token of a %s client: cnf %v, want x5t#S256 %s of the transport certificate", r.c.AuthMethod, intro.Cnf, want)
	}

	other, err := New(ctx, Options{DiscoveryURL: d.DiscoveryURL, Files: d.files(strangerTPP), AuthMethod: r.c.AuthMethod})
	if err != nil {
		t.Fatal(err)
	}
	r.unauthorized(t, fmt.Sprintf("GET with a %s client's token over TPP %d's connection", r.c.AuthMethod, strangerTPP), r.do(t)(other.Retrieve(ctx, id, tok)))
}
