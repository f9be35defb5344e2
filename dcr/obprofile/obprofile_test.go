package obprofile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"maps"
	"math/big"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

const (
	softwareID = "5GEvbfQmJxKDpQm0dw1yEw"
	subjectDN  = "CN=5GEvbfQmJxKDpQm0dw1yEw,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB,organizationIdentifier=PSDGB-OB-Unknown0015800001HQQrZAAX"
	redirect1  = "https://tpp.example.com/cb"
	redirect2  = "https://tpp.example.com/cb2"
)

func newCert(t testing.TB) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject: pkix.Name{
			Country:            []string{"GB"},
			Organization:       []string{"OpenBanking"},
			OrganizationalUnit: []string{"0015800001HQQrZAAX"},
			CommonName:         softwareID,
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "PSDGB-OB-Unknown0015800001HQQrZAAX"},
			},
		},
		NotBefore: time.Now().Add(-time.Hour),
		NotAfter:  time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newSSA() *dcr.SoftwareStatement {
	return &dcr.SoftwareStatement{
		SoftwareID:   softwareID,
		OrgID:        "0015800001HQQrZAAX",
		Roles:        []string{"AISP", "PISP"},
		RedirectURIs: []string{redirect1, redirect2},
	}
}

// baseClaims is a complete, valid tls_client_auth registration request, as decoded JSON.
func baseClaims() map[string]any {
	return map[string]any{
		"iss":                          softwareID,
		"aud":                          "0015800001041REAAY",
		"iat":                          float64(1700000000),
		"exp":                          float64(1700000300),
		"jti":                          "0f0c0e9e-8f4b-4a56-9c8d-2b0f4e5e6d7c",
		"software_statement":           "eyJ.x.y",
		"software_id":                  softwareID,
		"token_endpoint_auth_method":   "tls_client_auth",
		"tls_client_auth_subject_dn":   subjectDN,
		"id_token_signed_response_alg": "PS256",
		"request_object_signing_alg":   "PS256",
		"grant_types":                  []any{"authorization_code", "client_credentials", "refresh_token"},
		"response_types":               []any{"code id_token"},
		"redirect_uris":                []any{redirect1},
		"application_type":             "web",
		"scope":                        "openid accounts payments",
	}
}

func TestApplyNormalizes(t *testing.T) {
	cert := newCert(t)
	claims := baseClaims()
	claims["client_name"] = "Example TPP"
	claims["logo_uri"] = nil
	md, err := Apply(nil, Input{Claims: claims, SSA: newSSA(), ClientCert: cert})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"software_id":                  softwareID,
		"token_endpoint_auth_method":   "tls_client_auth",
		"tls_client_auth_subject_dn":   subjectDN,
		"id_token_signed_response_alg": "PS256",
		"request_object_signing_alg":   "PS256",
		"grant_types":                  []string{"authorization_code", "client_credentials", "refresh_token"},
		"response_types":               []string{"code id_token"},
		"redirect_uris":                []string{redirect1},
		"application_type":             "web",
		"scope":                        "accounts openid payments",
		"client_name":                  "Example TPP",
	}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("Apply =\n%#v\nwant\n%#v", md, want)
	}
	if _, ok := claims["scope"].(string); !ok || claims["scope"] != "openid accounts payments" {
		t.Error("Apply modified the input claims")
	}
}

func TestApplyFillsDefaults(t *testing.T) {
	claims := map[string]any{
		"iss":                             softwareID,
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": "PS256",
		"id_token_signed_response_alg":    "ES256",
	}
	md, err := Apply(&Config{}, Input{Claims: claims, SSA: newSSA()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"software_id":                     softwareID,
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": "PS256",
		"id_token_signed_response_alg":    "ES256",
		"grant_types":                     []string{"authorization_code"},
		"response_types":                  []string{"code id_token"},
		"redirect_uris":                   []string{redirect1, redirect2},
		"application_type":                "web",
		"scope":                           "accounts openid payments",
	}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("Apply =\n%#v\nwant\n%#v", md, want)
	}
}

