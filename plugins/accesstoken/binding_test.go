package accesstoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
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

func x5t(cert *x509.Certificate) string { return dcr.CertificateThumbprint(cert) }

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
			if err := x.protect(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if x.ManagementAuthorized != tc.want {
				t.Fatalf("authorized %v, want %v", x.ManagementAuthorized, tc.want)
			}
		})
	}
}
