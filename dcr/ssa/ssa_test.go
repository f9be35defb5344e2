package ssa

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jwks"
	"github.com/dcrgate/dcrgate/internal/sandbox"
)

var sb *sandbox.Sandbox

// TestMain makes one sandbox for the package: RSA key generation dominates otherwise.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dcrgate-dcr-ssa-")
	if err != nil {
		panic(err)
	}
	if sb, err = sandbox.Init(sandbox.Options{Dir: dir, TPPs: 2}); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const jwksHost = "localhost:8443"

func directoryKeys(t *testing.T) *jwks.Static {
	t.Helper()
	set, err := sb.DirectoryJWKS()
	if err != nil {
		t.Fatal(err)
	}
	return jwks.NewStatic(set)
}

func verifier(t *testing.T, change func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Directories: []Directory{{Issuer: sandbox.DirectoryIssuer, JWKSHosts: []string{jwksHost}, Keys: directoryKeys(t)}}}
	if change != nil {
		change(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signed returns TPP 1's SSA with claims changed (a nil value deletes the claim).
func signed(t *testing.T, change map[string]any) string {
	t.Helper()
	claims := sb.SSAClaims(sb.TPP(1))
	for k, v := range change {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	s, err := sb.SignSSA(claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func transportCert(t *testing.T, index int) *x509.Certificate {
	t.Helper()
	certs, err := sandbox.ReadCertificates(sb.TPP(index).TransportCert)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func wantError(t *testing.T, derr *dcr.Error, status int, code, contains string) {
	t.Helper()
	if derr == nil {
		t.Fatalf("accepted, want %d %s with %q", status, code, contains)
	}
	if derr.Status != status || derr.Code != code || !strings.Contains(derr.Description, contains) {
		t.Fatalf("got %d %s %q, want %d %s with %q", derr.Status, derr.Code, derr.Description, status, code, contains)
	}
}

// TestVerify runs every stage and rule through Verify with signed sandbox SSAs.
func TestVerify(t *testing.T) {
	v := verifier(t, nil)
	now := time.Now().Unix()
	cases := []struct {
		name string
		raw  any // the software_statement claim; nil = absent
		code string
		want string
	}{
		{"good", signed(t, nil), "", ""},
		{"absent", nil, dcr.CodeInvalidSoftwareStatement, "is required"},
		{"a number", 42, dcr.CodeInvalidSoftwareStatement, "must be a compact JWS"},
		{"empty", "", dcr.CodeInvalidSoftwareStatement, "must be a compact JWS"},
		{"not a JWS", "abc", dcr.CodeInvalidSoftwareStatement, "not a well-formed"},
		{"no iss", signed(t, map[string]any{"iss": nil}), dcr.CodeInvalidSoftwareStatement, "no iss"},
		{"iss a number", signed(t, map[string]any{"iss": 7}), dcr.CodeInvalidSoftwareStatement, "no iss"},
		{"unknown issuer", signed(t, map[string]any{"iss": "Other Directory"}), dcr.CodeUnapprovedSoftwareStatement, "not a trusted directory"},
		{"org_status Revoked is the policy's to refuse", signed(t, map[string]any{"org_status": "Revoked"}), "", ""},
		{"org_status missing", signed(t, map[string]any{"org_status": nil}), dcr.CodeInvalidSoftwareStatement, "org_status"},
		{"software_mode Live is the policy's to judge", signed(t, map[string]any{"software_mode": "Live"}), "", ""},
		{"software_mode missing", signed(t, map[string]any{"software_mode": nil}), dcr.CodeInvalidSoftwareStatement, "software_mode"},
		{"software_id missing", signed(t, map[string]any{"software_id": nil}), dcr.CodeInvalidSoftwareStatement, "software_id"},
		{"org_id a number", signed(t, map[string]any{"org_id": 5}), dcr.CodeInvalidSoftwareStatement, "org_id"},
		{"software_roles empty", signed(t, map[string]any{"software_roles": []string{}}), dcr.CodeInvalidSoftwareStatement, "software_roles"},
		{"software_roles a string", signed(t, map[string]any{"software_roles": "AISP"}), dcr.CodeInvalidSoftwareStatement, "software_roles"},
		{"redirect uris a string", signed(t, map[string]any{"software_redirect_uris": "https://x"}), dcr.CodeInvalidSoftwareStatement, "software_redirect_uris"},
		{"jwks endpoint missing", signed(t, map[string]any{"software_jwks_endpoint": nil}), dcr.CodeInvalidSoftwareStatement, "software_jwks_endpoint"},
		{"jwks endpoint on another host", signed(t, map[string]any{"software_jwks_endpoint": "https://evil.example/jwks"}), dcr.CodeInvalidSoftwareStatement, "not allowed"},
		{"jwks endpoint over http", signed(t, map[string]any{"software_jwks_endpoint": "http://localhost:8443/jwks"}), dcr.CodeInvalidSoftwareStatement, "not allowed"},
		{"iat missing", signed(t, map[string]any{"iat": nil}), dcr.CodeInvalidSoftwareStatement, "iat"},
		{"iat in the future", signed(t, map[string]any{"iat": now + 3600}), dcr.CodeInvalidSoftwareStatement, "future"},
		{"expired", signed(t, map[string]any{"exp": now - 3600}), dcr.CodeInvalidSoftwareStatement, "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := map[string]any{}
			if tc.raw != nil {
				claims[Claim] = tc.raw
			}
			got, derr := v.Verify(context.Background(), Input{RequestClaims: claims, Now: time.Now(), ClientCert: transportCert(t, 1)})
			if tc.code == "" {
				if derr != nil {
					t.Fatalf("rejected: %v", derr)
				}
				tpp := sb.TPP(1)
				if got == nil || got.Raw != tc.raw || got.SoftwareID != tpp.SoftwareID || got.OrgID != tpp.OrgID ||
					got.JWKSURI != tpp.JWKSURL || len(got.Roles) != len(tpp.Roles) || len(got.RedirectURIs) != len(tpp.RedirectURIs) ||
					got.Directory != sandbox.DirectoryIssuer || len(got.AllowedHosts) != 1 || got.AllowedHosts[0] != jwksHost ||
					got.Claims["org_name"] != tpp.OrgName {
					t.Fatalf("verified SSA %+v", got)
				}
				return
			}
			if got != nil {
				t.Fatal("a rejected SSA must not be returned")
			}
			wantError(t, derr, http.StatusBadRequest, tc.code, tc.want)
		})
	}
}

// TestVerifySignature: a payload swapped under another signature, a key the directory does
// not publish, and an algorithm outside the allow-list are refused; keys that cannot be
// fetched are a 503.
func TestVerifySignature(t *testing.T) {
	good := signed(t, nil)
	parts := strings.Split(good, ".")
	other := strings.Split(signed(t, map[string]any{"software_roles": []string{"AISP", "PISP", "CBPII", "ASPSP"}}), ".")
	forged := parts[0] + "." + other[1] + "." + parts[2]
	in := func(raw string) Input {
		return Input{RequestClaims: map[string]any{Claim: raw}, Now: time.Now(), ClientCert: transportCert(t, 1)}
	}
	_, derr := verifier(t, nil).Verify(context.Background(), in(forged))
	wantError(t, derr, 400, dcr.CodeInvalidSoftwareStatement, "signature")

	// The sandbox signs PS256: a directory that allows only ES256 refuses it.
	_, derr = verifier(t, func(c *Config) { c.Algorithms = []string{"ES256"} }).Verify(context.Background(), in(good))
	wantError(t, derr, 400, dcr.CodeInvalidSoftwareStatement, "signature")

	_, derr = verifier(t, func(c *Config) { c.Directories[0].Keys = jwks.NewStatic(jwk.NewSet()) }).Verify(context.Background(), in(good))
	wantError(t, derr, 400, dcr.CodeInvalidSoftwareStatement, "signature")

	_, derr = verifier(t, func(c *Config) { c.Directories[0].Keys = downKeys{} }).Verify(context.Background(), in(good))
	wantError(t, derr, http.StatusServiceUnavailable, dcr.CodeTemporarilyUnavailable, "cannot be fetched")
}

type downKeys struct{}

func (downKeys) Key(context.Context, string) (jwk.Key, error) {
	return nil, errors.New("connection refused")
}

// TestRules runs each claim rule on its own, on claims as the strict JSON decoder yields them,
// without any signature: every rule's accept and refuse cases.
func TestRules(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	num := func(d time.Duration) json.Number { return json.Number(fmt.Sprint(now.Add(d).Unix())) }
	dir := &Directory{Issuer: "Dir", JWKSHosts: []string{"keys.example.com", "*.jwks.example.com"}}
	modes := &Directory{Issuer: "Dir", JWKSHosts: []string{"keys.example.com"}, SoftwareModes: []string{"Live"}}
	embedding := &Directory{Issuer: "Dir", JWKSHosts: []string{"keys.example.com"}, EmbeddedJWKS: true}
	tppKeys := tppJWKS(t)
	tooMany := map[string]any{"keys": func() []any {
		keys := make([]any, MaxEmbeddedKeys+1)
		for i := range keys {
			k := maps.Clone(tppKeys["keys"].([]any)[0].(map[string]any))
			k["kid"] = fmt.Sprint("k", i)
			keys[i] = k
		}
		return keys
	}()}
	private := map[string]any{"keys": []any{map[string]any{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}}}
	cfg := Config{MaxAge: 24 * time.Hour}
	cfg.SetDefaults()
	cases := []struct {
		rule   string
		claims map[string]any
		dir    *Directory
		code   string // "" accepted
		want   string
	}{
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(0)}, nil, "", ""},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-time.Hour), "exp": num(time.Hour)}, nil, "", ""},
		{"iat, exp, nbf, max_age", map[string]any{}, nil, dcr.CodeInvalidSoftwareStatement, "iat is required"},
		{"iat, exp, nbf, max_age", map[string]any{"iat": "yesterday"}, nil, dcr.CodeInvalidSoftwareStatement, "iat is required and must be a NumericDate"},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(DefaultLeeway)}, nil, "", ""},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(DefaultLeeway + time.Second)}, nil, dcr.CodeInvalidSoftwareStatement, "software_statement iat is in the future"},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-24*time.Hour - DefaultLeeway)}, nil, "", ""},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-24*time.Hour - DefaultLeeway - time.Second)}, nil, dcr.CodeInvalidSoftwareStatement, "more than 24h0m0s ago"},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-time.Hour), "exp": "soon"}, nil, dcr.CodeInvalidSoftwareStatement, "exp must be a NumericDate"},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-time.Hour), "exp": num(-DefaultLeeway)}, nil, dcr.CodeInvalidSoftwareStatement, "the software_statement has expired"},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-time.Hour), "exp": num(-DefaultLeeway + time.Second)}, nil, "", ""},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-time.Hour), "nbf": num(DefaultLeeway + time.Second)}, nil, dcr.CodeInvalidSoftwareStatement, "the software_statement is not valid yet (nbf)"},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-time.Hour), "nbf": num(DefaultLeeway)}, nil, "", ""},
		{"iat, exp, nbf, max_age", map[string]any{"iat": num(-time.Hour), "nbf": true}, nil, dcr.CodeInvalidSoftwareStatement, "nbf must be a NumericDate"},
		{"software_id", map[string]any{"software_id": "sw"}, nil, "", ""},
		{"software_id", map[string]any{"software_id": ""}, nil, dcr.CodeInvalidSoftwareStatement, "software_id is required"},
		{"software_id", map[string]any{"software_id": []any{"sw"}}, nil, dcr.CodeInvalidSoftwareStatement, "software_id is required"},
		{"org_id", map[string]any{"org_id": "org"}, nil, "", ""},
		{"org_id", map[string]any{}, nil, dcr.CodeInvalidSoftwareStatement, "org_id is required"},
		{"software_roles", map[string]any{"software_roles": []any{"AISP"}}, nil, "", ""},
		{"software_roles", map[string]any{"software_roles": []any{"AISP", 3}}, nil, dcr.CodeInvalidSoftwareStatement, "software_roles"},
		{"software_roles", map[string]any{}, nil, dcr.CodeInvalidSoftwareStatement, "software_roles is required"},
		{"software_redirect_uris", map[string]any{}, nil, "", ""},
		{"software_redirect_uris", map[string]any{"software_redirect_uris": []any{"https://tpp.example.com/cb"}}, nil, "", ""},
		{"software_redirect_uris", map[string]any{"software_redirect_uris": map[string]any{}}, nil, dcr.CodeInvalidSoftwareStatement, "software_redirect_uris"},
		{"software_jwks_endpoint", map[string]any{"software_jwks_endpoint": "https://keys.example.com/tpp.jwks"}, nil, "", ""},
		{"software_jwks_endpoint", map[string]any{"software_jwks_endpoint": "https://a.jwks.example.com/tpp.jwks"}, nil, "", ""},
		{"software_jwks_endpoint", map[string]any{"software_jwks_endpoint": "https://jwks.example.com/tpp.jwks"}, nil, dcr.CodeInvalidSoftwareStatement, `not allowed for directory "Dir"`},
		{"software_jwks_endpoint", map[string]any{"software_jwks_endpoint": "https://keys.example.com:8443/tpp.jwks"}, nil, dcr.CodeInvalidSoftwareStatement, "not allowed"},
		{"software_jwks_endpoint", map[string]any{"software_jwks_endpoint": "https://user@keys.example.com/tpp.jwks"}, nil, dcr.CodeInvalidSoftwareStatement, "not allowed"},
		{"software_jwks_endpoint", map[string]any{}, nil, dcr.CodeInvalidSoftwareStatement, "software_jwks_endpoint is required"},
		{"software_jwks_endpoint", map[string]any{"software_jwks": tppKeys}, nil, dcr.CodeInvalidSoftwareStatement, `directory "Dir" does not allow an embedded software_jwks`},
		{"software_jwks_endpoint", map[string]any{"software_jwks": tppKeys}, embedding, "", ""},
		{"software_jwks_endpoint", map[string]any{"software_jwks": tppKeys, "software_jwks_endpoint": "https://evil.example.com/j"}, embedding, dcr.CodeInvalidSoftwareStatement, "software_jwks_endpoint is not allowed"},
		{"software_jwks_endpoint", map[string]any{"software_jwks": "https://keys.example.com/j"}, embedding, dcr.CodeInvalidSoftwareStatement, "software_jwks is not a JSON Web Key Set"},
		{"software_jwks_endpoint", map[string]any{"software_jwks": map[string]any{"keys": []any{}}}, embedding, dcr.CodeInvalidSoftwareStatement, "software_jwks is not usable"},
		{"software_jwks_endpoint", map[string]any{"software_jwks": private}, embedding, dcr.CodeInvalidSoftwareStatement, "symmetric"},
		{"software_jwks_endpoint", map[string]any{"software_jwks": tooMany}, embedding, dcr.CodeInvalidSoftwareStatement, fmt.Sprintf("holds %d keys, the limit is %d", MaxEmbeddedKeys+1, MaxEmbeddedKeys)},
		{"software_jwks_endpoint", map[string]any{}, embedding, dcr.CodeInvalidSoftwareStatement, "software_jwks_endpoint is required"},
		{"revoked key sets", map[string]any{}, nil, "", ""},
		{"revoked key sets", map[string]any{"software_jwks_revoked_endpoint": "https://keys.example.com/r", "org_jwks_revoked_endpoint": "https://a.jwks.example.com/o"}, nil, "", ""},
		{"revoked key sets", map[string]any{"software_jwks_revoked_endpoint": "https://elsewhere.example.com/r"}, nil, dcr.CodeInvalidSoftwareStatement, `software_jwks_revoked_endpoint is not allowed for directory "Dir"`},
		{"revoked key sets", map[string]any{"org_jwks_revoked_endpoint": "http://keys.example.com/o"}, nil, dcr.CodeInvalidSoftwareStatement, "org_jwks_revoked_endpoint is not allowed"},
		{"revoked key sets", map[string]any{"org_jwks_revoked_endpoint": 7}, nil, dcr.CodeInvalidSoftwareStatement, "org_jwks_revoked_endpoint is required and must be a non-empty string"},
		{"org_status", map[string]any{"org_status": "Active"}, nil, "", ""},
		{"org_status", map[string]any{"org_status": "Suspended"}, nil, "", ""},
		{"org_status", map[string]any{"org_status": true}, nil, dcr.CodeInvalidSoftwareStatement, "org_status is required"},
		{"org_status", map[string]any{}, nil, dcr.CodeInvalidSoftwareStatement, "org_status is required"},
		{"software_mode", map[string]any{"software_mode": "Test"}, nil, "", ""},
		{"software_mode", map[string]any{"software_mode": ""}, nil, dcr.CodeInvalidSoftwareStatement, "software_mode is required"},
		{"software_mode", map[string]any{"software_mode": "Live"}, modes, "", ""},
		{"software_mode", map[string]any{"software_mode": "Test"}, modes, dcr.CodeUnapprovedSoftwareStatement, `software_mode "Test" is not accepted for directory "Dir" (accepted: Live)`},
	}
	covered := map[string]bool{}
	for i, tc := range cases {
		r := rule(t, tc.rule)
		covered[tc.rule] = true
		t.Run(fmt.Sprintf("%d %s", i, tc.rule), func(t *testing.T) {
			d := tc.dir
			if d == nil {
				d = dir
			}
			out := &dcr.SoftwareStatement{}
			derr := r.Check(&cfg, Statement{Claims: tc.claims, Directory: d, Now: now}, out)
			if tc.code == "" {
				if derr != nil {
					t.Fatalf("refused %v: %v", tc.claims, derr)
				}
				return
			}
			wantError(t, derr, http.StatusBadRequest, tc.code, tc.want)
		})
	}
	covered["certificate_binding"] = true // TestCertificateBinding
	for _, r := range Rules {
		if !covered[r.Name] {
			t.Errorf("rule %q has no case", r.Name)
		}
	}
}