func TestApplyCIBAPing(t *testing.T) {
	claims := baseClaims()
	claims["grant_types"] = []any{"urn:openid:params:grant-type:ciba", "client_credentials"}
	delete(claims, "response_types")
	delete(claims, "redirect_uris")
	claims["backchannel_token_delivery_mode"] = "ping"
	claims["backchannel_client_notification_endpoint"] = "https://tpp.example.com/ciba"
	claims["backchannel_authentication_request_signing_alg"] = "PS256"
	claims["backchannel_user_code_parameter"] = false
	md, err := Apply(nil, Input{Claims: claims, SSA: newSSA(), ClientCert: newCert(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md["response_types"]; ok {
		t.Errorf("response_types registered without authorization_code: %v", md["response_types"])
	}
	// The SSA's redirect URIs are still registered: harmless, and the default of RFC 7591.
	if !reflect.DeepEqual(md["redirect_uris"], []string{redirect1, redirect2}) {
		t.Errorf("redirect_uris = %#v", md["redirect_uris"])
	}
}

func TestApplyNilSSA(t *testing.T) {
	_, err := Apply(nil, Input{Claims: baseClaims()})
	if err == nil || err.Status != 500 {
		t.Fatalf("Apply without SSA = %v, want a 500", err)
	}
}

// TestRules runs Apply on baseClaims with one change and checks the outcome. Every rule has
// accepted and rejected cases.
func TestRules(t *testing.T) {
	cert := newCert(t)
	type tc struct {
		name     string
		edit     func(c map[string]any)
		cfg      *Config
		ssa      func(s *dcr.SoftwareStatement)
		noCert   bool
		wantCode string // "" means accepted
		wantDesc string // substring of the description, or of md[checkKey] when accepted
		checkKey string
		checkVal any
	}
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	del := func(ks ...string) func(map[string]any) {
		return func(c map[string]any) {
			for _, k := range ks {
				delete(c, k)
			}
		}
	}
	both := func(fs ...func(map[string]any)) func(map[string]any) {
		return func(c map[string]any) {
			for _, f := range fs {
				f(c)
			}
		}
	}
	no := false
	pkjwt := both(set("token_endpoint_auth_method", "private_key_jwt"), del("tls_client_auth_subject_dn"), set("token_endpoint_auth_signing_alg", "PS256"))
	secretJWT := &Config{AuthMethods: []string{"private_key_jwt", "client_secret_jwt", "client_secret_basic"}}
	ciba := set("grant_types", []any{"urn:openid:params:grant-type:ciba"})
	const bad, badURI = dcr.CodeInvalidClientMetadata, dcr.CodeInvalidRedirectURI

	tests := []tc{
		{name: "valid request", edit: func(map[string]any) {}},

		// software_id
		{name: "software_id omitted is filled", edit: del("software_id"), checkKey: "software_id", checkVal: softwareID},
		{name: "software_id mismatch", edit: set("software_id", "other"), wantCode: bad, wantDesc: `software_id "other" does not match`},
		{name: "software_id number", edit: set("software_id", 12.0), wantCode: bad, wantDesc: "software_id must be a string, not a number"},
		{name: "SSA without software_id", ssa: func(s *dcr.SoftwareStatement) { s.SoftwareID = "" }, wantCode: dcr.CodeInvalidSoftwareStatement},

		// redirect_uris
		{name: "redirect_uris all of the SSA", edit: set("redirect_uris", []any{redirect2, redirect1}), checkKey: "redirect_uris", checkVal: []string{redirect2, redirect1}},
		{name: "redirect_uris []string", edit: set("redirect_uris", []string{redirect1}), checkKey: "redirect_uris", checkVal: []string{redirect1}},
		{name: "redirect_uris omitted takes the SSA's", edit: del("redirect_uris"), checkKey: "redirect_uris", checkVal: []string{redirect1, redirect2}},
		{name: "redirect_uris lone string", edit: set("redirect_uris", redirect1), wantCode: bad, wantDesc: "redirect_uris must be an array of strings, not a string"},
		{name: "redirect_uris element number", edit: set("redirect_uris", []any{redirect1, 3.0}), wantCode: bad, wantDesc: "redirect_uris[1] must be a string, not a number"},
		{name: "redirect_uris http", edit: set("redirect_uris", []any{redirect1, "http://tpp.example.com/cb"}), wantCode: badURI, wantDesc: `redirect_uris[1] "http://tpp.example.com/cb" must use https`},
		{name: "redirect_uris relative", edit: set("redirect_uris", []any{"/cb"}), wantCode: badURI, wantDesc: "not an absolute URL"},
		{name: "redirect_uris fragment", edit: set("redirect_uris", []any{redirect1 + "#x"}), wantCode: badURI, wantDesc: "must not have a fragment"},
		{name: "redirect_uris empty fragment", edit: set("redirect_uris", []any{redirect1 + "#"}), wantCode: badURI, wantDesc: "must not have a fragment"},
		{name: "redirect_uris localhost", edit: set("redirect_uris", []any{"https://LocalHost:8443/cb"}), wantCode: badURI, wantDesc: "must not use localhost"},
		{name: "redirect_uris loopback v4", edit: set("redirect_uris", []any{"https://127.8.0.1/cb"}), wantCode: badURI, wantDesc: "loopback"},
		{name: "redirect_uris loopback v6", edit: set("redirect_uris", []any{"https://[::1]/cb"}), wantCode: badURI, wantDesc: "loopback"},
		{name: "redirect_uris empty host", edit: set("redirect_uris", []any{"https:///cb"}), wantCode: badURI, wantDesc: "has no host"},
		{name: "redirect_uris user info", edit: set("redirect_uris", []any{"https://u:p@tpp.example.com/cb"}), wantCode: badURI, wantDesc: "user information"},
		{name: "redirect_uris too long", edit: set("redirect_uris", []any{"https://tpp.example.com/" + strings.Repeat("a", 240)}), wantCode: badURI, wantDesc: "longer than 256 bytes"},
		{name: "redirect_uris longer limit", cfg: &Config{MaxRedirectURILength: 1000}, edit: set("redirect_uris", []any{"https://tpp.example.com/" + strings.Repeat("a", 240)}), wantCode: badURI, wantDesc: "is not one of the software statement's software_redirect_uris"},
		{name: "redirect_uris duplicate", edit: set("redirect_uris", []any{redirect1, redirect1}), wantCode: badURI, wantDesc: "redirect_uris[1] \"https://tpp.example.com/cb\" is listed twice"},
		{name: "redirect_uris not in SSA", edit: set("redirect_uris", []any{"https://evil.example.com/cb"}), wantCode: badURI, wantDesc: "is not one of the software statement's software_redirect_uris"},
		{name: "redirect_uris not exact", edit: set("redirect_uris", []any{redirect1 + "/"}), wantCode: badURI, wantDesc: "is not one of"},
		{name: "redirect_uris empty with authorization_code", edit: set("redirect_uris", []any{}), wantCode: badURI, wantDesc: "must not be empty"},
		{name: "redirect_uris omitted, SSA has none", edit: del("redirect_uris"), ssa: func(s *dcr.SoftwareStatement) { s.RedirectURIs = nil }, wantCode: badURI, wantDesc: "redirect_uris is required"},
		{name: "redirect_uris omitted, SSA has none, no redirect grant", edit: both(del("redirect_uris", "response_types"), set("grant_types", []any{"client_credentials"})), ssa: func(s *dcr.SoftwareStatement) { s.RedirectURIs = nil }, checkKey: "grant_types", checkVal: []string{"client_credentials"}},
		{name: "redirect_uris omitted, SSA has a bad one", edit: del("redirect_uris"), ssa: func(s *dcr.SoftwareStatement) { s.RedirectURIs = []string{"http://localhost/cb"} }, wantCode: badURI, wantDesc: "software_redirect_uris[0]"},

		// token_endpoint_auth_method
		{name: "auth method private_key_jwt", edit: pkjwt, checkKey: "token_endpoint_auth_method", checkVal: "private_key_jwt"},
		{name: "auth method missing", edit: del("token_endpoint_auth_method"), wantCode: bad, wantDesc: "token_endpoint_auth_method is required"},
		{name: "auth method unsupported", edit: set("token_endpoint_auth_method", "client_secret_basic"), wantCode: bad, wantDesc: `token_endpoint_auth_method "client_secret_basic" is not supported`},
		{name: "auth method configured", cfg: secretJWT, edit: both(set("token_endpoint_auth_method", "client_secret_basic"), del("tls_client_auth_subject_dn")), checkKey: "token_endpoint_auth_method", checkVal: "client_secret_basic"},
		{name: "auth method array", edit: set("token_endpoint_auth_method", []any{"tls_client_auth"}), wantCode: bad, wantDesc: "token_endpoint_auth_method must be a string, not an array"},

		// tls_client_auth_subject_dn
		{name: "DN in OpenSSL slash form", edit: set("tls_client_auth_subject_dn", "/C=GB/O=OpenBanking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw/2.5.4.97=PSDGB-OB-Unknown0015800001HQQrZAAX"), checkKey: "tls_client_auth_subject_dn", checkVal: "/C=GB/O=OpenBanking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw/2.5.4.97=PSDGB-OB-Unknown0015800001HQQrZAAX"},
		{name: "DN as Go prints it", edit: set("tls_client_auth_subject_dn", cert.Subject.String())},
		{name: "DN missing", edit: del("tls_client_auth_subject_dn"), wantCode: bad, wantDesc: "tls_client_auth_subject_dn is required with token_endpoint_auth_method tls_client_auth"},
		{name: "DN with private_key_jwt", edit: both(pkjwt, set("tls_client_auth_subject_dn", subjectDN)), wantCode: bad, wantDesc: `tls_client_auth_subject_dn is only allowed with token_endpoint_auth_method tls_client_auth, not "private_key_jwt"`},
		{name: "DN mismatch", edit: set("tls_client_auth_subject_dn", "CN=other,O=OpenBanking,C=GB"), wantCode: bad, wantDesc: "does not match the subject of the TLS client certificate"},
		{name: "DN malformed", edit: set("tls_client_auth_subject_dn", "CN=a,,O=b"), wantCode: bad, wantDesc: "is not a valid distinguished name: empty RDN"},
		{name: "DN without certificate", noCert: true, wantCode: bad, wantDesc: "a TLS client certificate is required"},
		{name: "DN boolean", edit: set("tls_client_auth_subject_dn", true), wantCode: bad, wantDesc: "tls_client_auth_subject_dn must be a string, not a boolean"},

		// token_endpoint_auth_signing_alg
		{name: "signing alg ES256 with private_key_jwt", edit: both(pkjwt, set("token_endpoint_auth_signing_alg", "ES256"))},
		{name: "signing alg missing with private_key_jwt", edit: both(pkjwt, del("token_endpoint_auth_signing_alg")), wantCode: bad, wantDesc: "token_endpoint_auth_signing_alg is required with token_endpoint_auth_method private_key_jwt"},
		{name: "signing alg RS256 refused", edit: both(pkjwt, set("token_endpoint_auth_signing_alg", "RS256")), wantCode: bad, wantDesc: `token_endpoint_auth_signing_alg "RS256" is not supported`},
		{name: "signing alg HS256 with private_key_jwt", edit: both(pkjwt, set("token_endpoint_auth_signing_alg", "HS256")), wantCode: bad, wantDesc: "not supported with private_key_jwt"},
		{name: "signing alg HS256 with client_secret_jwt", cfg: secretJWT, edit: both(pkjwt, set("token_endpoint_auth_method", "client_secret_jwt"), set("token_endpoint_auth_signing_alg", "HS256"))},
		{name: "signing alg PS256 with client_secret_jwt", cfg: secretJWT, edit: both(pkjwt, set("token_endpoint_auth_method", "client_secret_jwt")), wantCode: bad, wantDesc: "supported: HS256, HS384, HS512"},
		{name: "signing alg missing with client_secret_jwt", cfg: secretJWT, edit: both(pkjwt, set("token_endpoint_auth_method", "client_secret_jwt"), del("token_endpoint_auth_signing_alg")), wantCode: bad, wantDesc: "is required with token_endpoint_auth_method client_secret_jwt"},
		{name: "signing alg with tls_client_auth", edit: set("token_endpoint_auth_signing_alg", "PS256"), wantCode: bad, wantDesc: `token_endpoint_auth_signing_alg is only allowed with token_endpoint_auth_method private_key_jwt or client_secret_jwt, not "tls_client_auth"`},
		{name: "signing alg number", edit: both(pkjwt, set("token_endpoint_auth_signing_alg", json.Number("256"))), wantCode: bad, wantDesc: "must be a string, not a number"},

		// id_token_signed_response_alg, request_object_signing_alg
		{name: "id token alg missing", edit: del("id_token_signed_response_alg"), wantCode: bad, wantDesc: "id_token_signed_response_alg is required"},
		{name: "id token alg missing, not required", cfg: &Config{RequireIDTokenSignedResponseAlg: &no}, edit: del("id_token_signed_response_alg")},
		{name: "id token alg none", edit: set("id_token_signed_response_alg", "none"), wantCode: bad, wantDesc: `id_token_signed_response_alg "none" is not supported`},
		{name: "id token alg configured", cfg: &Config{SigningAlgs: []string{"PS512"}}, edit: both(set("id_token_signed_response_alg", "PS512"), set("request_object_signing_alg", "PS512"))},
		{name: "request object alg omitted", edit: del("request_object_signing_alg")},
		{name: "request object alg none", edit: set("request_object_signing_alg", "none"), wantCode: bad, wantDesc: `request_object_signing_alg "none" is not supported`},
		{name: "request object alg object", edit: set("request_object_signing_alg", map[string]any{}), wantCode: bad, wantDesc: "request_object_signing_alg must be a string, not an object"},

		// grant_types
		{name: "grant_types omitted", edit: del("grant_types"), checkKey: "grant_types", checkVal: []string{"authorization_code"}},
		{name: "grant_types unsupported", edit: set("grant_types", []any{"authorization_code", "implicit"}), wantCode: bad, wantDesc: `grant_types[1] "implicit" is not supported`},
		{name: "grant_types duplicate", edit: set("grant_types", []any{"authorization_code", "authorization_code"}), wantCode: bad, wantDesc: "grant_types[1] \"authorization_code\" is listed twice"},
		{name: "grant_types empty", edit: set("grant_types", []any{}), wantCode: bad, wantDesc: "grant_types must not be empty"},
		{name: "grant_types string", edit: set("grant_types", "authorization_code"), wantCode: bad, wantDesc: "grant_types must be an array of strings, not a string"},
		{name: "grant_types restricted", cfg: &Config{GrantTypes: []string{"authorization_code"}}, edit: set("grant_types", []any{"client_credentials"}), wantCode: bad, wantDesc: "is not supported"},

		// response_types
		{name: "response_types omitted", edit: del("response_types"), checkKey: "response_types", checkVal: []string{"code id_token"}},
		{name: "response_types token order", edit: set("response_types", []any{"id_token code", "code"}), checkKey: "response_types", checkVal: []string{"code id_token", "code"}},
		{name: "response_types unsupported", edit: set("response_types", []any{"token"}), wantCode: bad, wantDesc: `response_types[0] "token" is not supported`},
		{name: "response_types duplicate", edit: set("response_types", []any{"code id_token", "id_token code"}), wantCode: bad, wantDesc: "listed twice"},
		{name: "response_types empty", edit: set("response_types", []any{}), wantCode: bad, wantDesc: "response_types must not be empty"},
		{name: "response_types without authorization_code", edit: set("grant_types", []any{"client_credentials"}), wantCode: bad, wantDesc: "response_types is only allowed with the authorization_code grant type"},
		{name: "response_types element bool", edit: set("response_types", []any{true}), wantCode: bad, wantDesc: "response_types[0] must be a string, not a boolean"},

		// application_type
		{name: "application_type omitted", edit: del("application_type"), checkKey: "application_type", checkVal: "web"},
		{name: "application_type mobile", edit: set("application_type", "mobile"), checkKey: "application_type", checkVal: "mobile"},
		{name: "application_type native", edit: set("application_type", "native"), wantCode: bad, wantDesc: `application_type "native" is not supported`},
		{name: "application_type number", edit: set("application_type", 1.0), wantCode: bad, wantDesc: "application_type must be a string"},

		// scope
		{name: "scope duplicates removed", edit: set("scope", "accounts  openid accounts"), checkKey: "scope", checkVal: "accounts openid"},
		{name: "scope omitted", edit: del("scope"), checkKey: "scope", checkVal: "accounts openid payments"},
		{name: "scope omitted, CBPII", edit: del("scope"), ssa: func(s *dcr.SoftwareStatement) { s.Roles = []string{"cbpii"} }, checkKey: "scope", checkVal: "fundsconfirmations openid"},
		{name: "scope not allowed by roles", edit: set("scope", "openid fundsconfirmations"), wantCode: bad, wantDesc: `scope "fundsconfirmations" is not allowed by the software statement's software_roles (AISP, PISP)`},
		{name: "scope unknown", edit: set("scope", "openid admin"), wantCode: bad, wantDesc: `scope "admin" is not supported`},
		{name: "scope empty", edit: set("scope", "  "), wantCode: bad, wantDesc: "scope is empty"},
		{name: "scope array", edit: set("scope", []any{"openid"}), wantCode: bad, wantDesc: "scope must be a string, not an array"},

		// CIBA
		{name: "CIBA poll", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "poll"))},
		{name: "CIBA ping", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "ping"), set("backchannel_client_notification_endpoint", "https://tpp.example.com/n"))},
		{name: "CIBA mode missing", edit: both(ciba, del("response_types")), wantCode: bad, wantDesc: "backchannel_token_delivery_mode is required"},
		{name: "CIBA push", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "push")), wantCode: bad, wantDesc: "push is not allowed by the OB profile"},
		{name: "CIBA mode unknown", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "pull")), wantCode: bad, wantDesc: `backchannel_token_delivery_mode "pull" is not supported`},
		{name: "CIBA ping without endpoint", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "ping")), wantCode: bad, wantDesc: "backchannel_client_notification_endpoint is required with backchannel_token_delivery_mode ping"},
		{name: "CIBA ping http endpoint", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "ping"), set("backchannel_client_notification_endpoint", "http://tpp.example.com/n")), wantCode: bad, wantDesc: "must use https"},
		{name: "CIBA ping localhost endpoint", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "ping"), set("backchannel_client_notification_endpoint", "https://localhost/n")), wantCode: bad, wantDesc: "must not use localhost"},
		{name: "CIBA poll with endpoint", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "poll"), set("backchannel_client_notification_endpoint", "https://tpp.example.com/n")), wantCode: bad, wantDesc: "only allowed with backchannel_token_delivery_mode ping"},
		{name: "CIBA signing alg", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "poll"), set("backchannel_authentication_request_signing_alg", "ES256"))},
		{name: "CIBA signing alg refused", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "poll"), set("backchannel_authentication_request_signing_alg", "RS256")), wantCode: bad, wantDesc: `backchannel_authentication_request_signing_alg "RS256" is not supported`},
		{name: "CIBA user code true", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "poll"), set("backchannel_user_code_parameter_supported", true)), wantCode: bad, wantDesc: "backchannel_user_code_parameter_supported must be false"},
		{name: "CIBA user code string", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", "poll"), set("backchannel_user_code_parameter", "false")), wantCode: bad, wantDesc: "backchannel_user_code_parameter must be a boolean, not a string"},
		{name: "CIBA claim without the grant", edit: set("backchannel_token_delivery_mode", "poll"), wantCode: bad, wantDesc: "backchannel_token_delivery_mode is only allowed with the grant type urn:openid:params:grant-type:ciba"},
		{name: "CIBA mode number", edit: both(ciba, del("response_types"), set("backchannel_token_delivery_mode", 1.0)), wantCode: bad, wantDesc: "backchannel_token_delivery_mode must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims := baseClaims()
			if tc.edit != nil {
				tc.edit(claims)
			}
			ssa := newSSA()
			if tc.ssa != nil {
				tc.ssa(ssa)
			}
			in := Input{Claims: claims, SSA: ssa, ClientCert: cert}
			if tc.noCert {
				in.ClientCert = nil
			}
			md, err := Apply(tc.cfg, in)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if tc.checkKey != "" && !reflect.DeepEqual(md[tc.checkKey], tc.checkVal) {
					t.Errorf("md[%q] = %#v, want %#v", tc.checkKey, md[tc.checkKey], tc.checkVal)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted (%v), want %s", md, tc.wantCode)
			}
			if err.Code != tc.wantCode || err.Status != 400 {
				t.Errorf("error %d %s, want 400 %s (%s)", err.Status, err.Code, tc.wantCode, err.Description)
			}
			if !strings.Contains(err.Description, tc.wantDesc) {
				t.Errorf("description %q does not contain %q", err.Description, tc.wantDesc)
			}
		})
	}
}

