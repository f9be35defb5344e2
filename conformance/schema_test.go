package conformance

import (
	"encoding/json"
	"strings"
	"testing"
)

// goodRegistration is a conforming OB DCR 3.2 answer for a tls_client_auth client, shaped as
// the OB specification's sample response.
func goodRegistration() map[string]any {
	return map[string]any{
		"client_id":                    "d3f1a6c0-1f6e-4d3b-9d0e-0a8e6b1f2c3d",
		"client_id_issued_at":          1700000000,
		"client_secret_expires_at":     0,
		"redirect_uris":                []any{"https://tpp1.example.com/callback"},
		"token_endpoint_auth_method":   "tls_client_auth",
		"tls_client_auth_subject_dn":   "CN=0123456789abcdefABCDEF,OU=0015800001041RHAAY,O=OpenBanking,C=GB",
		"grant_types":                  []any{"authorization_code", "client_credentials"},
		"response_types":               []any{"code id_token", "code"},
		"software_id":                  "0123456789abcdefABCDEF",
		"scope":                        "accounts openid",
		"software_statement":           "eyJhbGciOiJQUzI1NiJ9.eyJzb2Z0d2FyZV9pZCI6IngifQ.c2ln",
		"application_type":             "web",
		"id_token_signed_response_alg": "PS256",
		"request_object_signing_alg":   "PS256",
	}
}

