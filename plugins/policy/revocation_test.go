package policy

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

// A policy can act on the revocation facts: this one refuses a registration whose signing key
// could not be looked up because a revoked set was unavailable (accepted by fail_mode soft).
const refuseUnchecked = `package dcr.rules.revocation_checked
import rego.v1

deny contains {
	"rule": "revocation_checked",
	"error": "invalid_client_metadata",
	"error_description": sprintf("the signing key could not be checked against %v", [input.revocation.signing_key.unavailable_sources]),
} if {
	input.operation == "register"
	input.revocation.signing_key.unavailable
}
`

func TestPolicyRefusesUnavailableRevokedSet(t *testing.T) {
	mod := writeFile(t, t.TempDir(), "revocation_checked.rego", refuseUnchecked)
	p, _ := newPolicy(t, &Policy{Modules: []string{mod}})
	const swSet, orgSet = "https://dir.example/sw.revoked.json", "https://dir.example/org.revoked.json"
	key := func(unavailable ...string) func(x *call) {
		return func(x *call) {
			x.SigningKey = &dcr.SigningKey{
				RegisteredKey: dcr.RegisteredKey{KeyID: "k1", Thumbprint: "tp1"},
				Revocation:    dcr.KeyRevocation{Checked: len(unavailable) < 2, Sources: []string{swSet, orgSet}, FailMode: "soft", Unavailable: unavailable},
			}
		}
	}
	if err := exchange(key()).protect(context.Background(), p); err != nil {
		t.Fatalf("both sets read: %v", err)
	}
	if err := exchange(nil).protect(context.Background(), p); err != nil {
		t.Fatalf("nothing to check: %v", err)
	}
	e := asError(t, exchange(key(orgSet)).protect(context.Background(), p))
	if e.Status != 400 || e.Code != dcr.CodeInvalidClientMetadata || !strings.Contains(e.Description, orgSet) {
		t.Fatalf("org set unavailable: %+v", e)
	}
}

func TestRevocationInput(t *testing.T) {
	b, _ := json.Marshal(RevocationInput(nil))
	if want := `{"signing_key":{"checked":false,"revoked":false,"sources":[],"unavailable":false,"unavailable_sources":[]}}`; string(b) != want {
		t.Fatalf("not checked = %s, want %s", b, want)
	}
	b, _ = json.Marshal(RevocationInput(&dcr.SigningKey{
		RegisteredKey: dcr.RegisteredKey{KeyID: "k1", Thumbprint: "tp1"},
		Revocation:    dcr.KeyRevocation{Checked: true, Sources: []string{"https://a", "https://b"}, FailMode: "soft", Unavailable: []string{"https://b"}},
	}))
	if want := `{"signing_key":{"checked":true,"fail_mode":"soft","kid":"k1","revoked":false,"sources":["https://a","https://b"],"thumbprint":"tp1","unavailable":true,"unavailable_sources":["https://b"]}}`; string(b) != want {
		t.Fatalf("checked = %s\nwant %s", b, want)
	}
}
