package policy

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr/obprofile"
)

// profileProbe denies every call with what it reads of data.dcrgate.profile, so a test sees
// the data through an ordinary decision.
const profileProbe = `package dcr

import rego.v1

decision := {
	"allow": false,
	"error": "invalid_client_metadata",
	"error_description": json.marshal({
		"role_scopes": data.dcrgate.profile.role_scopes,
		"scopes": data.dcrgate.profile.scopes,
	}),
}
`

func probeProfile(t *testing.T, ctx caddy.Context, data ...string) map[string]any {
	t.Helper()
	dir := t.TempDir()
	p := &Policy{Defaults: off(), Modules: []string{writeFile(t, dir, "probe.rego", profileProbe)}, Data: data}
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Cleanup() })
	d, err := p.engine.Decide(context.Background(), Input(exchange(nil).Exchange, 0))
	if err != nil {
		t.Fatal(err)
	}
	var seen map[string]any
	if err := json.Unmarshal([]byte(d.ErrorDescription), &seen); err != nil {
		t.Fatalf("%q: %v", d.ErrorDescription, err)
	}
	return seen
}

// TestProfileData: a policy reads the OB profile of the handler it runs in as
// data.dcrgate.profile: the default mapping outside a handler, the configured one (merged over
// the defaults, as the profile applies it) inside; a data document cannot replace it.
func TestProfileData(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	want := func(cfg *obprofile.Config) map[string]any {
		c := *cfg
		c.SetDefaults()
		out := map[string]any{"role_scopes": map[string]any{}, "scopes": []any{}}
		for role, scopes := range c.RoleScopes {
			list := []any{}
			for _, s := range scopes {
				list = append(list, s)
			}
			out["role_scopes"].(map[string]any)[role] = list
		}
		for _, s := range c.Scopes {
			out["scopes"] = append(out["scopes"].([]any), s)
		}
		return out
	}

	if got, w := probeProfile(t, ctx), want(&obprofile.Config{}); !reflect.DeepEqual(got, w) {
		t.Fatalf("outside a handler: %v, want the defaults %v", got, w)
	}
	if got := probeProfile(t, ctx)["role_scopes"].(map[string]any)["AISP"]; !reflect.DeepEqual(got, []any{"accounts"}) {
		t.Fatalf("default AISP scopes %v", got)
	}

	configured := &obprofile.Config{RoleScopes: map[string][]string{"CBPII": {"payments"}, "ASPSP": {}}}
	configured.SetDefaults()
	inHandler := ctx.WithValue(obprofile.ContextKey, configured)
	got := probeProfile(t, inHandler)
	if !reflect.DeepEqual(got, want(configured)) {
		t.Fatalf("in a handler: %v, want %v", got, want(configured))
	}
	if rs := got["role_scopes"].(map[string]any); !reflect.DeepEqual(rs["CBPII"], []any{"payments"}) || !reflect.DeepEqual(rs["ASPSP"], []any{}) || !reflect.DeepEqual(rs["AISP"], []any{"accounts"}) {
		t.Fatalf("configured role_scopes not seen: %v", rs)
	}

	forged := writeFile(t, t.TempDir(), "forged.json", `{"dcrgate":{"profile":{"role_scopes":{"AISP":["payments"]}},"other":1}}`)
	if rs := probeProfile(t, inHandler, forged)["role_scopes"].(map[string]any); !reflect.DeepEqual(rs["AISP"], []any{"accounts"}) {
		t.Fatalf("a data document replaced the profile: AISP %v", rs["AISP"])
	}
}

// TestProfileDataIsPartOfThePolicyIdentity: two handlers with different profiles get two
// engines; equal profiles share one.
func TestProfileDataIsPartOfThePolicyIdentity(t *testing.T) {
	a, err := Load(Sources{Defaults: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Load(Sources{Defaults: true, Profile: &obprofile.Config{}})
	c, _ := Load(Sources{Defaults: true, Profile: &obprofile.Config{RoleScopes: map[string][]string{"CBPII": {"payments"}}}})
	if a.Hash() != b.Hash() {
		t.Fatal("the default profile, given or not, must be one policy set")
	}
	if a.Hash() == c.Hash() {
		t.Fatal("a changed role_scopes must change the policy set's identity")
	}
}
