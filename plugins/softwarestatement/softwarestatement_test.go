package softwarestatement

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/keyset"
	"github.com/dcrgate/dcrgate/internal/sandbox"
)

var sb *sandbox.Sandbox

// TestMain makes one sandbox for the package: RSA key generation dominates otherwise.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dcrgate-ssa-")
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

func provisioned(t *testing.T, binding string) *SoftwareStatement {
	t.Helper()
	return provisionedWith(t, func(s *SoftwareStatement) {
		s.CertificateBinding = binding
		s.Directories[0].SoftwareModes = []string{"Test"}
	})
}

// provisionedWith provisions the sandbox directory with change applied to the config.
func provisionedWith(t *testing.T, change func(*SoftwareStatement)) *SoftwareStatement {
	t.Helper()
	s := &SoftwareStatement{
		Directories: []Directory{{
			Issuer:    sandbox.DirectoryIssuer,
			Keys:      keyset.Config{File: sb.Files.DirectoryJWKS},
			JWKSHosts: []string{"localhost:8443"},
		}},
	}
	change(s)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := s.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Cleanup() })
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

func signedSSA(t *testing.T, change map[string]any) string {
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

func TestProtect(t *testing.T) {
	s := provisioned(t, "")
	now := time.Now().Unix()
	cases := []struct {
		name string
		raw  any // the software_statement claim; nil = absent
		code string
		want string
	}{
		{"good", signedSSA(t, nil), "", ""},
		{"absent", nil, dcr.CodeInvalidSoftwareStatement, "is required"},
		{"a number", 42, dcr.CodeInvalidSoftwareStatement, "must be a compact JWS"},
		{"not a JWS", "abc", dcr.CodeInvalidSoftwareStatement, "not a well-formed"},
		{"no iss", signedSSA(t, map[string]any{"iss": nil}), dcr.CodeInvalidSoftwareStatement, "no iss"},
		{"unknown issuer", signedSSA(t, map[string]any{"iss": "Other Directory"}), dcr.CodeUnapprovedSoftwareStatement, "not a trusted directory"},
		{"org_status Revoked: the policy's rule, not this one", signedSSA(t, map[string]any{"org_status": "Revoked"}), "", ""},
		{"org_status missing", signedSSA(t, map[string]any{"org_status": nil}), dcr.CodeInvalidSoftwareStatement, "org_status"},
		{"software_mode Live refused by the deprecated software_modes", signedSSA(t, map[string]any{"software_mode": "Live"}), dcr.CodeUnapprovedSoftwareStatement, "software_mode"},
		{"software_id missing", signedSSA(t, map[string]any{"software_id": nil}), dcr.CodeInvalidSoftwareStatement, "software_id"},
		{"org_id a number", signedSSA(t, map[string]any{"org_id": 5}), dcr.CodeInvalidSoftwareStatement, "org_id"},
		{"software_roles empty", signedSSA(t, map[string]any{"software_roles": []string{}}), dcr.CodeInvalidSoftwareStatement, "software_roles"},
		{"software_roles a string", signedSSA(t, map[string]any{"software_roles": "AISP"}), dcr.CodeInvalidSoftwareStatement, "software_roles"},
		{"redirect uris a string", signedSSA(t, map[string]any{"software_redirect_uris": "https://x"}), dcr.CodeInvalidSoftwareStatement, "software_redirect_uris"},
		{"jwks endpoint missing", signedSSA(t, map[string]any{"software_jwks_endpoint": nil}), dcr.CodeInvalidSoftwareStatement, "software_jwks_endpoint"},
		{"jwks endpoint on another host", signedSSA(t, map[string]any{"software_jwks_endpoint": "https://evil.example/jwks"}), dcr.CodeInvalidSoftwareStatement, "not allowed"},
		{"jwks endpoint over http", signedSSA(t, map[string]any{"software_jwks_endpoint": "http://localhost:8443/jwks"}), dcr.CodeInvalidSoftwareStatement, "not allowed"},
		{"iat missing", signedSSA(t, map[string]any{"iat": nil}), dcr.CodeInvalidSoftwareStatement, "iat"},
		{"iat in the future", signedSSA(t, map[string]any{"iat": now + 3600}), dcr.CodeInvalidSoftwareStatement, "future"},
		{"expired", signedSSA(t, map[string]any{"exp": now - 3600}), dcr.CodeInvalidSoftwareStatement, "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := map[string]any{}
			if tc.raw != nil {
				claims["software_statement"] = tc.raw
			}
			x := &dcr.Exchange{Operation: dcr.OpRegister, Now: time.Now(), UnverifiedClaims: claims, ClientCert: transportCert(t, 1)}
			res, err := s.Protect(context.Background(), x, nil)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				got := res.SoftwareStatement
				if got == nil || got.SoftwareID != sb.TPP(1).SoftwareID || got.OrgID != sb.TPP(1).OrgID ||
					got.JWKSURI != sb.TPP(1).JWKSURL || len(got.Roles) != 3 || len(got.RedirectURIs) == 0 || got.Directory != sandbox.DirectoryIssuer {
					t.Fatalf("verified SSA %+v", got)
				}
				return
			}
			var e *dcr.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != tc.code || !strings.Contains(e.Description, tc.want) {
				t.Fatalf("got %v, want %s with %q", err, tc.code, tc.want)
			}
			if res.SoftwareStatement != nil {
				t.Fatal("a rejected SSA must not be returned")
			}
		})
	}
}

