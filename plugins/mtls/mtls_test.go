package mtls

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/manage"
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
		// Unknown client: left to manage.Authorize, which refuses it.
		{"unknown client", dcr.Exchange{Operation: dcr.OpRead, ClientCert: cert("org1", "sw1")}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := MTLS{}.Protect(context.Background(), &tc.x, nil)
			if tc.refuse != (res.Vote.Refusal != "") || res.Vote.Grant {
				t.Fatalf("vote %+v, want refused %v (and never a grant: a certificate alone does not authorize)", res.Vote, tc.refuse)
			}
			if tc.x.Operation != dcr.OpRegister && tc.x.Existing != nil {
				// Granted by an earlier step (a valid registration access token): a refusal
				// must still win.
				authorized := manage.Authorize(tc.x.Existing, "rat", []dcr.Vote{dcr.Grant(), res.Vote}) == nil
				if authorized == tc.refuse {
					t.Fatalf("authorized %v with a granted token, want %v", authorized, !tc.refuse)
				}
			}
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("error %v: a management refusal is a vote, not an error, so every authenticating protection still runs", err)
				}
				return
			}
			var e *dcr.Error
			if !errors.As(err, &e) || e.Status != tc.status {
				t.Fatalf("got %v, want status %d", err, tc.status)
			}
		})
	}
	if (MTLS{}).Phase() != dcr.PhaseAuthenticate {
		t.Fatal("mtls authenticates")
	}
}
