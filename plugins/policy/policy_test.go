package policy

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcrgate/dcrgate/dcr"
)

// fakeStore answers ListBySoftware; the policy uses nothing else.
type fakeStore struct {
	dcr.Store
	ids []string
	err error
}

func (s *fakeStore) ListBySoftware(context.Context, string) ([]string, error) { return s.ids, s.err }

const (
	testSoftwareID = "7gHx2sK9mQ4rT1uV3wY5zA"
	testOrgID      = "0015800001HQQrZAAX"
	testSSA        = "eyJhbGciOiJQUzI1NiJ9.c2VjcmV0LXNzYQ.c2ln"
	testToken      = "registration-access-token-value"
)

// call is a DCR call as the pipeline puts it to the policy: an exchange and the store behind
// the registry view.
type call struct {
	*dcr.Exchange
	Store dcr.Store
}

// protect runs the decide phase with p as its one protection, as the handler does: on
// success x.AcceptedMetadata is the metadata with the decision's overrides.
func (c *call) protect(ctx context.Context, p *Policy) error {
	pl, err := dcr.NewPipeline(dcr.Step{Name: "policy", Protection: p})
	if err != nil {
		return err
	}
	return pl.Run(ctx, dcr.PhaseDecide, c.Exchange, dcr.ReadOnly(c.Store), &dcr.Pending{}, nil)
}

// exchange is a register call as the pipeline leaves it for the policy.
func exchange(change func(x *call)) *call {
	r := httptest.NewRequest(http.MethodPost, "https://bank.example/register", nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Header.Set("Content-Type", "application/jose")
	x := &call{Store: &fakeStore{}, Exchange: &dcr.Exchange{
		Operation: dcr.OpRegister,
		Request:   r,
		Now:       time.Unix(1_700_000_000, 0),
		RequestClaims: map[string]any{
			"iss": testSoftwareID, "scope": "openid accounts payments", "software_statement": testSSA,
		},
		SoftwareStatement: &dcr.SoftwareStatement{
			Raw: testSSA, Directory: "OpenBanking Ltd", SoftwareID: testSoftwareID, OrgID: testOrgID,
			Claims: map[string]any{
				"software_id": testSoftwareID, "org_id": testOrgID, "org_status": "Active",
				"software_mode": "Test", "software_roles": []any{"AISP", "PISP"},
			},
		},
		Metadata: map[string]any{
			"scope":          "openid accounts payments",
			"grant_types":    []any{"authorization_code", "client_credentials", "refresh_token"},
			"response_types": []any{"code id_token"},
		},
	}}
	if change != nil {
		change(x)
	}
	return x
}

// newPolicy provisions a policy module with a logger the test reads.
func newPolicy(t testing.TB, p *Policy) (*Policy, *observer.ObservedLogs) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Cleanup() })
	core, logs := observer.New(zapcore.DebugLevel)
	p.logger = zap.New(core)
	return p, logs
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func off() *bool { b := false; return &b }

func asError(t *testing.T, err error) *dcr.Error {
	t.Helper()
	var e *dcr.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *dcr.Error, got %v", err)
	}
	return e
}

