package caddymodule_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// at is c with its endpoint spelled differently (same host and port).
func at(c *tppclient.Client, g *gatewaytest.Gateway, path string) *tppclient.Client {
	v := *c
	v.Endpoint = g.BaseURL + path
	return &v
}

// TestEndpointSpellingsThroughServer: every path Caddy's path matcher takes for the endpoint
// is the endpoint, through the real server; none reaches the backend (the stand-in answers
// "backend: ..."), and a client_id keeps its case.
func TestEndpointSpellingsThroughServer(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1})
	ctx := gatewaytest.Context(t)
	c1 := newClient(t, g, 1)

	// The control: the backend is there and answers what reaches it.
	if resp, err := c1.HTTP.Get(g.BaseURL + "/registerx"); err != nil {
		t.Fatal(err)
	} else if body := readJSONOrText(t, resp); body != "backend: GET /registerx" {
		t.Fatalf("control: %d %q", resp.StatusCode, body)
	}

	var id, token string
	for _, path := range []string{"/register/", "//register", "/REGISTER", "/Register", "/./register", "/x/../register", "/register%2F", "/%72egister"} {
		resp, err := at(c1, g, path).Register(ctx, sign(t, c1, c1.Claims(), tppclient.SignOptions{}), "", "")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(resp.Body, []byte("backend:")) || resp.Status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, resp.Status, resp.Body)
		}
		id, token = resp.JSON["client_id"].(string), resp.JSON["registration_access_token"].(string)
	}

	// Management under other spellings of the endpoint reaches the client.
	for _, path := range []string{"/REGISTER", "//register/", "/./register", "/Register"} {
		resp, err := at(c1, g, path).Get(ctx, id, token)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusOK || resp.JSON["client_id"] != id {
			t.Fatalf("GET %s/%s: %d %s", path, id, resp.Status, resp.Body)
		}
	}

	// Refused without reaching the backend: another method, a path below a client, a
	// client_id in another case (client_ids are case-sensitive: that client does not exist).
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/register/", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodPatch, "//REGISTER/" + id, http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodGet, "/register/" + id + "/extra", http.StatusNotFound, "invalid_request"},
		{http.MethodDelete, "/register/" + id + "%2Fextra", http.StatusNotFound, "invalid_request"},
		{http.MethodGet, "/register/" + strings.ToUpper(id), http.StatusUnauthorized, "invalid_token"},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, g.BaseURL+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c1.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readJSONOrText(t, resp)
		var m map[string]any
		if strings.HasPrefix(body, "backend:") || json.Unmarshal([]byte(body), &m) != nil || resp.StatusCode != tc.status || m["error"] != tc.code {
			t.Fatalf("%s %s: %d %q, want %d %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.code)
		}
	}
	// The registration is untouched by all of it.
	if resp, err := c1.Get(ctx, id, token); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("GET after: %v %+v", err, resp)
	}
}

