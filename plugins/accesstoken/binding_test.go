package accesstoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

func selfSigned(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
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

func x5t(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestBoundToCaller(t *testing.T) {
	a, b := selfSigned(t, "a"), selfSigned(t, "b")
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
			if got := boundToCaller(tc.claims, tc.cert); got != tc.want {
				t.Fatalf("boundToCaller = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestManagementTokenBoundToCertificate: the client's own certificate-bound token authorizes
// a management call only over the connection with that certificate.
func TestManagementTokenBoundToCertificate(t *testing.T) {
	is := newIssuer(t)
	a := mustProvision(t, fmt.Sprintf(`{"issuer": %q, "keys": {"jwks": %s}, "manage": {"read": ["client_credentials"]}}`, testIssuer, is.jwks))
	mine, rotated := selfSigned(t, "sw1"), selfSigned(t, "sw1")
	token := is.mint(t, is.claims(map[string]any{"client_id": "client-a", "scope": nil, "cnf": map[string]any{"x5t#S256": x5t(mine)}}))
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want bool
	}{{"the bound certificate", mine, true}, {"another certificate of the same software", rotated, false}, {"no certificate", nil, false}} {
		t.Run(tc.name, func(t *testing.T) {
			x := exchange(dcr.OpRead, &onceStore{})
			x.ClientID, x.BearerToken, x.Existing, x.ClientCert = "client-a", token, &dcr.Registration{ClientID: "client-a"}, tc.cert
			if err := a.Protect(context.Background(), x); err != nil {
				t.Fatal(err)
			}
			if x.ManagementAuthorized != tc.want {
				t.Fatalf("authorized %v, want %v", x.ManagementAuthorized, tc.want)
			}
		})
	}
}