// TestDefaultRules runs each default rule allowed and denied through the protection.
func TestDefaultRules(t *testing.T) {
	dataDir := t.TempDir()
	cases := []struct {
		name     string
		data     string
		change   func(x *call)
		status   int
		code     string
		contains string
	}{
		{name: "a good registration", status: 0},
		{name: "org_status Revoked", change: func(x *call) { x.SoftwareStatement.Claims["org_status"] = "Revoked" },
			status: 400, code: "unapproved_software_statement", contains: `org_status "Revoked"`},
		{name: "org_status Suspended", change: func(x *call) { x.SoftwareStatement.Claims["org_status"] = "Suspended" },
			status: 400, code: "unapproved_software_statement", contains: `org_status "Suspended"`},
		{name: "org_status Suspended, allowed by data", data: `{"dcr":{"config":{"org_statuses":["Active","Suspended"]}}}`,
			change: func(x *call) { x.SoftwareStatement.Claims["org_status"] = "Suspended" }},
		{name: "Test software in production, allowed by data", data: "dcr:\n  config:\n    environment: production\n    software_modes:\n      production: [Test, Live]\n"},
		{name: "Test software in production", data: "dcr:\n  config:\n    environment: production\n",
			status: 400, code: "unapproved_software_statement", contains: "production environment"},
		{name: "Live software in production", data: "dcr:\n  config:\n    environment: production\n",
			change: func(x *call) { x.SoftwareStatement.Claims["software_mode"] = "Live" }},
		{name: "ten registrations already", change: func(x *call) {
			x.Store = &fakeStore{ids: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}}
		}, status: 400, code: "unapproved_software_statement", contains: "already has 10 registrations"},
		{name: "nine registrations already", change: func(x *call) {
			x.Store = &fakeStore{ids: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}}
		}},
		{name: "update of the tenth", change: func(x *call) {
			x.Operation = dcr.OpUpdate
			x.Existing = &dcr.Registration{ClientID: "10", SoftwareID: testSoftwareID, OrgID: testOrgID}
			x.Store = &fakeStore{ids: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}}
		}},
		{name: "denied organisation", data: `{"dcr":{"config":{"denied_org_ids":["` + testOrgID + `"]}}}`,
			status: 400, code: "unapproved_software_statement", contains: "is not allowed to register"},
		{name: "organisation on the allow list", data: `{"dcr":{"config":{"allowed_org_ids":["` + testOrgID + `"]}}}`},
		{name: "organisation off the allow list", data: `{"dcr":{"config":{"allowed_org_ids":["0015800001ZZZZZZZZ"]}}}`,
			status: 400, code: "unapproved_software_statement", contains: "allowed organisations"},
		{name: "read by a denied organisation", data: `{"dcr":{"config":{"denied_org_ids":["` + testOrgID + `"]}}}`,
			change: func(x *call) {
				x.Operation, x.Metadata, x.SoftwareStatement = dcr.OpRead, nil, nil
				x.Existing = &dcr.Registration{ClientID: "c1", SoftwareID: testSoftwareID, OrgID: testOrgID}
			}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Policy{}
			if tc.data != "" {
				p.Data = []string{writeFile(t, dataDir, "data"+string(rune('a'+i))+".yaml", tc.data)}
			}
			p, logs := newPolicy(t, p)
			err := exchange(tc.change).protect(context.Background(), p)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
			} else {
				e := asError(t, err)
				if e.Status != tc.status || e.Code != tc.code || !strings.Contains(e.Description, tc.contains) {
					t.Fatalf("got %d %s %q, want %d %s containing %q", e.Status, e.Code, e.Description, tc.status, tc.code, tc.contains)
				}
			}
			if n := logs.FilterMessage("policy decision").Len(); n != 1 {
				t.Fatalf("%d decision log lines, want 1", n)
			}
		})
	}
}

func TestFailsClosed(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, module, outcome string
		status                int
		code                  string
	}{
		{"conflicting outputs", "package dcr\nimport rego.v1\ndecision := true if input.operation\ndecision := false if input.operation\n", outcomeError, 503, "temporarily_unavailable"},
		{"builtin error", "package dcr\nimport rego.v1\ndecision := to_number(\"not a number\") > 0\n", outcomeError, 503, "temporarily_unavailable"},
		{"undefined", "package dcr\nimport rego.v1\ndecision := true if input.operation == \"nothing\"\n", outcomeUndefined, 503, "temporarily_unavailable"},
		{"malformed", "package dcr\nimport rego.v1\ndecision := {\"allowed\": true}\n", outcomeError, 503, "temporarily_unavailable"},
		{"timeout", "package dcr\nimport rego.v1\ndecision := count([x | some x in numbers.range(1, 100000000); x % 7 == 0]) < 0\n", outcomeTimeout, 503, "temporarily_unavailable"},
		{"override not allowed", "package dcr\nimport rego.v1\ndecision := {\"allow\": true, \"metadata\": {\"redirect_uris\": [\"https://evil.example/cb\"]}}\n", outcomeError, 503, "temporarily_unavailable"},
		{"override widens", "package dcr\nimport rego.v1\ndecision := {\"allow\": true, \"metadata\": {\"scope\": \"openid fundsconfirmations\"}}\n", outcomeError, 503, "temporarily_unavailable"},
		{"bare false", "package dcr\nimport rego.v1\ndecision := false\n", outcomeDeny, 400, "invalid_client_metadata"},
		{"unknown error code", "package dcr\nimport rego.v1\ndecision := {\"allow\": false, \"error\": \"access_denied\"}\n", outcomeDeny, 400, "invalid_client_metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mod := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".rego", tc.module)
			p, logs := newPolicy(t, &Policy{Defaults: off(), Modules: []string{mod}, Timeout: caddy.Duration(20 * time.Millisecond)})
			e := asError(t, exchange(nil).protect(context.Background(), p))
			if e.Status != tc.status || e.Code != tc.code {
				t.Fatalf("got %d %s (%v), want %d %s", e.Status, e.Code, e, tc.status, tc.code)
			}
			entries := logs.All()
			last := entries[len(entries)-1]
			if got := last.ContextMap()["outcome"]; got != tc.outcome {
				t.Fatalf("logged outcome %v, want %s", got, tc.outcome)
			}
		})
	}
}