// TestManagementErrorsUniform: an unknown client, a deleted one, a wrong token and a wrong
// certificate get exactly the same answer on GET, PUT and DELETE; only the audit log tells
// them apart.
func TestManagementErrorsUniform(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 2})
	ctx := gatewaytest.Context(t)
	c1, c2 := newClient(t, g, 1), newClient(t, g, 2)
	register := func(c *tppclient.Client) (string, string) {
		resp, err := c.Register(ctx, sign(t, c, c.Claims(), tppclient.SignOptions{}), "", "")
		if err != nil || resp.Status != http.StatusCreated {
			t.Fatalf("register: %v %+v", err, resp)
		}
		return resp.JSON["client_id"].(string), resp.JSON["registration_access_token"].(string)
	}
	id1, tok1 := register(c1)
	_, tok2 := register(c2)
	gone, goneTok := register(c1)
	if resp, err := c1.Delete(ctx, gone, goneTok); err != nil || resp.Status != http.StatusNoContent {
		t.Fatalf("delete: %v %+v", err, resp)
	}
	// The audit line of a call is written after its answer: wait for the four above, so that
	// each case below reads its own line and not the delete's.
	waitAuditLine(t, g, 3)
	noCert := &tppclient.Client{Endpoint: g.Endpoint, HTTP: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustPool(t, g.Sandbox)}}}}

	cases := []struct {
		name   string
		c      *tppclient.Client
		id, tk string
		reason string // in the audit line
	}{
		{"unknown client", c1, uuid.NewString(), tok1, "no live registration has this client_id"},
		{"deleted client", c1, gone, goneTok, "no live registration has this client_id"},
		{"wrong token", c1, id1, tok2, "the access token is not the registration access token of this client_id"},
		{"wrong certificate", c2, id1, tok1, "the TLS client certificate is of org_id"},
		{"no token", c1, id1, "", "no access token was sent"},
		{"no certificate", noCert, id1, tok1, "no TLS client certificate was presented"},
	}
	wantBody, _ := json.Marshal(map[string]string{"error": "invalid_token", "error_description": dcr.NotAuthorizedDescription})
	const wantChallenge = `Bearer error="invalid_token"`
	ops := []struct {
		name string
		do   func(c *tppclient.Client, id, tk string) (*tppclient.Response, error)
	}{
		{"GET", func(c *tppclient.Client, id, tk string) (*tppclient.Response, error) { return c.Get(ctx, id, tk) }},
		{"PUT", func(c *tppclient.Client, id, tk string) (*tppclient.Response, error) {
			return c.Update(ctx, id, tk, sign(t, c1, c1.Claims(), tppclient.SignOptions{}))
		}},
		{"DELETE", func(c *tppclient.Client, id, tk string) (*tppclient.Response, error) { return c.Delete(ctx, id, tk) }},
	}
	for _, tc := range cases {
		for _, op := range ops {
			t.Run(tc.name+" "+op.name, func(t *testing.T) {
				before := len(auditLines(g))
				resp, err := op.do(tc.c, tc.id, tc.tk)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != http.StatusUnauthorized || string(bytes.TrimSpace(resp.Body)) != string(wantBody) ||
					resp.Header.Values("WWW-Authenticate")[0] != wantChallenge || len(resp.Header.Values("WWW-Authenticate")) != 1 {
					t.Fatalf("got %d %s (WWW-Authenticate %q), want 401 %s (%q)", resp.Status, resp.Body, resp.Header.Values("WWW-Authenticate"), wantBody, wantChallenge)
				}
				l := waitAuditLine(t, g, before)
				if l["client_id"] != tc.id || l["status"] != float64(401) || l["error"] != "invalid_token" || l["operation"] != opName(op.name) ||
					!strings.Contains(fmt.Sprint(l["reason"]), tc.reason) {
					t.Fatalf("audit line %v, want reason %q", l, tc.reason)
				}
				if tc.tk != "" && strings.Contains(g.Logs(), tc.tk) {
					t.Fatal("a token reached the log")
				}
			})
		}
	}
	// One audit line per call: 3 registrations, a delete, and the refused calls.
	if want := 4 + len(cases)*len(ops); len(waitAuditLine(t, g, want-1)) > 0 && len(auditLines(g)) != want {
		t.Fatalf("%d audit lines, want %d", len(auditLines(g)), want)
	}
	// Nothing was changed: the live client still answers its owner, the deleted one stays gone.
	if resp, err := c1.Get(ctx, id1, tok1); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("owner's GET: %v %+v", err, resp)
	}
}

func opName(method string) string {
	return map[string]string{"GET": "read", "PUT": "update", "DELETE": "delete"}[method]
}

// waitAuditLine returns audit line i (0-based) once the gateway's stderr has been read that
// far: the line is written before the response, but reaches the test through a pipe.
func waitAuditLine(t *testing.T, g *gatewaytest.Gateway, i int) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if lines := auditLines(g); len(lines) > i {
			return lines[i]
		} else if time.Now().After(deadline) {
			t.Fatalf("%d audit lines, want line %d", len(lines), i+1)
		}
	}
}

// auditLines are the gateway's audit log lines so far.
func auditLines(g *gatewaytest.Gateway) []map[string]any { return g.AuditLines() }

// sampleResponse is the OB DCR v3.2 sample response of the seed document
// (shared/reference/acp-dcr-open-banking.txt, "Sample response"), verbatim.
const sampleResponse = `{
    "client_id": "buvn05busbftqfiocc4",
    "scopes": [
      "openid",
      "accounts"
    ],
    "grant_types":[
        "authorization_code",
        "client_credentials"
    ],
    "application_type":"web",
    "redirect_uris":[
        "https://example.com/callback"
    ],
    "token_endpoint_auth_method":"tls_client_auth",
    "tls_client_auth_dn":"CN=cid1.authorization.cloudentity.com,OU=Authorization,O=Cloudentity,L=Seattle,ST=Washinghton,C=US",
    "id_token_signed_response_alg":"PS256",
    "scope":"openid accounts",
    "request_object_signing_alg":"PS256"
}`

