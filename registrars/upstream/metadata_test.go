package upstream

import (
	"reflect"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

func TestBackendRequest(t *testing.T) {
	ssa := &dcr.SoftwareStatement{Raw: "h.p.s", JWKSURI: "https://keys.example/sw1.jwks"}
	x := &dcr.Exchange{SoftwareStatement: ssa, AcceptedMetadata: map[string]any{
		"iss": "sw1", "aud": "https://bank", "iat": 1, "exp": 2, "jti": "j", "software_statement": "h.p.s",
		"client_id": "chosen", "registration_access_token": "t",
		"token_endpoint_auth_method": "private_key_jwt",
		"grant_types":                []any{"authorization_code", "client_credentials"},
		"response_types":             []any{"code id_token"},
		"tls_client_auth_subject_dn": "CN=x",
	}}
	got := backendRequest(x, "", false)
	want := map[string]any{
		"token_endpoint_auth_method": "private_key_jwt",
		"grant_types":                []any{"authorization_code", "client_credentials", "implicit"},
		"response_types":             []any{"code id_token"},
		"tls_client_auth_subject_dn": "CN=x",
		"jwks_uri":                   "https://keys.example/sw1.jwks",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("backend request\n got %v\nwant %v", got, want)
	}
	if _, leaked := x.AcceptedMetadata["jwks_uri"]; leaked {
		t.Fatal("the exchange's metadata was modified")
	}

	got = backendRequest(x, "c1", true)
	if got["software_statement"] != "h.p.s" || got["client_id"] != "c1" {
		t.Fatalf("update with forwarded SSA: %v", got)
	}
}

func TestBackendMetadataSpellsOutDefaults(t *testing.T) {
	// A client_credentials-only client has no response types: RFC 7591's default "code"
	// would give it one the OB profile refused.
	got := backendMetadata(map[string]any{"grant_types": []any{"client_credentials"}}, "")
	if rt, ok := got["response_types"].([]any); !ok || len(rt) != 0 {
		t.Fatalf("response_types = %#v, want []", got["response_types"])
	}
	if g := got["grant_types"].([]any); len(g) != 1 {
		t.Fatalf("grant_types widened: %v", g)
	}
	// A jwks or jwks_uri the client sent is kept.
	x := &dcr.Exchange{SoftwareStatement: &dcr.SoftwareStatement{JWKSURI: "https://ssa.example"},
		AcceptedMetadata: map[string]any{"jwks_uri": "https://own.example"}}
	if got := backendRequest(x, "", false); got["jwks_uri"] != "https://own.example" {
		t.Fatalf("jwks_uri = %v", got["jwks_uri"])
	}
}