func TestDecisionShapes(t *testing.T) {
	cases := []struct {
		in      any
		allow   bool
		code    string
		wantErr bool
	}{
		{in: true, allow: true},
		{in: false, code: "invalid_client_metadata"},
		{in: map[string]any{"allow": true, "error": "ignored"}, allow: true},
		{in: map[string]any{"allow": false, "error": "invalid_redirect_uri", "error_description": "no"}, code: "invalid_redirect_uri"},
		{in: map[string]any{"allow": false, "error": "server_error"}, code: "invalid_client_metadata"},
		{in: map[string]any{"allow": "yes"}, wantErr: true},
		{in: map[string]any{"allow": true, "metadata": []any{}}, wantErr: true},
		{in: "allow", wantErr: true},
		{in: nil, wantErr: true},
	}
	for _, tc := range cases {
		d, err := ParseDecision(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%v: want an error, got %+v", tc.in, d)
			}
			continue
		}
		if err != nil || d.Allow != tc.allow || d.Error != tc.code {
			t.Errorf("%v: got %+v, %v", tc.in, d, err)
		}
		if !d.Allow && d.ErrorDescription == "" {
			t.Errorf("%v: a denial needs a description", tc.in)
		}
	}
	d, _ := ParseDecision(false)
	if e := d.Rejection(dcr.OpDelete); e.Status != http.StatusForbidden {
		t.Errorf("delete denial status %d, want 403", e.Status)
	}
}

func TestOverridesApplied(t *testing.T) {
	dir := t.TempDir()
	mod := writeFile(t, dir, "narrow.rego", `package dcr.rules.narrow
import rego.v1
metadata := {"scope": "openid accounts", "grant_types": ["authorization_code"]}
`)
	p, logs := newPolicy(t, &Policy{Modules: []string{mod}})
	x := exchange(nil)
	if err := x.protect(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if x.AcceptedMetadata["scope"] != "openid accounts" {
		t.Errorf("scope %v, want the override", x.AcceptedMetadata["scope"])
	}
	if x.Metadata["scope"] != "openid accounts payments" {
		t.Errorf("the profile's metadata became %v: the override belongs in the accepted metadata only", x.Metadata["scope"])
	}
	if g, _ := json.Marshal(x.AcceptedMetadata["grant_types"]); string(g) != `["authorization_code"]` {
		t.Errorf("grant_types %s", g)
	}
	if got := logs.FilterMessage("policy decision").All()[0].ContextMap()["overridden"]; got == nil {
		t.Error("the decision log must name the overridden fields")
	}

	// Overrides that leave an inconsistent combination fail closed.
	if _, err := ApplyOverrides(x.AcceptedMetadata, map[string]any{"grant_types": []any{"client_credentials"}}); err == nil {
		t.Error("response_types without authorization_code must be refused")
	}
}

// TestNoSecretsInLogs checks that neither the decision log nor the debug input line carries
// the software statement or the bearer token.
func TestNoSecretsInLogs(t *testing.T) {
	p, logs := newPolicy(t, &Policy{})
	x := exchange(func(x *call) { x.SoftwareStatement.Claims["org_status"] = "Revoked" })
	_ = x.protect(context.Background(), p)
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	for _, e := range logs.All() {
		out, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(out.Bytes())
	}
	s := buf.String()
	if !strings.Contains(s, `"policy input"`) || !strings.Contains(s, "decision_id") {
		t.Fatalf("expected the input and decision lines, got %s", s)
	}
	for _, secret := range []string{testSSA, testToken} {
		if strings.Contains(s, secret) {
			t.Errorf("a log line carries %q:\n%s", secret, s)
		}
	}
	if !strings.Contains(s, "Bearer "+Masked) {
		t.Errorf("the Authorization header should appear masked:\n%s", s)
	}
}

func TestInputShape(t *testing.T) {
	cert := &x509.Certificate{
		Raw:          []byte("der"),
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: testSoftwareID, OrganizationalUnit: []string{testOrgID}, Organization: []string{"OpenBanking"}, Country: []string{"GB"}},
		Issuer:       pkix.Name{CommonName: "OB Issuing CA"},
		DNSNames:     []string{"tpp.example.com"},
		NotBefore:    time.Unix(1_600_000_000, 0),
		NotAfter:     time.Unix(1_800_000_000, 0),
	}
	x := exchange(func(x *call) {
		x.Operation, x.ClientID = dcr.OpUpdate, "c1"
		x.ClientCert = cert
		x.AccessTokenClaims = map[string]any{"scope": "dcr"}
		x.Existing = &dcr.Registration{ClientID: "c1", SoftwareID: testSoftwareID, RegistrationTokenHash: "hash", ClientSecretHash: "secret-hash", SoftwareStatement: testSSA}
		x.Store = &fakeStore{ids: []string{"c1", "c2"}}
	})
	n, err := CountRegistrations(context.Background(), x.Exchange, dcr.ReadOnly(x.Store))
	if err != nil || n != 1 {
		t.Fatalf("count %d %v, want 1 (the updated registration is left out)", n, err)
	}
	in := Input(x.Exchange, n)
	b, _ := json.Marshal(in)
	s := string(b)
	for _, want := range []string{`"operation":"update"`, `"client_id":"c1"`, `"now":1700000000`, `"registrations_for_software":1`,
		`"org_id":"` + testOrgID + `"`, `"dns":["tpp.example.com"]`, `"not_after":1800000000`, `"directory":"OpenBanking Ltd"`,
		`"access_token":{"claims":{"scope":"dcr"}}`, `"remote_address":"192.0.2.1:1234"`, `"content-type":"application/jose"`} {
		if !strings.Contains(s, want) {
			t.Errorf("input lacks %s:\n%s", want, s)
		}
	}
	for _, secret := range []string{testSSA, testToken, "secret-hash", `"hash"`} {
		if strings.Contains(s, secret) {
			t.Errorf("input carries %s", secret)
		}
	}
	if _, ok := in["registration_request"].(map[string]any)["software_statement"]; ok {
		t.Error("registration_request must not carry the software statement")
	}
}

