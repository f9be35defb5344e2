package obprofile

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// referenceAllowedScopes is allowedScopes as it was: a set of the allowed scopes, then
// cfg.Scopes filtered by it.
func referenceAllowedScopes(cfg *Config, roles []string) []string {
	ok := make(map[string]bool)
	for _, s := range cfg.AlwaysAllowedScopes {
		ok[s] = true
	}
	for role, scopes := range cfg.RoleScopes {
		for _, r := range roles {
			if strings.EqualFold(role, r) {
				for _, s := range scopes {
					ok[s] = true
				}
			}
		}
	}
	var out []string
	for _, s := range cfg.Scopes {
		if ok[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// profileConfigs are configurations to compare the fast paths on: the defaults, narrowed
// scopes, roles replaced, added and emptied, other methods and algorithms.
func profileConfigs() []Config {
	no := false
	return []Config{
		{},
		{Scopes: []string{"openid", "accounts"}},
		{RoleScopes: map[string][]string{"aisp": {"accounts", "openid"}}},
		{RoleScopes: map[string][]string{"PISP": {}, "Extra": {"fundsconfirmations"}}},
		{Scopes: []string{"payments", "openid", "x", "accounts"}, AlwaysAllowedScopes: []string{"x"},
			RoleScopes: map[string][]string{"AISP": {"accounts", "x"}, "PISP": {"payments"}, "CBPII": {}}},
		{AuthMethods: []string{"private_key_jwt", "client_secret_jwt", "client_secret_basic"}, SigningAlgs: []string{"ES256"}},
		{ResponseTypes: []string{"id_token code", "code"}, DefaultResponseTypes: []string{" id_token   code"}, RequireIDTokenSignedResponseAlg: &no},
		{GrantTypes: []string{"client_credentials"}, ApplicationTypes: []string{"mobile", "web"}, MaxRedirectURILength: 30},
	}
}

func TestAllowedScopesAgreesWithReference(t *testing.T) {
	roleLists := [][]string{nil, {"AISP"}, {"aisp", "PISP"}, {"CBPII", "cbpii"}, {"Extra"}, {"unknown"}, {"AISP", "PISP", "CBPII", "Extra"}}
	for _, cfg := range profileConfigs() {
		cfg.SetDefaults()
		for _, roles := range roleLists {
			if got, want := allowedScopes(&cfg, roles), referenceAllowedScopes(&cfg, roles); !reflect.DeepEqual(got, want) {
				t.Errorf("%+v, roles %v: %v, want %v", cfg, roles, got, want)
			}
		}
	}
}

func referenceNormalizeResponseType(rt string) string {
	f := strings.Fields(rt)
	sort.Strings(f)
	return strings.Join(f, " ")
}

var responseTypeCorpus = []string{"", " ", "code", "code id_token", "id_token code", "code  id_token", " code", "code ",
	"code\tid_token", "code\u00a0id_token", "code\u0085id_token", "a b a", "a a b", "b a a", "token id_token code",
	"code id_token token", "Code code", "é a", "a é", "code\x0bid_token", "\n", "x\r"}

func TestNormalizeResponseTypeAgreesWithReference(t *testing.T) {
	for _, rt := range responseTypeCorpus {
		if got, want := normalizeResponseType(rt), referenceNormalizeResponseType(rt); got != want {
			t.Errorf("normalizeResponseType(%q) = %q, want %q", rt, got, want)
		}
	}
}

func FuzzNormalizeResponseType(f *testing.F) {
	for _, rt := range responseTypeCorpus {
		f.Add(rt)
	}
	f.Fuzz(func(t *testing.T, rt string) {
		if got, want := normalizeResponseType(rt), referenceNormalizeResponseType(rt); got != want {
			t.Fatalf("normalizeResponseType(%q) = %q, want %q", rt, got, want)
		}
	})
}

// TestCompleteConfigIsItsDefaults: complete holds exactly where SetDefaults changes nothing
// (but the RoleScopes map's identity), the premise of Apply using a complete config as it is.
func TestCompleteConfigIsItsDefaults(t *testing.T) {
	for _, cfg := range profileConfigs() {
		if cfg.complete() {
			t.Errorf("%+v is complete before SetDefaults", cfg)
		}
		cfg.SetDefaults()
		if !cfg.complete() {
			t.Errorf("%+v is not complete after SetDefaults", cfg)
		}
		again := cfg
		again.SetDefaults()
		if !reflect.DeepEqual(again, cfg) {
			t.Errorf("SetDefaults changed the complete %+v into %+v", cfg, again)
		}
	}
	withoutRole := Config{}
	withoutRole.SetDefaults()
	delete(withoutRole.RoleScopes, "CBPII")
	if withoutRole.complete() {
		t.Error("a config whose RoleScopes lack a default role is complete")
	}
}

// applyBodies are request claims (JSON) for comparing the two ways Apply takes a config.
func applyBodies(t testing.TB) []string {
	var out []string
	for _, edit := range []func(map[string]any){
		func(map[string]any) {},
		func(c map[string]any) { delete(c, "scope"); delete(c, "response_types") },
		func(c map[string]any) { c["scope"] = "payments openid openid fundsconfirmations" },
		func(c map[string]any) { c["response_types"] = []any{"id_token code", "code"} },
		func(c map[string]any) { c["response_types"] = []any{"code", " code "} },
		func(c map[string]any) { c["grant_types"] = []any{"client_credentials", "client_credentials"} },
		func(c map[string]any) { c["grant_types"] = []any{"refresh_token", "bogus"} },
		func(c map[string]any) {
			c["token_endpoint_auth_method"] = "private_key_jwt"
			c["token_endpoint_auth_signing_alg"] = "ES256"
			delete(c, "tls_client_auth_subject_dn")
		},
		func(c map[string]any) {
			c["token_endpoint_auth_method"] = "client_secret_jwt"
			c["token_endpoint_auth_signing_alg"] = "HS256"
			delete(c, "tls_client_auth_subject_dn")
		},
		func(c map[string]any) { delete(c, "id_token_signed_response_alg"); c["application_type"] = "mobile" },
		func(c map[string]any) { c["redirect_uris"] = []any{"https://tpp.example.com/cb2"} },
		func(c map[string]any) {
			c["grant_types"] = []any{"urn:openid:params:grant-type:ciba"}
			c["backchannel_token_delivery_mode"] = "poll"
			delete(c, "response_types")
			delete(c, "redirect_uris")
		},
	} {
		c := baseClaims()
		edit(c)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// sameApply fails t unless Apply gives the same answer with cfg (completed inside Apply) and
// with a completed copy of it (used as it is).
func sameApply(t *testing.T, cfg Config, body string, in Input) {
	t.Helper()
	var claims map[string]any
	if json.Unmarshal([]byte(body), &claims) != nil {
		return
	}
	completed := cfg
	completed.SetDefaults()
	in.Claims = claims
	want, werr := Apply(&cfg, in)
	got, gerr := Apply(&completed, in)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gerr, werr) {
		t.Fatalf("%+v, %s:\ncompleted: %#v, %v\n      raw: %#v, %v", cfg, body, got, gerr, want, werr)
	}
}

func TestApplyCompletedConfigAgrees(t *testing.T) {
	cert := newCert(t)
	for _, cfg := range profileConfigs() {
		for _, body := range applyBodies(t) {
			sameApply(t, cfg, body, Input{SSA: newSSA(), ClientCert: cert})
		}
	}
}

func FuzzApplyCompletedConfig(f *testing.F) {
	for _, body := range applyBodies(f) {
		f.Add(body, 0)
	}
	cert, cfgs := newCert(f), profileConfigs()
	f.Fuzz(func(t *testing.T, body string, which int) {
		sameApply(t, cfgs[uint(which)%uint(len(cfgs))], body, Input{SSA: newSSA(), ClientCert: cert})
	})
}

// TestCompleteChecksEveryDefault: a completed config with any one field zeroed is complete
// only if SetDefaults leaves that field zero, so a default added to SetDefaults and forgotten
// in complete fails here instead of being skipped by Apply.
func TestCompleteChecksEveryDefault(t *testing.T) {
	var full Config
	full.SetDefaults()
	typ := reflect.TypeOf(full)
	for i := range typ.NumField() {
		c := full
		c.RoleScopes = maps.Clone(full.RoleScopes)
		reflect.ValueOf(&c).Elem().Field(i).SetZero()
		again := c
		again.SetDefaults()
		defaulted := !reflect.ValueOf(again).Field(i).IsZero()
		if c.complete() && defaulted {
			t.Errorf("complete() holds without %s, which SetDefaults fills", typ.Field(i).Name)
		}
	}
	// A default role missing from RoleScopes is a default too.
	for _, role := range defaultRoles {
		c := full
		c.RoleScopes = maps.Clone(full.RoleScopes)
		delete(c.RoleScopes, role)
		if c.complete() {
			t.Errorf("complete() holds without the role %s", role)
		}
	}
}