func TestForgedSignature(t *testing.T) {
	s := provisioned(t, "")
	good := signedSSA(t, nil)
	parts := strings.Split(good, ".")
	other := strings.Split(signedSSA(t, map[string]any{"software_roles": []string{"AISP", "PISP", "CBPII", "ASPSP"}}), ".")
	forged := parts[0] + "." + other[1] + "." + parts[2]
	x := &dcr.Exchange{Operation: dcr.OpRegister, Now: time.Now(), UnverifiedClaims: map[string]any{"software_statement": forged}, ClientCert: transportCert(t, 1)}
	var e *dcr.Error
	if _, err := s.Protect(context.Background(), x, nil); !errors.As(err, &e) || e.Code != dcr.CodeInvalidSoftwareStatement || !strings.Contains(e.Description, "signature") {
		t.Fatalf("forged SSA: %v", err)
	}
}

func TestCertificateBinding(t *testing.T) {
	raw := signedSSA(t, nil)
	run := func(binding string, cert *x509.Certificate) error {
		s := provisioned(t, binding)
		x := &dcr.Exchange{Operation: dcr.OpRegister, Now: time.Now(), UnverifiedClaims: map[string]any{"software_statement": raw}, ClientCert: cert}
		_, err := s.Protect(context.Background(), x, nil)
		return err
	}
	own, other := transportCert(t, 1), transportCert(t, 2)
	sameOrgOtherSoftware := &x509.Certificate{Subject: pkix.Name{OrganizationalUnit: []string{sb.TPP(1).OrgID}, CommonName: "another-software"}}
	eidas := &x509.Certificate{Subject: pkix.Name{CommonName: sb.TPP(1).SoftwareID, Names: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "PSDGB-OB-" + sb.TPP(1).OrgID}}}}

	for _, tc := range []struct {
		binding string
		cert    *x509.Certificate
		ok      bool
	}{
		{"", own, true},
		{"", eidas, true},
		{"", other, false},
		{"", nil, false},
		{"", sameOrgOtherSoftware, false},
		{BindOrg, sameOrgOtherSoftware, true},
		{BindOrg, other, false},
		{BindNone, other, true},
		{BindNone, nil, true},
	} {
		err := run(tc.binding, tc.cert)
		if (err == nil) != tc.ok {
			t.Errorf("binding %q cert %v: got %v, want ok=%v", tc.binding, tc.cert != nil, err, tc.ok)
		}
	}
}

func TestValidate(t *testing.T) {
	for name, s := range map[string]*SoftwareStatement{
		"no directory":     {},
		"no issuer":        {Directories: []Directory{{JWKSHosts: []string{"x"}}}},
		"no jwks hosts":    {Directories: []Directory{{Issuer: "x"}}},
		"duplicate issuer": {Directories: []Directory{{Issuer: "x", JWKSHosts: []string{"h"}}, {Issuer: "x", JWKSHosts: []string{"h"}}}},
		"bad binding":      {Directories: []Directory{{Issuer: "x", JWKSHosts: []string{"h"}}}, CertificateBinding: "maybe"},
	} {
		if s.CertificateBinding == "" && name != "bad binding" {
			s.CertificateBinding = BindOrgAndSoftware
		}
		if err := s.Validate(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// TestSoftwareModeIsThePolicys: without the deprecated software_modes, every software_mode
// passes this protection (the registration policy decides, policies/software_mode.rego), and
// the defaults the core fills are what the module reports.
func TestSoftwareModeIsThePolicys(t *testing.T) {
	s := provisionedWith(t, func(*SoftwareStatement) {})
	for _, mode := range []string{"Test", "Live", "Sandbox"} {
		x := &dcr.Exchange{Operation: dcr.OpRegister, Now: time.Now(), ClientCert: transportCert(t, 1),
			UnverifiedClaims: map[string]any{"software_statement": signedSSA(t, map[string]any{"software_mode": mode})}}
		if res, err := s.Protect(context.Background(), x, nil); err != nil || res.SoftwareStatement == nil {
			t.Errorf("software_mode %s: %v", mode, err)
		}
	}
	if strings.Join(s.Algorithms, " ") != "PS256 ES256" || s.Leeway != caddy.Duration(30*time.Second) || s.CertificateBinding != BindOrgAndSoftware {
		t.Errorf("defaults %v %v %q", s.Algorithms, s.Leeway, s.CertificateBinding)
	}
}

// TestProvisionRefusesBadConfig: what the core refuses, Provision refuses.
func TestProvisionRefusesBadConfig(t *testing.T) {
	s := &SoftwareStatement{Algorithms: []string{"HS256"}, Directories: []Directory{{
		Issuer: "x", Keys: keyset.Config{File: sb.Files.DirectoryJWKS}, JWKSHosts: []string{"h"}}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := s.Provision(ctx); err == nil || !strings.Contains(err.Error(), "software_statement: algorithms") {
		t.Fatalf("got %v", err)
	}
}
