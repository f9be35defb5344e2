package obprofile

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

// TestV31Names: tls_client_auth_dn (OB DCR v3.1) is accepted for tls_client_auth_subject_dn,
// registered under the v3.2 name, and SentNames remembers what the client sent.
func TestV31Names(t *testing.T) {
	cert := newCert(t)
	const v31, v32 = "tls_client_auth_dn", "tls_client_auth_subject_dn"
	// The same subject, written another way (RFC 4514 order reversed): equal as a DN, but
	// not the same value.
	reordered := "organizationIdentifier=PSDGB-OB-Unknown0015800001HQQrZAAX,C=GB,O=OpenBanking,OU=0015800001HQQrZAAX,CN=" + softwareID
	tests := []struct {
		name     string
		edit     map[string]any // nil value deletes
		wantDesc string         // "" = accepted
		wantDN   string         // md[v32] when accepted
		wantSent map[string][]string
	}{
		{name: "v3.2 name only", wantDN: subjectDN},
		{name: "v3.1 name only", edit: map[string]any{v32: nil, v31: subjectDN}, wantDN: subjectDN,
			wantSent: map[string][]string{v32: {v31}}},
		{name: "v3.1 name, another spelling of the subject", edit: map[string]any{v32: nil, v31: reordered}, wantDN: reordered,
			wantSent: map[string][]string{v32: {v31}}},
		{name: "both names, same value", edit: map[string]any{v31: subjectDN}, wantDN: subjectDN,
			wantSent: map[string][]string{v32: {v32, v31}}},
		{name: "both names, different values", edit: map[string]any{v31: "CN=other,O=OpenBanking,C=GB"},
			wantDesc: "tls_client_auth_dn (the OB DCR v3.1 name of tls_client_auth_subject_dn) and tls_client_auth_subject_dn are both sent with different values"},
		{name: "both names, the same subject spelled differently", edit: map[string]any{v31: reordered},
			wantDesc: "are both sent with different values"},
		{name: "both names, v3.2 not a string", edit: map[string]any{v31: subjectDN, v32: 1.0},
			wantDesc: "are both sent with different values"},
		{name: "v3.1 name a number", edit: map[string]any{v32: nil, v31: 5.0}, wantDesc: "tls_client_auth_dn must be a string, not a number"},
		{name: "v3.1 name, another subject", edit: map[string]any{v32: nil, v31: "CN=other,O=OpenBanking,C=GB"},
			wantDesc: `tls_client_auth_dn "CN=other,O=OpenBanking,C=GB" does not match the subject of the TLS client certificate`},
		{name: "v3.1 name malformed", edit: map[string]any{v32: nil, v31: "CN=a,,O=b"}, wantDesc: "tls_client_auth_dn \"CN=a,,O=b\" is not a valid distinguished name"},
		{name: "v3.1 name empty", edit: map[string]any{v32: nil, v31: " "}, wantDesc: "tls_client_auth_dn is required with token_endpoint_auth_method tls_client_auth"},
		{name: "v3.1 name with private_key_jwt", edit: map[string]any{v32: nil, v31: subjectDN, "token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "PS256"},
			wantDesc: `tls_client_auth_dn is only allowed with token_endpoint_auth_method tls_client_auth, not "private_key_jwt"`},
		{name: "v3.1 name null is omitted", edit: map[string]any{v32: nil, v31: nil}, wantDesc: "tls_client_auth_subject_dn is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := baseClaims()
			for k, v := range tc.edit {
				if v == nil && k != v31 {
					delete(claims, k)
				} else {
					claims[k] = v
				}
			}
			md, err := Apply(nil, Input{Claims: claims, SSA: newSSA(), ClientCert: cert})
			if tc.wantDesc != "" {
				if err == nil {
					t.Fatalf("accepted: %v", md)
				}
				if err.Status != 400 || err.Code != dcr.CodeInvalidClientMetadata || !strings.Contains(err.Description, tc.wantDesc) {
					t.Fatalf("got %d %s %q, want invalid_client_metadata containing %q", err.Status, err.Code, err.Description, tc.wantDesc)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if md[v32] != tc.wantDN {
				t.Errorf("md[%s] = %#v, want %q", v32, md[v32], tc.wantDN)
			}
			if _, ok := md[v31]; ok {
				t.Errorf("the v3.1 name is registered too: %v", md)
			}
			if got := SentNames(claims); !reflect.DeepEqual(got, tc.wantSent) {
				t.Errorf("SentNames = %#v, want %#v", got, tc.wantSent)
			}
		})
	}
}

// TestRoleScopesMerge: configured role_scopes replace their own role's default and keep the
// others (issue: one role_scopes line silently dropped every other role's default).
func TestRoleScopesMerge(t *testing.T) {
	tests := []struct {
		name  string
		set   map[string][]string
		roles []string
		want  string // the scope registered when the request omits it
	}{
		{"defaults", nil, []string{"AISP", "PISP", "CBPII"}, "accounts fundsconfirmations openid payments"},
		{"one role replaced, the others kept", map[string][]string{"AISP": {"accounts", "payments"}}, []string{"AISP"}, "accounts openid payments"},
		{"PISP keeps its default beside a configured AISP", map[string][]string{"AISP": {"accounts", "payments"}}, []string{"PISP"}, "openid payments"},
		{"CBPII keeps its default beside a configured AISP", map[string][]string{"AISP": {"accounts", "payments"}}, []string{"CBPII"}, "fundsconfirmations openid"},
		{"a role replaced case-insensitively", map[string][]string{"aisp": {"payments"}}, []string{"AISP"}, "openid payments"},
		{"a new role beside the defaults", map[string][]string{"ASPSP": {"accounts"}}, []string{"ASPSP", "PISP"}, "accounts openid payments"},
		{"a role with no scopes allows none of its own", map[string][]string{"CBPII": {}}, []string{"CBPII", "PISP"}, "openid payments"},
		{"a role configured null allows none of its own", map[string][]string{"CBPII": nil}, []string{"CBPII"}, "openid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{RoleScopes: tc.set}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			claims := baseClaims()
			delete(claims, "scope")
			ssa := newSSA()
			ssa.Roles = tc.roles
			md, err := Apply(cfg, Input{Claims: claims, SSA: ssa, ClientCert: newCert(t)})
			if err != nil {
				t.Fatal(err)
			}
			if md["scope"] != tc.want {
				t.Errorf("scope %q, want %q", md["scope"], tc.want)
			}
		})
	}

	// The defaults kept beside a configured role narrow to the offered scopes, so a deployment
	// without fundsconfirmations stays valid.
	narrow := &Config{Scopes: []string{"openid", "accounts", "payments"}, RoleScopes: map[string][]string{"AISP": {"accounts"}}}
	if err := narrow.Validate(); err != nil {
		t.Fatalf("narrowed scopes: %v", err)
	}
	narrow.SetDefaults()
	if !reflect.DeepEqual(narrow.RoleScopes, map[string][]string{"AISP": {"accounts"}, "PISP": {"payments"}, "CBPII": {}}) {
		t.Errorf("narrowed role_scopes %v", narrow.RoleScopes)
	}

	// SetDefaults merges into a copy: a Config copied before (as Validate and Apply do) keeps
	// its own map.
	set := map[string][]string{"AISP": {"payments"}}
	c := Config{RoleScopes: set}
	d := c
	d.SetDefaults()
	if len(set) != 1 || len(c.RoleScopes) != 1 || len(d.RoleScopes) != 3 || !reflect.DeepEqual(d.RoleScopes["AISP"], []string{"payments"}) {
		t.Errorf("configured %v, copy %v", set, d.RoleScopes)
	}
	if err := (&Config{RoleScopes: map[string][]string{"AISP": {"accounts"}, "aisp": {"payments"}}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), `"AISP" and "aisp" name the same role`) {
		t.Errorf("two spellings of one role: %v", err)
	}
}
