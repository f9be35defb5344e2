package manage

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/secret"
)

func TestAuthorize(t *testing.T) {
	rec := &dcr.Registration{ClientID: "c1"}
	grant, refuse := dcr.Grant(), dcr.Refuse("the certificate is another's")
	for _, tc := range []struct {
		name     string
		existing *dcr.Registration
		token    string
		votes    []dcr.Vote
		reason   string // "" = authorized
	}{
		{"one grant", rec, "t", []dcr.Vote{grant}, ""},
		{"a grant among abstentions", rec, "t", []dcr.Vote{{}, grant, {}}, ""},
		{"a refusal beats a grant", rec, "t", []dcr.Vote{grant, refuse}, "the certificate is another's"},
		{"a refusal before a grant", rec, "t", []dcr.Vote{refuse, grant}, "the certificate is another's"},
		{"the first refusal is the reason", rec, "t", []dcr.Vote{dcr.Refuse("first"), dcr.Refuse("second")}, "first"},
		{"no grant, no token", rec, "", nil, ReasonNoToken},
		{"no grant, a token", rec, "t", []dcr.Vote{{}}, ReasonNotTheToken},
		{"unknown client, even with a grant", nil, "t", []dcr.Vote{grant}, ReasonUnknownClient},
		{"unknown client before a refusal", nil, "t", []dcr.Vote{refuse}, ReasonUnknownClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Authorize(tc.existing, tc.token, tc.votes)
			if tc.reason == "" {
				if e != nil {
					t.Fatalf("refused (%s), want authorized", e.Reason)
				}
				return
			}
			if e == nil {
				t.Fatal("authorized, want refused")
			}
			// Every refusal is the same answer; only the audit reason differs.
			want := dcr.NotAuthorized("")
			if e.Status != http.StatusUnauthorized || e.Code != want.Code || e.Description != want.Description ||
				e.Header.Get("Www-Authenticate") != want.Header.Get("Www-Authenticate") || e.Reason != tc.reason {
				t.Fatalf("got %d %s %q %v reason %q, want the uniform 401 with reason %q", e.Status, e.Code, e.Description, e.Header, e.Reason, tc.reason)
			}
		})
	}
}