func marshal(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckRegistrationGood(t *testing.T) {
	pkjwt := goodRegistration()
	delete(pkjwt, "tls_client_auth_subject_dn")
	pkjwt["token_endpoint_auth_method"] = "private_key_jwt"
	pkjwt["token_endpoint_auth_signing_alg"] = "ES256"
	pkjwt["client_secret"] = "s3cr3t"
	ciba := goodRegistration()
	ciba["grant_types"] = []any{"client_credentials", GrantCIBA}
	delete(ciba, "response_types")
	ciba["backchannel_token_delivery_mode"] = "ping"
	ciba["backchannel_client_notification_endpoint"] = "https://tpp1.example.com/ciba"
	ciba["backchannel_authentication_request_signing_alg"] = "PS256"
	ciba["backchannel_user_code_parameter_supported"] = false
	extra := goodRegistration()
	extra["registration_access_token"] = "opaque"
	extra["registration_client_uri"] = "https://aspsp.example.com/register/x"
	extra["software_roles"] = []any{"AISP"}

	for name, tc := range map[string]struct {
		spec Spec
		doc  map[string]any
	}{
		"tls_client_auth 3.2":           {Spec32, goodRegistration()},
		"tls_client_auth 3.3":           {Spec33, goodRegistration()},
		"private_key_jwt with secret":   {Spec32, pkjwt},
		"CIBA ping 3.3":                 {Spec33, ciba},
		"fields outside the dictionary": {Spec32, extra},
	} {
		t.Run(name, func(t *testing.T) {
			if f := CheckRegistration(tc.spec, marshal(t, tc.doc)); len(f) != 0 {
				t.Errorf("a conforming answer failed: %q", f)
			}
		})
	}
}

func TestCheckRegistrationBad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   Spec
		change func(m map[string]any)
		want   string // a failure contains this
	}{
		{"client_id missing", Spec32, func(m map[string]any) { delete(m, "client_id") }, "client_id: required"},
		{"client_id 37 characters", Spec32, func(m map[string]any) { m["client_id"] = strings.Repeat("a", 37) }, "client_id: length 37"},
		{"client_id a number", Spec32, func(m map[string]any) { m["client_id"] = 12 }, "client_id: not a string"},
		{"client_secret 37 characters", Spec32, func(m map[string]any) { m["client_secret"] = strings.Repeat("s", 37) }, "client_secret: length 37"},
		{"client_id_issued_at negative", Spec32, func(m map[string]any) { m["client_id_issued_at"] = -1 }, "client_id_issued_at -1"},
		{"client_id_issued_at a string", Spec32, func(m map[string]any) { m["client_id_issued_at"] = "1700000000" }, "client_id_issued_at: not a number"},
		{"redirect_uris missing", Spec32, func(m map[string]any) { delete(m, "redirect_uris") }, "redirect_uris: required"},
		{"redirect_uris empty", Spec32, func(m map[string]any) { m["redirect_uris"] = []any{} }, "redirect_uris: must not be empty"},
		{"redirect_uri http", Spec32, func(m map[string]any) { m["redirect_uris"] = []any{"http://tpp.example.com/cb"} }, "not https"},
		{"redirect_uri localhost", Spec32, func(m map[string]any) { m["redirect_uris"] = []any{"https://localhost/cb"} }, "localhost"},
		{"redirect_uri loopback", Spec32, func(m map[string]any) { m["redirect_uris"] = []any{"https://127.0.0.1/cb"} }, "loopback"},
		{"redirect_uri fragment", Spec32, func(m map[string]any) { m["redirect_uris"] = []any{"https://tpp.example.com/cb#x"} }, "fragment"},
		{"redirect_uri 257 characters", Spec32, func(m map[string]any) {
			m["redirect_uris"] = []any{"https://tpp.example.com/" + strings.Repeat("p", 233)}
		}, "length 257"},
		{"auth method missing", Spec32, func(m map[string]any) { delete(m, "token_endpoint_auth_method") }, "token_endpoint_auth_method: required"},
		{"auth method none", Spec32, func(m map[string]any) { m["token_endpoint_auth_method"] = "none" }, `token_endpoint_auth_method "none"`},
		{"tls_client_auth without DN", Spec32, func(m map[string]any) { delete(m, "tls_client_auth_subject_dn") }, "tls_client_auth_subject_dn: required"},
		{"DN 129 characters", Spec32, func(m map[string]any) { m["tls_client_auth_subject_dn"] = "CN=" + strings.Repeat("x", 126) }, "tls_client_auth_subject_dn: length 129"},
		{"private_key_jwt without signing alg", Spec32, func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
		}, "token_endpoint_auth_signing_alg: required"},
		{"grant_types missing", Spec32, func(m map[string]any) { delete(m, "grant_types") }, "grant_types: required"},
		{"grant_types empty", Spec32, func(m map[string]any) { m["grant_types"] = []any{} }, "grant_types: must not be empty"},
		{"grant_types implicit", Spec32, func(m map[string]any) {
			m["grant_types"] = []any{"authorization_code", "client_credentials", "implicit"}
		}, `grant_types[2] "implicit"`},
		{"grant_types CIBA in 3.2", Spec32, func(m map[string]any) { m["grant_types"] = []any{"client_credentials", GrantCIBA} }, `grant_types[1] "` + GrantCIBA},
		{"grant_types a string", Spec32, func(m map[string]any) { m["grant_types"] = "client_credentials" }, "grant_types: not an array of strings"},
		{"response_types token", Spec32, func(m map[string]any) { m["response_types"] = []any{"id_token", "token"} }, `response_types[0] "id_token"`},
		{"software_id 23 characters", Spec32, func(m map[string]any) { m["software_id"] = strings.Repeat("a", 23) }, "software_id"},
		{"software_id not base62", Spec32, func(m map[string]any) { m["software_id"] = "a-b" }, "software_id"},
		{"scope missing", Spec32, func(m map[string]any) { delete(m, "scope") }, "scope: required"},
		{"scope 257 characters", Spec32, func(m map[string]any) { m["scope"] = strings.Repeat("s", 257) }, "scope: length 257"},
		{"software_statement missing", Spec32, func(m map[string]any) { delete(m, "software_statement") }, "software_statement: required"},
		{"software_statement not a JWS", Spec32, func(m map[string]any) { m["software_statement"] = "opaque" }, "software_statement: not a compact JWS"},
		{"application_type missing", Spec32, func(m map[string]any) { delete(m, "application_type") }, "application_type: required"},
		{"application_type native", Spec32, func(m map[string]any) { m["application_type"] = "native" }, `application_type "native"`},
		{"id_token alg missing", Spec32, func(m map[string]any) { delete(m, "id_token_signed_response_alg") }, "id_token_signed_response_alg: required"},
		{"request object alg missing", Spec32, func(m map[string]any) { delete(m, "request_object_signing_alg") }, "request_object_signing_alg: required"},
		{"request object alg 6 characters", Spec32, func(m map[string]any) { m["request_object_signing_alg"] = "PS256X" }, "request_object_signing_alg: length 6"},
		{"auth signing alg 6 characters", Spec32, func(m map[string]any) { m["token_endpoint_auth_signing_alg"] = "ES256K" }, "token_endpoint_auth_signing_alg: length 6"},
		{"CIBA without delivery mode", Spec33, func(m map[string]any) { m["grant_types"] = []any{GrantCIBA} }, "backchannel_token_delivery_mode: required"},
		{"CIBA push", Spec33, func(m map[string]any) {
			m["grant_types"] = []any{GrantCIBA}
			m["backchannel_token_delivery_mode"] = "push"
		}, `backchannel_token_delivery_mode "push"`},
		{"CIBA ping without endpoint", Spec33, func(m map[string]any) {
			m["grant_types"] = []any{GrantCIBA}
			m["backchannel_token_delivery_mode"] = "ping"
		}, "backchannel_client_notification_endpoint: required"},
		{"CIBA endpoint http", Spec33, func(m map[string]any) {
			m["grant_types"] = []any{GrantCIBA}
			m["backchannel_token_delivery_mode"] = "ping"
			m["backchannel_client_notification_endpoint"] = "http://tpp.example.com/ciba"
		}, "not an https URL"},
		{"CIBA user code a string", Spec33, func(m map[string]any) { m["backchannel_user_code_parameter_supported"] = "false" }, "not a boolean"},
		{"CIBA claim without the grant", Spec33, func(m map[string]any) { m["backchannel_token_delivery_mode"] = "poll" }, "only with the grant type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := goodRegistration()
			tc.change(m)
			failures := CheckRegistration(tc.spec, marshal(t, m))
			for _, f := range failures {
				if strings.Contains(f, tc.want) {
					return
				}
			}
			t.Errorf("want a failure containing %q, got %q", tc.want, failures)
		})
	}
}

func TestCheckRegistrationNotJSON(t *testing.T) {
	if f := CheckRegistration(Spec32, []byte(`["client_id"]`)); len(f) != 1 || !strings.Contains(f[0], "not a JSON object") {
		t.Errorf("got %q", f)
	}
}
