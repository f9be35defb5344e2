package obprofile

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obresponse"
)

func TestStep(t *testing.T) {
	cert := newCert(t)
	withServerAssigned := baseClaims()
	for _, k := range obresponse.ServerAssigned {
		withServerAssigned[k] = "from the client"
	}
	v31 := baseClaims()
	v31["tls_client_auth_dn"], v31["tls_client_auth_subject_dn"] = subjectDN, nil
	for _, tc := range []struct {
		name      string
		x         dcr.Exchange
		wantErr   string
		wantNames map[string][]string
		wantNone  bool // no metadata (not a register or update)
	}{
		{name: "register", x: dcr.Exchange{Operation: dcr.OpRegister, RequestClaims: baseClaims(), SoftwareStatement: newSSA(), ClientCert: cert}},
		{name: "update", x: dcr.Exchange{Operation: dcr.OpUpdate, RequestClaims: baseClaims(), SoftwareStatement: newSSA(), ClientCert: cert}},
		{name: "unsigned: the unverified claims", x: dcr.Exchange{Operation: dcr.OpRegister, UnverifiedClaims: baseClaims(), SoftwareStatement: newSSA(), ClientCert: cert}},
		{name: "server-assigned attributes are dropped", x: dcr.Exchange{Operation: dcr.OpRegister, RequestClaims: withServerAssigned, SoftwareStatement: newSSA(), ClientCert: cert}},
		{name: "the v3.1 name is remembered", x: dcr.Exchange{Operation: dcr.OpRegister, RequestClaims: v31, SoftwareStatement: newSSA(), ClientCert: cert},
			wantNames: map[string][]string{"tls_client_auth_subject_dn": {"tls_client_auth_dn"}}},
		{name: "no software statement", x: dcr.Exchange{Operation: dcr.OpRegister, RequestClaims: baseClaims(), ClientCert: cert}, wantErr: "a verified software statement is required"},
		{name: "a rule refuses", x: dcr.Exchange{Operation: dcr.OpRegister, RequestClaims: map[string]any{"token_endpoint_auth_method": "none"}, SoftwareStatement: newSSA(), ClientCert: cert}, wantErr: "token_endpoint_auth_method"},
		{name: "read", x: dcr.Exchange{Operation: dcr.OpRead}, wantNone: true},
		{name: "delete", x: dcr.Exchange{Operation: dcr.OpDelete}, wantNone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Step{}.Protect(context.Background(), &tc.x, nil)
			if tc.wantErr != "" {
				e := dcr.AsError(err)
				if e == nil || e.Status != 400 || !strings.Contains(e.Description, tc.wantErr) || res.Metadata != nil {
					t.Fatalf("got %v (metadata %v), want a 400 about %q", err, res.Metadata, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNone {
				if res.Metadata != nil || res.MetadataNames != nil {
					t.Fatalf("metadata %v on %s", res.Metadata, tc.x.Operation)
				}
				return
			}
			if res.Metadata["token_endpoint_auth_method"] != "tls_client_auth" || res.Metadata["tls_client_auth_subject_dn"] != subjectDN {
				t.Fatalf("metadata %v", res.Metadata)
			}
			for _, k := range obresponse.ServerAssigned {
				if _, ok := res.Metadata[k]; ok {
					t.Errorf("%s taken from the client", k)
				}
			}
			if !reflect.DeepEqual(res.MetadataNames, tc.wantNames) {
				t.Fatalf("names %v, want %v", res.MetadataNames, tc.wantNames)
			}
		})
	}
	if (Step{}).Phase() != dcr.PhaseProfile {
		t.Fatal("the OB profile is the profile phase")
	}
}