func TestRegistrationToken(t *testing.T) {
	tok, _ := secret.NewToken()
	rec := &dcr.Registration{ClientID: "c1", RegistrationTokenHash: secret.Hash(tok)}
	for _, tc := range []struct {
		name  string
		token string
		rec   *dcr.Registration
		want  bool
	}{
		{"the token", tok, rec, true},
		{"another token", tok + "x", rec, false},
		{"the stored hash", rec.RegistrationTokenHash, rec, false},
		{"no token", "", rec, false},
		{"no registration", tok, nil, false},
		{"a registration without a token", tok, &dcr.Registration{ClientID: "c1"}, false},
	} {
		if got := RegistrationToken(tc.token, tc.rec); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRegistrationTokenStep(t *testing.T) {
	tok, _ := secret.NewToken()
	rec := &dcr.Registration{ClientID: "c1", RegistrationTokenHash: secret.Hash(tok)}
	for _, tc := range []struct {
		name string
		x    dcr.Exchange
		want dcr.Vote
	}{
		{"read with the token", dcr.Exchange{Operation: dcr.OpRead, BearerToken: tok, Existing: rec}, dcr.Grant()},
		{"delete with another", dcr.Exchange{Operation: dcr.OpDelete, BearerToken: "other", Existing: rec}, dcr.Vote{}},
		{"unknown client", dcr.Exchange{Operation: dcr.OpRead, BearerToken: tok}, dcr.Vote{}},
		{"register", dcr.Exchange{Operation: dcr.OpRegister, BearerToken: tok, Existing: rec}, dcr.Vote{}},
	} {
		r, err := RegistrationTokenStep{}.Protect(context.Background(), &tc.x, nil)
		if err != nil || r.Vote != tc.want {
			t.Errorf("%s: vote %+v err %v, want %+v", tc.name, r.Vote, err, tc.want)
		}
	}
	if (RegistrationTokenStep{}).Phase() != dcr.PhaseAuthenticate {
		t.Error("the registration access token authenticates")
	}
}

func selfSigned(t *testing.T, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCertificateBound(t *testing.T) {
	a, b := selfSigned(t, pkix.Name{CommonName: "a"}), selfSigned(t, pkix.Name{CommonName: "b"})
	x5t := dcr.CertificateThumbprint
	for _, tc := range []struct {
		name   string
		claims map[string]any
		cert   *x509.Certificate
		want   bool
	}{
		{"bearer token", map[string]any{}, a, true},
		{"bearer token without a certificate", map[string]any{}, nil, true},
		{"bound to the caller's certificate", map[string]any{"cnf": map[string]any{"x5t#S256": x5t(a)}}, a, true},
		{"bound to another certificate", map[string]any{"cnf": map[string]any{"x5t#S256": x5t(a)}}, b, false},
		{"bound, no certificate", map[string]any{"cnf": map[string]any{"x5t#S256": x5t(a)}}, nil, false},
		{"a DPoP key", map[string]any{"cnf": map[string]any{"jkt": "abc"}}, a, false},
		{"certificate and something else", map[string]any{"cnf": map[string]any{"x5t#S256": x5t(a), "jkt": "abc"}}, a, false},
		{"cnf not an object", map[string]any{"cnf": "x"}, a, false},
		{"x5t#S256 not a string", map[string]any{"cnf": map[string]any{"x5t#S256": 1}}, a, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CertificateBound(tc.claims, tc.cert); got != tc.want {
				t.Fatalf("CertificateBound = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClientCredentialsToken(t *testing.T) {
	mine, rotated := selfSigned(t, pkix.Name{CommonName: "sw1"}), selfSigned(t, pkix.Name{CommonName: "sw1"})
	rec := &dcr.Registration{ClientID: "client-a"}
	bound := map[string]any{"cnf": map[string]any{"x5t#S256": dcr.CertificateThumbprint(mine)}}
	for _, tc := range []struct {
		name, client string
		claims       map[string]any
		cert         *x509.Certificate
		reason       string // "" = accepted
	}{
		{"the client's bearer token", "client-a", map[string]any{}, nil, ""},
		{"the client's token bound to the caller", "client-a", bound, mine, ""},
		{"bound to a rotated certificate", "client-a", bound, rotated, "bound to another certificate"},
		{"bound, no certificate", "client-a", bound, nil, "bound to another certificate"},
		{"another client's token", "client-b", map[string]any{}, mine, "issued to another client"},
		{"a prefix of the client", "client-", map[string]any{}, mine, "issued to another client"},
		{"no client", "", map[string]any{}, mine, "names no client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ClientCredentialsToken(tc.client, tc.claims, rec, tc.cert)
			if (tc.reason == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.reason)) {
				t.Fatalf("got %v, want %q", err, tc.reason)
			}
		})
	}
}

func TestCertificateOwner(t *testing.T) {
	cert := func(org, sw string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{OrganizationalUnit: []string{org}, CommonName: sw}}
	}
	rec := &dcr.Registration{ClientID: "c1", OrgID: "org1", SoftwareID: "sw1"}
	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		reason string
	}{
		{"the owner", cert("org1", "sw1"), ""},
		{"no certificate", nil, "no TLS client certificate was presented"},
		{"another org", cert("org2", "sw1"), `org_id "org2"`},
		{"other software of the org", cert("org1", "sw2"), `software_id "sw2"`},
	} {
		err := CertificateOwner(tc.cert, rec)
		if (tc.reason == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.reason)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.reason)
		}
	}
}

func TestMethods(t *testing.T) {
	m := Methods{"read": {MethodRegistrationToken, MethodClientCredentials}, "update": {MethodClientCredentials}}
	for _, tc := range []struct {
		op     dcr.Operation
		method string
		want   bool
	}{
		{dcr.OpRead, MethodRegistrationToken, true},
		{dcr.OpRead, MethodClientCredentials, true},
		{dcr.OpUpdate, MethodRegistrationToken, false},
		{dcr.OpUpdate, MethodClientCredentials, true},
		{dcr.OpDelete, MethodRegistrationToken, true}, // not listed: the registration access token only
		{dcr.OpDelete, MethodClientCredentials, false},
	} {
		if got := m.Accepts(tc.op, tc.method); got != tc.want {
			t.Errorf("%s by %s: %v, want %v", tc.op, tc.method, got, tc.want)
		}
	}
	if !m.AcceptsClientCredentials() || (Methods{"read": {MethodRegistrationToken}}).AcceptsClientCredentials() || (Methods(nil)).AcceptsClientCredentials() {
		t.Error("AcceptsClientCredentials")
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	for bad, want := range map[string]Methods{
		"unknown operation":  {"create": {MethodClientCredentials}},
		"at least one":       {"read": {}},
		"unknown token kind": {"read": {"password"}},
	} {
		if err := want.Validate(); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%v: got %v, want an error containing %q", want, err, bad)
		}
	}
}

func TestUpdateClientID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string]any
		want   string // "" = accepted
	}{
		{"omitted", map[string]any{}, ""},
		{"null", map[string]any{"client_id": nil}, ""},
		{"the path client", map[string]any{"client_id": "c1"}, ""},
		{"another client", map[string]any{"client_id": "c2"}, `client_id "c2" of the request does not match the client_id being updated ("c1")`},
		{"a number", map[string]any{"client_id": 1.0}, "client_id must be a string"},
		{"a long one is cut", map[string]any{"client_id": strings.Repeat("x", 100)}, `"` + strings.Repeat("x", 64) + `..."`},
	} {
		e := UpdateClientID(tc.claims, "c1")
		if tc.want == "" {
			if e != nil {
				t.Errorf("%s: %v", tc.name, e)
			}
			continue
		}
		if e == nil || e.Status != http.StatusBadRequest || e.Code != dcr.CodeInvalidClientMetadata || !strings.Contains(e.Description, tc.want) {
			t.Errorf("%s: got %v, want 400 invalid_client_metadata with %q", tc.name, e, tc.want)
		}
	}
}

