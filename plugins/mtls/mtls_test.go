package mtls

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

func TestProtect(t *testing.T) {
	cert := func(org, sw string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{OrganizationalUnit: []string{org}, CommonName: sw}}
	}
	rec := &dcr.Registration{ClientID: "c1", OrgID: "org1", SoftwareID: "sw1"}
	cases := []struct {
		name   string
		x      dcr.Exchange
		status int // 0 = accepted
	}{
		{"register with a certificate", dcr.Exchange{Operation: dcr.OpRegister, ClientCert: cert("org1", "sw1")}, 0},
		{"register without", dcr.Exchange{Operation: dcr.OpRegister}, http.StatusBadRequest},
		{"read by the owner", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org1", "sw1"), Existing: rec}, 0},
		{"update by the owner", dcr.Exchange{Operation: dcr.OpUpdate, ClientCert: cert("org1", "sw1"), Existing: rec}, 0},
		{"delete without a certificate", dcr.Exchange{Operation: dcr.OpDelete, Existing: rec}, http.StatusUnauthorized},
		{"read by another org", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org2", "sw1"), Existing: rec}, http.StatusUnauthorized},
		{"read by other software of the org", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org1", "sw2"), Existing: rec}, http.StatusUnauthorized},
		// Unknown client: left to the handler, which refuses it after every protection ran.
		{"unknown client", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org1", "sw1")}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := MTLS{}.Protect(context.Background(), &tc.x)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var e *dcr.Error
			if !errors.As(err, &e) || e.Status != tc.status {
				t.Fatalf("got %v, want status %d", err, tc.status)
			}
			if tc.status == http.StatusUnauthorized && e.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without a challenge")
			}
		})
	}
}