// tppJWKS is TPP 1's published key set, as a decoded JSON claim.
func tppJWKS(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(sb.TPP(1).JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	var set map[string]any
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// TestRulesFillKeys: the key rules fill the embedded key set and the revoked key sets.
func TestRulesFillKeys(t *testing.T) {
	claims := map[string]any{"software_jwks": tppJWKS(t),
		"software_jwks_revoked_endpoint": "https://keys.example.com/sw.revoked", "org_jwks_revoked_endpoint": "https://keys.example.com/org.revoked"}
	out := &dcr.SoftwareStatement{}
	st := Statement{Claims: claims, Directory: &Directory{Issuer: "Dir", JWKSHosts: []string{"keys.example.com"}, EmbeddedJWKS: true}}
	for _, name := range []string{"software_jwks_endpoint", "revoked key sets"} {
		if derr := rule(t, name).Check(&Config{}, st, out); derr != nil {
			t.Fatalf("%s: %v", name, derr)
		}
	}
	if out.JWKSURI != "" || out.EmbeddedKeys == nil {
		t.Fatalf("embedded keys not filled: %+v", out)
	}
	if key, err := out.EmbeddedKeys.Key(context.Background(), sb.TPP(1).SigningKID); err != nil || key == nil {
		t.Fatalf("embedded signing key: %v", err)
	}
	want := []dcr.RevokedKeySet{{Claim: dcr.ClaimSoftwareJWKSRevoked, URL: "https://keys.example.com/sw.revoked"}, {Claim: dcr.ClaimOrgJWKSRevoked, URL: "https://keys.example.com/org.revoked"}}
	if !slices.Equal(out.RevokedKeySets, want) {
		t.Fatalf("revoked key sets = %+v", out.RevokedKeySets)
	}
}

// TestRulesFill: the rules fill the verified SSA from the claims.
func TestRulesFill(t *testing.T) {
	claims := map[string]any{"software_id": "sw", "org_id": "org", "software_roles": []any{"AISP", "PISP"},
		"software_redirect_uris": []any{"https://tpp.example.com/cb"}, "software_jwks_endpoint": "https://keys.example.com/j"}
	out := &dcr.SoftwareStatement{}
	st := Statement{Claims: claims, Directory: &Directory{Issuer: "Dir", JWKSHosts: []string{"keys.example.com"}}}
	for _, name := range []string{"software_id", "org_id", "software_roles", "software_redirect_uris", "software_jwks_endpoint"} {
		if derr := rule(t, name).Check(&Config{}, st, out); derr != nil {
			t.Fatalf("%s: %v", name, derr)
		}
	}
	if out.SoftwareID != "sw" || out.OrgID != "org" || strings.Join(out.Roles, " ") != "AISP PISP" ||
		len(out.RedirectURIs) != 1 || out.JWKSURI != "https://keys.example.com/j" {
		t.Fatalf("filled %+v", out)
	}
}

func rule(t *testing.T, name string) Rule {
	t.Helper()
	for _, r := range Rules {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no rule %q", name)
	return Rule{}
}

// TestCertificateBinding: each binding mode against the TPP's own certificate, another TPP's,
// an eIDAS-style one, one of the same organisation for other software, and none.
func TestCertificateBinding(t *testing.T) {
	tpp := sb.TPP(1)
	own, other := transportCert(t, 1), transportCert(t, 2)
	sameOrgOtherSoftware := &x509.Certificate{Subject: pkix.Name{OrganizationalUnit: []string{tpp.OrgID}, CommonName: "another-software"}}
	eidas := &x509.Certificate{Subject: pkix.Name{CommonName: tpp.SoftwareID, Names: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "PSDGB-OB-" + tpp.OrgID}}}}
	check := rule(t, "certificate_binding").Check
	for _, tc := range []struct {
		binding string
		cert    *x509.Certificate
		want    string // "" accepted
	}{
		{"", own, ""},
		{"", eidas, ""},
		{"", other, "org_id"},
		{"", nil, "certificate is required"},
		{"", sameOrgOtherSoftware, "software_id"},
		{BindOrgAndSoftware, sameOrgOtherSoftware, "software_id"},
		{BindOrg, sameOrgOtherSoftware, ""},
		{BindOrg, other, "org_id"},
		{BindOrg, nil, "certificate is required"},
		{BindNone, other, ""},
		{BindNone, nil, ""},
	} {
		cfg := Config{CertificateBinding: tc.binding}
		cfg.SetDefaults()
		out := &dcr.SoftwareStatement{OrgID: tpp.OrgID, SoftwareID: tpp.SoftwareID}
		derr := check(&cfg, Statement{ClientCert: tc.cert}, out)
		if tc.want == "" {
			if derr != nil {
				t.Errorf("binding %q cert %v: %v", tc.binding, tc.cert != nil, derr)
			}
			continue
		}
		if derr == nil || derr.Code != dcr.CodeInvalidSoftwareStatement || !strings.Contains(derr.Description, tc.want) {
			t.Errorf("binding %q cert %v: got %v, want invalid_software_statement with %q", tc.binding, tc.cert != nil, derr, tc.want)
		}
	}

	// Through Verify: TPP 2's certificate cannot present TPP 1's SSA.
	_, derr := verifier(t, nil).Verify(context.Background(), Input{RequestClaims: map[string]any{Claim: signed(t, nil)}, Now: time.Now(), ClientCert: other})
	wantError(t, derr, 400, dcr.CodeInvalidSoftwareStatement, "does not match the TLS client certificate")
}

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	if strings.Join(c.Algorithms, " ") != "PS256 ES256" || c.Leeway != 30*time.Second || c.CertificateBinding != BindOrgAndSoftware || c.MaxAge != 0 {
		t.Fatalf("defaults %+v", c)
	}
	set := Config{Algorithms: []string{"ES256"}, Leeway: time.Second, CertificateBinding: BindNone, MaxAge: time.Hour}
	kept := set
	set.SetDefaults()
	if fmt.Sprint(set) != fmt.Sprint(kept) {
		t.Fatalf("SetDefaults changed set values: %+v", set)
	}

	good := Directory{Issuer: "x", JWKSHosts: []string{"h"}}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no directory", Config{}, "at least one directory"},
		{"no issuer", Config{Directories: []Directory{{JWKSHosts: []string{"h"}}}}, "no issuer"},
		{"no jwks hosts", Config{Directories: []Directory{{Issuer: "x"}}}, "jwks_hosts is required"},
		{"empty jwks host", Config{Directories: []Directory{{Issuer: "x", JWKSHosts: []string{""}}}}, "empty entry"},
		{"empty software mode", Config{Directories: []Directory{{Issuer: "x", JWKSHosts: []string{"h"}, SoftwareModes: []string{""}}}}, "software_modes"},
		{"duplicate issuer", Config{Directories: []Directory{good, good}}, "configured twice"},
		{"bad binding", Config{Directories: []Directory{good}, CertificateBinding: "maybe"}, "certificate_binding"},
		{"alg none", Config{Directories: []Directory{good}, Algorithms: []string{"none"}}, "algorithms"},
		{"alg HS256", Config{Directories: []Directory{good}, Algorithms: []string{"HS256"}}, "algorithms"},
		{"negative max_age", Config{Directories: []Directory{good}, MaxAge: -time.Second}, "max_age"},
		{"negative leeway", Config{Directories: []Directory{good}, Leeway: -time.Second}, "leeway"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
	if err := (&Config{Directories: []Directory{good}}).Validate(); err != nil {
		t.Errorf("a minimal config: %v", err)
	}
	if _, err := New(Config{Directories: []Directory{good}}); err == nil || !strings.Contains(err.Error(), "no keys") {
		t.Errorf("New without keys: %v", err)
	}
}