// vendorOnly are fields of the sample response that are the vendor's, not OB DCR v3.2's:
// `scopes` (the scope as an array) is in no OB or RFC 7591 response; the gateway answers the
// standard `scope` string, which the sample carries too.
var vendorOnly = []string{"scopes"}

// seedRequest is the seed document's sample request ("Decoded REQUEST_BODY payload") with its
// values adapted to the sandbox: iss the software_id, aud the gateway, fresh iat/exp/jti, the
// SSA's redirect URI, TPP 1's certificate subject, its software statement.
func seedRequest(c *tppclient.Client) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss":                          c.SoftwareID,
		"aud":                          c.Audience,
		"exp":                          now + 300,
		"iat":                          now,
		"jti":                          uuid.NewString(),
		"grant_types":                  []string{"authorization_code", "client_credentials"},
		"application_type":             "web",
		"redirect_uris":                []string{c.RedirectURIs[0]},
		"token_endpoint_auth_method":   "tls_client_auth",
		"tls_client_auth_dn":           c.CertSubjectDN,
		"id_token_signed_response_alg": "PS256",
		"scope":                        "openid accounts",
		"request_object_signing_alg":   "PS256",
		"software_statement":           c.SoftwareStatement,
	}
}

// TestSeedSampleRequest registers the seed document's sample request (OB DCR v3.1's
// tls_client_auth_dn included) through the real server and checks the answer has the sample
// response's shape, under the names the TPP used, on 201, GET and PUT.
func TestSeedSampleRequest(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1})
	ctx := gatewaytest.Context(t)
	c1 := newClient(t, g, 1)
	req := seedRequest(c1)
	resp, err := c1.Register(ctx, sign(t, c1, req, tppclient.SignOptions{}), "", "")
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("register the sample request: %v %+v\n%s", err, resp, g.Logs())
	}
	id, token := resp.JSON["client_id"].(string), resp.JSON["registration_access_token"].(string)

	var sample map[string]any
	if err := json.Unmarshal([]byte(sampleResponse), &sample); err != nil {
		t.Fatal(err)
	}
	ssa := g.Sandbox.SSAClaims(g.Sandbox.TPP(1))
	checkShape := func(what string, got map[string]any, assigned ...string) {
		t.Helper()
		for k, v := range sample {
			if slices.Contains(vendorOnly, k) {
				continue
			}
			gv, ok := got[k]
			if !ok {
				t.Errorf("%s: no %s (the sample response has it)", what, k)
				continue
			}
			if jsonType(gv) != jsonType(v) {
				t.Errorf("%s: %s is %s, the sample's is %s", what, k, jsonType(gv), jsonType(v))
			}
			// What the request decided comes back as sent.
			if sent, ok := req[k]; ok && k == "scope" {
				// A scope is a set (RFC 6749 §3.3); the gateway registers it sorted.
				if g, s := strings.Fields(fmt.Sprint(gv)), strings.Fields(fmt.Sprint(sent)); !reflect.DeepEqual(sorted(g), sorted(s)) {
					t.Errorf("%s: scope %q, sent %q", what, gv, sent)
				}
			} else if ok && !reflect.DeepEqual(gv, roundTrip(sent)) {
				t.Errorf("%s: %s = %v, sent %v", what, k, gv, sent)
			}
		}
		if _, ok := got["tls_client_auth_subject_dn"]; ok {
			t.Errorf("%s: answers tls_client_auth_subject_dn, but the TPP sent tls_client_auth_dn", what)
		}
		// Beyond the sample: only what the server assigns, the registered defaults and the
		// flattened SSA claims (the OB response shape).
		for k := range got {
			_, inSample := sample[k]
			_, fromSSA := ssa[k]
			if !inSample && !fromSSA && !slices.Contains(assigned, k) {
				t.Errorf("%s: unexpected field %s = %v", what, k, got[k])
			}
		}
	}
	always := []string{"client_id_issued_at", "registration_client_uri", "software_statement", "response_types"}
	checkShape("201", resp.JSON, append(always, "registration_access_token")...)
	if resp.JSON["registration_client_uri"] != g.Endpoint+"/"+id || !reflect.DeepEqual(resp.JSON["response_types"], []any{"code id_token"}) {
		t.Errorf("201: registration_client_uri %v, response_types %v", resp.JSON["registration_client_uri"], resp.JSON["response_types"])
	}

	get, err := c1.Get(ctx, id, token)
	if err != nil || get.Status != http.StatusOK {
		t.Fatalf("GET: %v %+v", err, get)
	}
	checkShape("GET", get.JSON, always...)

	// PUT with the v3.1 name answers with it; with both names (the same value) it answers both.
	req = seedRequest(c1)
	put, err := c1.Update(ctx, id, token, sign(t, c1, req, tppclient.SignOptions{}))
	if err != nil || put.Status != http.StatusOK {
		t.Fatalf("PUT: %v %+v", err, put)
	}
	checkShape("PUT", put.JSON, always...)

	both := seedRequest(c1)
	both["tls_client_auth_subject_dn"] = c1.CertSubjectDN
	put, err = c1.Update(ctx, id, token, sign(t, c1, both, tppclient.SignOptions{}))
	if err != nil || put.Status != http.StatusOK || put.JSON["tls_client_auth_dn"] != c1.CertSubjectDN || put.JSON["tls_client_auth_subject_dn"] != c1.CertSubjectDN {
		t.Fatalf("PUT with both names: %v %+v", err, put)
	}

	// A PUT under the v3.2 name answers with it, from then on.
	v32 := seedRequest(c1)
	delete(v32, "tls_client_auth_dn")
	v32["tls_client_auth_subject_dn"] = c1.CertSubjectDN
	put, err = c1.Update(ctx, id, token, sign(t, c1, v32, tppclient.SignOptions{}))
	if err != nil || put.Status != http.StatusOK || put.JSON["tls_client_auth_subject_dn"] != c1.CertSubjectDN || put.JSON["tls_client_auth_dn"] != nil {
		t.Fatalf("PUT with the v3.2 name: %v %+v", err, put)
	}
	if get, err = c1.Get(ctx, id, token); err != nil || get.JSON["tls_client_auth_subject_dn"] != c1.CertSubjectDN || get.JSON["tls_client_auth_dn"] != nil {
		t.Fatalf("GET after the v3.2 PUT: %v %+v", err, get)
	}

	// Both names with different values: refused, nothing stored or consumed.
	regs, once := len(g.StoreFiles("/registrations/")), len(g.StoreFiles("/once/"))
	conflict := seedRequest(c1)
	conflict["tls_client_auth_subject_dn"] = "CN=someone-else,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB"
	bad, err := c1.Register(ctx, sign(t, c1, conflict, tppclient.SignOptions{}), "", "")
	if err != nil || bad.Status != http.StatusBadRequest || bad.JSON["error"] != "invalid_client_metadata" ||
		!strings.Contains(fmt.Sprint(bad.JSON["error_description"]), "tls_client_auth_dn (the OB DCR v3.1 name of tls_client_auth_subject_dn) and tls_client_auth_subject_dn are both sent with different values") {
		t.Fatalf("both names, different values: %v %+v", err, bad)
	}
	if r, o := len(g.StoreFiles("/registrations/")), len(g.StoreFiles("/once/")); r != regs || o != once {
		t.Fatalf("store changed: registrations %d→%d, one-time keys %d→%d", regs, r, once, o)
	}
}