func TestUpdateImmutable(t *testing.T) {
	rec := &dcr.Registration{SoftwareID: "sw1", OrgID: "org1"}
	for _, tc := range []struct {
		name string
		ssa  *dcr.SoftwareStatement
		want string
	}{
		{"same software and org", &dcr.SoftwareStatement{SoftwareID: "sw1", OrgID: "org1"}, ""},
		{"other software", &dcr.SoftwareStatement{SoftwareID: "sw2", OrgID: "org1"}, `software_id cannot change on update (registered "sw1", got "sw2")`},
		{"other org", &dcr.SoftwareStatement{SoftwareID: "sw1", OrgID: "org2"}, "org_id cannot change on update"},
	} {
		e := UpdateImmutable(tc.ssa, rec)
		if (tc.want == "") != (e == nil) || (e != nil && (e.Code != dcr.CodeInvalidClientMetadata || e.Description != tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, e, tc.want)
		}
	}
}

func TestUpdateStep(t *testing.T) {
	rec := &dcr.Registration{ClientID: "c1", SoftwareID: "sw1", OrgID: "org1"}
	ssa := &dcr.SoftwareStatement{SoftwareID: "sw1", OrgID: "org1"}
	other := &dcr.SoftwareStatement{SoftwareID: "sw2", OrgID: "org1"}
	for _, tc := range []struct {
		name string
		x    dcr.Exchange
		want string
	}{
		{"an update of the same software", dcr.Exchange{Operation: dcr.OpUpdate, ClientID: "c1", Existing: rec, SoftwareStatement: ssa, RequestClaims: map[string]any{"client_id": "c1"}}, ""},
		{"another software", dcr.Exchange{Operation: dcr.OpUpdate, ClientID: "c1", Existing: rec, SoftwareStatement: other, RequestClaims: map[string]any{}}, "software_id cannot change"},
		{"another client in the body", dcr.Exchange{Operation: dcr.OpUpdate, ClientID: "c1", Existing: rec, SoftwareStatement: ssa, RequestClaims: map[string]any{"client_id": "c2"}}, "does not match"},
		{"unsigned: the unverified claims", dcr.Exchange{Operation: dcr.OpUpdate, ClientID: "c1", Existing: rec, SoftwareStatement: ssa, UnverifiedClaims: map[string]any{"client_id": "c2"}}, "does not match"},
		{"register is not an update", dcr.Exchange{Operation: dcr.OpRegister, SoftwareStatement: other, RequestClaims: map[string]any{"client_id": "c2"}}, ""},
	} {
		r, err := UpdateStep{}.Protect(context.Background(), &tc.x, nil)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		if r.Metadata != nil || r.Vote != (dcr.Vote{}) {
			t.Errorf("%s: the update rules return nothing but a rejection, got %+v", tc.name, r)
		}
	}
}
