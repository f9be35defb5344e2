package caddymodule

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestRoleScopesFromCaddyfile: role_scopes lines, through the Caddyfile and the JSON it
// adapts to, replace only their own roles' defaults; the other roles keep theirs.
func TestRoleScopesFromCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`dcr {
		profile {
			role_scopes AISP accounts payments
			role_scopes aisp-extra accounts
			role_scopes CBPII
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Handler
	if err := json.Unmarshal(raw, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := fromJSON.Profile.Validate(); err != nil {
		t.Fatal(err)
	}
	fromJSON.Profile.SetDefaults()
	want := map[string][]string{
		"AISP":       {"accounts", "payments"},
		"aisp-extra": {"accounts"},
		"CBPII":      {}, // a role alone allows none of its own scopes
		"PISP":       {"payments"},
	}
	if !reflect.DeepEqual(fromJSON.Profile.RoleScopes, want) {
		t.Errorf("role_scopes after defaults %v (JSON %s), want %v", fromJSON.Profile.RoleScopes, raw, want)
	}
}