// TestUpdateClientIDThroughServer: a PUT whose body names another client_id is refused
// (RFC 7592 §2.2); its own client_id is fine.
func TestUpdateClientIDThroughServer(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1})
	ctx := gatewaytest.Context(t)
	c1 := newClient(t, g, 1)
	resp, err := c1.Register(ctx, sign(t, c1, c1.Claims(), tppclient.SignOptions{}), "", "")
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("register: %v %+v", err, resp)
	}
	id, token := resp.JSON["client_id"].(string), resp.JSON["registration_access_token"].(string)
	update := func(clientID any, scope string) *tppclient.Response {
		cl := c1.Claims()
		cl["client_id"], cl["scope"] = clientID, scope
		r, err := c1.Update(ctx, id, token, sign(t, c1, cl, tppclient.SignOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, other := range []any{uuid.NewString(), strings.ToUpper(id), 42} {
		r := update(other, "openid accounts")
		if r.Status != http.StatusBadRequest || r.JSON["error"] != "invalid_client_metadata" || !strings.Contains(fmt.Sprint(r.JSON["error_description"]), "client_id") {
			t.Fatalf("PUT naming client_id %v: %d %s", other, r.Status, r.Body)
		}
	}
	if get, err := c1.Get(ctx, id, token); err != nil || get.JSON["scope"] != "accounts openid payments" {
		t.Fatalf("a refused PUT changed the registration: %v %+v", err, get)
	}
	if r := update(id, "openid accounts"); r.Status != http.StatusOK || r.JSON["client_id"] != id || r.JSON["scope"] != "accounts openid" {
		t.Fatalf("PUT naming its own client_id: %d %s", r.Status, r.Body)
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// roundTrip is v as it comes back from JSON.
func roundTrip(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