// TestRulesRunAlone checks that each rule is safe on metadata that earlier rules have not
// normalized (rules are exported and a policy may run them individually): it answers nil or
// a 400 with a spec error code and a description, and the rule of a claim of the wrong JSON
// type refuses it.
func TestRulesRunAlone(t *testing.T) {
	cfg := &Config{}
	cfg.SetDefaults()
	specCodes := []string{dcr.CodeInvalidClientMetadata, dcr.CodeInvalidRedirectURI, dcr.CodeInvalidSoftwareStatement}
	for _, tc := range []struct {
		md map[string]any
		// refusedBy are the rules that must refuse md: their claim has the wrong JSON type.
		refusedBy []string
	}{
		{md: map[string]any{}},
		{md: map[string]any{"grant_types": 5.0, "token_endpoint_auth_method": 5.0, "scope": 1.0},
			refusedBy: []string{"grant_types", "token_endpoint_auth_method", "scope"}},
		{md: map[string]any{"grant_types": []any{1.0}, "redirect_uris": []any{nil}},
			refusedBy: []string{"grant_types", "redirect_uris"}},
	} {
		for _, r := range Rules {
			md := maps.Clone(tc.md)
			err := r.Check(cfg, Input{SSA: &dcr.SoftwareStatement{}}, md)
			if slices.Contains(tc.refusedBy, r.Name) && err == nil {
				t.Errorf("rule %s accepted %v", r.Name, tc.md)
			}
			if err != nil && (err.Status != http.StatusBadRequest || !slices.Contains(specCodes, err.Code) || err.Description == "") {
				t.Errorf("rule %s on %v: %d %q %q, want a 400 with a spec code and a description", r.Name, tc.md, err.Status, err.Code, err.Description)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := []Config{
		{},
		{AuthMethods: []string{"client_secret_jwt", "client_secret_basic", "client_secret_post"}},
		{SigningAlgs: []string{"PS512", "EdDSA"}},
		{ResponseTypes: []string{"id_token code"}, DefaultResponseTypes: []string{"code id_token"}},
	}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", c, err)
		}
	}
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{AuthMethods: []string{"none"}}, `token_endpoint_auth_methods: "none" is not one of`},
		{Config{AuthMethods: []string{"tls_client_auth", "tls_client_auth"}}, "listed twice"},
		{Config{SigningAlgs: []string{"none"}}, `algorithms: "none" is refused`},
		{Config{SigningAlgs: []string{"HS256"}}, `algorithms: "HS256" is refused`},
		{Config{SigningAlgs: []string{"XS256"}}, "is not one of"},
		{Config{GrantTypes: []string{"implicit"}}, "grant_types"},
		{Config{ResponseTypes: []string{"token"}}, "response_types"},
		{Config{DefaultResponseTypes: []string{"code id_token token"}}, "default_response_types"},
		{Config{ApplicationTypes: []string{"desktop"}}, "application_types"},
		{Config{Scopes: []string{"a b"}}, "not a valid scope token"},
		{Config{RoleScopes: map[string][]string{"AISP": {"admin"}}}, "role_scopes[AISP]"},
		{Config{AlwaysAllowedScopes: []string{"profile"}}, "always_allowed_scopes"},
		{Config{MaxRedirectURILength: -1}, "negative"},
	}
	for _, tc := range bad {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if !reflect.DeepEqual(c.AuthMethods, []string{"tls_client_auth", "private_key_jwt"}) ||
		!reflect.DeepEqual(c.SigningAlgs, []string{"PS256", "ES256"}) ||
		c.RequireIDTokenSignedResponseAlg == nil || !*c.RequireIDTokenSignedResponseAlg ||
		c.MaxRedirectURILength != 256 || len(c.RoleScopes) != 3 {
		t.Errorf("SetDefaults = %+v", c)
	}
	f := false
	c = Config{RequireIDTokenSignedResponseAlg: &f, MaxRedirectURILength: 10}
	c.SetDefaults()
	if *c.RequireIDTokenSignedResponseAlg || c.MaxRedirectURILength != 10 {
		t.Errorf("SetDefaults overrode set fields: %+v", c)
	}
}