func TestStoreDownFailsClosed(t *testing.T) {
	p, _ := newPolicy(t, &Policy{})
	x := exchange(func(x *call) { x.Store = &fakeStore{err: errors.New("down")} })
	if e := asError(t, x.protect(context.Background(), p)); e.Status != 503 {
		t.Fatalf("status %d, want 503", e.Status)
	}
}

func TestProvisionErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]*Policy{
		"parse error":       {Modules: []string{writeFile(t, dir, "bad.rego", "package dcr\nthis is not rego")}},
		"no decision rule":  {Defaults: off(), Modules: []string{writeFile(t, dir, "other.rego", "package other\nimport rego.v1\nallow := true\n")}},
		"missing file":      {Modules: []string{filepath.Join(dir, "nope.rego")}},
		"data not a object": {Data: []string{writeFile(t, dir, "list.json", "[1,2]")}},
		"nothing to run":    {Defaults: off()},
		"bad decision ref":  {Decision: "input.x"},
		"missing embedded":  {Modules: []string{"embedded:examples/nope.rego"}},
	}
	for name, p := range cases {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		if err := p.Provision(ctx); err == nil {
			t.Errorf("%s: provisioning succeeded", name)
		}
		cancel()
	}
}

// TestEnginesShared checks that equal policy sets share one compiled engine (a reload reuses
// it) and that a changed module compiles a new one.
func TestEnginesShared(t *testing.T) {
	dir := t.TempDir()
	mod := writeFile(t, dir, "p.rego", "package dcr\nimport rego.v1\ndecision := true\n")
	a, _ := newPolicy(t, &Policy{Defaults: off(), Modules: []string{mod}})
	b, _ := newPolicy(t, &Policy{Defaults: off(), Modules: []string{dir}})
	if a.engine != b.engine {
		t.Fatal("the same content must share one engine")
	}
	writeFile(t, dir, "p.rego", "package dcr\nimport rego.v1\ndecision := false\n")
	c, _ := newPolicy(t, &Policy{Defaults: off(), Modules: []string{mod}})
	if c.engine == a.engine {
		t.Fatal("changed content must compile a new engine")
	}
	if err := exchange(nil).protect(context.Background(), c); err == nil {
		t.Fatal("the new engine must apply the new policy")
	}
	if err := exchange(nil).protect(context.Background(), a); err != nil {
		t.Fatalf("the old engine must keep the old policy: %v", err)
	}
}

func TestEmbeddedExample(t *testing.T) {
	dir := t.TempDir()
	// The example is in package dcr.examples.*, which the default decision does not collect;
	// a one-line module promotes it, as docs/policies.md shows.
	data := writeFile(t, dir, "ceilings.json", `{"dcr":{"config":{"org_scope_ceilings":{"`+testOrgID+`":["openid","accounts"]}}}}`)
	promote := writeFile(t, dir, "use.rego", "package dcr.rules.org_scope_ceilings\nimport rego.v1\nmetadata := data.dcr.examples.org_scope_ceilings.metadata\ndeny := data.dcr.examples.org_scope_ceilings.deny\n")
	p, _ := newPolicy(t, &Policy{Modules: []string{"embedded:examples/org_scope_ceilings.rego", promote}, Data: []string{data}})
	x := exchange(nil)
	if err := x.protect(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if x.AcceptedMetadata["scope"] != "openid accounts" {
		t.Fatalf("scope %v, want narrowed to the ceiling", x.AcceptedMetadata["scope"])
	}
	if !slices.Contains(p.engine.Modules(), "embedded:decision.rego") {
		t.Fatalf("modules %v lack the defaults", p.engine.Modules())
	}
}
