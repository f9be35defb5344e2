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
		status int  // 0 = no error
		refuse bool // the management call is refused (the handler answers the uniform 401)
	}{
		{"register with a certificate", dcr.Exchange{Operation: dcr.OpRegister, ClientCert: cert("org1", "sw1")}, 0, false},
		{"register without", dcr.Exchange{Operation: dcr.OpRegister}, http.StatusBadRequest, false},
		{"read by the owner", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org1", "sw1"), Existing: rec}, 0, false},
		{"update by the owner", dcr.Exchange{Operation: dcr.OpUpdate, ClientCert: cert("org1", "sw1"), Existing: rec}, 0, false},
		{"delete without a certificate", dcr.Exchange{Operation: dcr.OpDelete, Existing: rec}, 0, true},
		{"read by another org", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org2", "sw1"), Existing: rec}, 0, true},
		{"read by other software of the org", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org1", "sw2"), Existing: rec}, 0, true},
		// Unknown client: left to the handler, which refuses it after every protection ran.
		{"unknown client", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org1", "sw1")}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Granted by an earlier check (a valid registration access token): a refusal
			// must still win.
			tc.x.ManagementAuthorized = tc.x.Operation != dcr.OpRegister
			err := MTLS{}.Protect(context.Background(), &tc.x)
			if tc.refuse != (tc.x.ManagementRefusal != "") {
				t.Fatalf("refusal %q, want refused %v", tc.x.ManagementRefusal, tc.refuse)
			}
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("error %v: a management refusal is recorded, not returned, so every authenticating protection still runs", err)
				}
				return
			}
			var e *dcr.Error
			if !errors.As(err, &e) || e.Status != tc.status {
				t.Fatalf("got %v, want status %d", err, tc.status)
			}
		})
	}
}