func FuzzApply(f *testing.F) {
	seed, _ := json.Marshal(baseClaims())
	f.Add(string(seed))
	f.Add(`{"token_endpoint_auth_method":"private_key_jwt","token_endpoint_auth_signing_alg":"PS256","id_token_signed_response_alg":"PS256"}`)
	f.Add(`{"grant_types":["urn:openid:params:grant-type:ciba"],"backchannel_token_delivery_mode":"ping","backchannel_client_notification_endpoint":"https://a/b"}`)
	f.Add(`{"redirect_uris":"https://x","scope":7,"response_types":[null],"grant_types":{}}`)
	f.Add(`{"tls_client_auth_subject_dn":"CN=a\\,b+O=#0c0161","token_endpoint_auth_method":"tls_client_auth"}`)
	f.Add(`{"tls_client_auth_dn":"CN=a","tls_client_auth_subject_dn":"CN=a","token_endpoint_auth_method":"tls_client_auth"}`)
	f.Add(`{"tls_client_auth_dn":7,"token_endpoint_auth_method":"private_key_jwt"}`)
	cert := newCert(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, useNumber := range []bool{false, true} {
			dec := json.NewDecoder(strings.NewReader(body))
			if useNumber {
				dec.UseNumber()
			}
			var claims map[string]any
			if dec.Decode(&claims) != nil {
				return
			}
			md, err := Apply(nil, Input{Claims: claims, SSA: newSSA(), ClientCert: cert})
			if err != nil {
				if err.Status != 400 || err.Description == "" {
					t.Fatalf("bad rejection %#v", err)
				}
				continue
			}
			// Accepted metadata always passes the rules again unchanged.
			again, err := Apply(nil, Input{Claims: md, SSA: newSSA(), ClientCert: cert})
			if err != nil || !reflect.DeepEqual(again, md) {
				t.Fatalf("Apply not idempotent: %v\n%#v\n%#v", err, md, again)
			}
		}
	})
}
