package accesstoken

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func unmarshalCaddyfile(t *testing.T, in string) (*AccessToken, error) {
	t.Helper()
	a := new(AccessToken)
	return a, a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
}

// TestCaddyfileClientLongForms: each auth-method shorthand of `client` gives what its long form,
// named as the JSON, gives; the long and short form of one method go together, two methods do not.
func TestCaddyfileClientLongForms(t *testing.T) {
	for short, long := range map[string]string{
		"client gw {\nclient_secret_basic s\n}":         "client {\nclient_id gw\nauth_method client_secret_basic\nclient_secret s\n}",
		"client gw {\nprivate_key_jwt k.pem kid1\n}":    "client gw {\nauth_method private_key_jwt\nsigning_key k.pem\nsigning_kid kid1\n}",
		"client gw {\ntls_client_auth c.pem k.pem\n}":   "client gw {\nauth_method tls_client_auth\ntls_client_auth c.pem k.pem\n}",
		"introspection https://as/i {\ncache_ttl 5s\n}": "introspection {\nendpoint https://as/i\ncache_ttl 5s\n}",
	} {
		s, err1 := unmarshalCaddyfile(t, "access_token {\n"+short+"\n}")
		l, err2 := unmarshalCaddyfile(t, "access_token {\n"+long+"\n}")
		sj, _ := json.Marshal(s)
		lj, _ := json.Marshal(l)
		if err1 != nil || err2 != nil || string(sj) != string(lj) {
			t.Errorf("shorthand %s (%v)\nlong form %s (%v)", sj, err1, lj, err2)
		}
	}
	for in, want := range map[string]string{
		"client gw {\nauth_method client_secret_basic\nprivate_key_jwt k.pem\n}": "already client_secret_basic",
		"client gw {\nauth_method basic\n}":                                      `auth_method must be`,
		"client {\nclient_secret_basic s\n}":                                     "client_id is required",
		"client gw {\nclient_secret s\n}":                                        "auth_method (or one of its shorthands",
		"introspection {\ncache_ttl 5s\n}":                                       "endpoint is required",
		"register {\nsingle_use maybe\n}":                                        `single_use takes no value (on) or off, not "maybe"`,
		"register {\nrevoke true\n}":                                             `revoke takes no value (on) or off`,
	} {
		if _, err := unmarshalCaddyfile(t, "access_token {\n"+in+"\n}"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", in, err, want)
		}
	}
	a, err := unmarshalCaddyfile(t, "access_token {\nrevocation https://as/r\nregister {\nsingle_use false\nrevoke off\n}\n}")
	if err != nil || a.RevocationEndpoint != "https://as/r" || a.Register.SingleUse == nil || *a.Register.SingleUse || a.Register.Revoke {
		t.Fatalf("the previous release's revocation and single_use false: %+v %v", a, err)
	}
}
