package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcrgate/dcrgate/dcr/obprofile"
)

const backendDiscovery = `{"issuer":"https://as.example","registration_endpoint":"https://as.example/reg",
"token_endpoint_auth_methods_supported":["client_secret_basic","tls_client_auth","private_key_jwt","none"],
"id_token_signing_alg_values_supported":["RS256","PS256","ES256"],
"token_endpoint_auth_signing_alg_values_supported":["HS256","PS256"]}`

// jsonBackend answers every request with doc as application/json.
func jsonBackend(doc string) caddyhttp.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(doc))
		return nil
	}
}

// discoveryRequest is a GET of path as a request of server reaches the handler.
func discoveryRequest(path string, server *caddyhttp.Server) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://gw.example:8443"+path, nil)
	r.Header.Set("Accept-Encoding", "gzip")
	repl := caddy.NewReplacer()
	repl.Set("http.request.hostport", "gw.example:8443")
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	if server != nil {
		ctx = context.WithValue(ctx, caddyhttp.ServerCtxKey, server)
	}
	return r.WithContext(ctx)
}

func serveDiscovery(t *testing.T, d *Discovery, path string, backend caddyhttp.Handler) *httptest.ResponseRecorder {
	t.Helper()
	if d.logger == nil {
		if err := d.Provision(caddy.Context{}); err != nil {
			t.Fatal(err)
		}
	}
	w := httptest.NewRecorder()
	if err := d.ServeHTTP(w, discoveryRequest(path, nil), backend); err != nil {
		t.Fatal(err)
	}
	return w
}

func decodeDocument(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	return got
}

func TestDiscoveryRewrite(t *testing.T) {
	backend := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("Accept-Encoding") != "" {
			t.Error("the backend was asked for an encoded document the gateway cannot rewrite")
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", "999")
		w.Header().Set("ETag", `"backend"`)
		_, _ = w.Write([]byte(backendDiscovery))
		return nil
	})
	// Without a dcr handler in the server, the OB profile's defaults.
	w := serveDiscovery(t, &Discovery{}, DefaultDiscoveryPath, backend)
	got := decodeDocument(t, w)
	if got["registration_endpoint"] != "https://gw.example:8443/register" || got["issuer"] != "https://as.example" {
		t.Fatalf("document %v", got)
	}
	for field, want := range map[string]any{
		"token_endpoint_auth_methods_supported":            []any{"tls_client_auth", "private_key_jwt"},
		"id_token_signing_alg_values_supported":            []any{"PS256", "ES256"},
		"token_endpoint_auth_signing_alg_values_supported": []any{"PS256"},
		// The backend publishes none: an OB client would send "none".
		"request_object_signing_alg_values_supported": []any{"PS256", "ES256"},
	} {
		if !reflect.DeepEqual(got[field], want) {
			t.Errorf("%s = %v, want %v", field, got[field], want)
		}
	}
	if w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) || w.Header().Get("Etag") != "" {
		t.Fatalf("headers %v", w.Header())
	}

	// A configured registration_endpoint is published as it is; the deprecated overrides
	// narrow within the profile.
	w = serveDiscovery(t, &Discovery{RegistrationEndpoint: "https://api.example/dcr", AuthMethods: []string{"private_key_jwt"},
		SigningAlgs: []string{"PS256"}}, DefaultDiscoveryPath, backend)
	got = decodeDocument(t, w)
	if got["registration_endpoint"] != "https://api.example/dcr" ||
		!reflect.DeepEqual(got["token_endpoint_auth_methods_supported"], []any{"private_key_jwt"}) ||
		!reflect.DeepEqual(got["id_token_signing_alg_values_supported"], []any{"PS256"}) ||
		!reflect.DeepEqual(got["request_object_signing_alg_values_supported"], []any{"PS256"}) {
		t.Fatalf("narrowed document %v", got)
	}
}

func TestDiscoveryPassesOtherResponses(t *testing.T) {
	calls := 0
	backend := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls++
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("nope"))
		return nil
	})
	if w := serveDiscovery(t, &Discovery{}, DefaultDiscoveryPath, backend); w.Code != 404 || w.Body.String() != "nope" {
		t.Fatalf("a backend error is passed as it is: %d %q", w.Code, w.Body)
	}
	if w := serveDiscovery(t, &Discovery{}, "/token", backend); w.Code != 404 || calls != 2 {
		t.Fatalf("other paths pass untouched: %d, %d calls", w.Code, calls)
	}
	big := jsonBackend(`{"x":"` + strings.Repeat("a", 300<<10) + `"}`)
	w := serveDiscovery(t, &Discovery{}, DefaultDiscoveryPath, big)
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "larger than max_size") {
		t.Fatalf("oversized document: %d %s", w.Code, w.Body)
	}
}

// defaultProfile is the OB profile dcr enforces without configuration.
func defaultProfile() *obprofile.Config {
	var p obprofile.Config
	p.SetDefaults()
	return &p
}

// TestApplyProfile is the published-field rule: the profile's value, intersected with the
// backend's where it publishes the field; nothing in common is an error.
func TestApplyProfile(t *testing.T) {
	const ciba = `"backchannel_authentication_endpoint":"https://as.example/bc"`
	tests := []struct {
		name    string
		backend string
		profile func(*obprofile.Config)
		want    map[string]any // fields of the published document; nil = absent
		wantErr []string       // substrings of the error
	}{{
		name:    "backend omits every field",
		backend: `{}`,
		want: map[string]any{
			"token_endpoint_auth_methods_supported":            []any{"tls_client_auth", "private_key_jwt"},
			"token_endpoint_auth_signing_alg_values_supported": []any{"PS256", "ES256"},
			"request_object_signing_alg_values_supported":      []any{"PS256", "ES256"},
			"id_token_signing_alg_values_supported":            []any{"PS256", "ES256"},
			// Without a backchannel endpoint the backend cannot serve CIBA.
			"grant_types_supported":                      []any{"authorization_code", "client_credentials", "refresh_token"},
			"response_types_supported":                   []any{"code", "code id_token"},
			"scopes_supported":                           []any{"openid", "accounts", "payments", "fundsconfirmations"},
			"tls_client_certificate_bound_access_tokens": true,
			"backchannel_token_delivery_modes_supported": nil,
		},
	}, {
		name: "backend publishes a superset",
		backend: `{"token_endpoint_auth_methods_supported":["none","client_secret_basic","private_key_jwt","tls_client_auth"],
			"token_endpoint_auth_signing_alg_values_supported":["RS256","ES256","PS256","HS256"],
			"request_object_signing_alg_values_supported":["none","RS256","ES256","PS256"],
			"id_token_signing_alg_values_supported":["RS256","ES256","PS256"],
			"grant_types_supported":["implicit","refresh_token","client_credentials","authorization_code","urn:openid:params:grant-type:ciba"],
			"response_types_supported":["id_token","id_token code","code","code token"],
			"scopes_supported":["openid","offline_access","accounts","payments","fundsconfirmations"],
			"tls_client_certificate_bound_access_tokens":true,
			"backchannel_token_delivery_modes_supported":["push","ping","poll"],
			"backchannel_authentication_request_signing_alg_values_supported":["RS256","PS256","ES256"],
			"backchannel_user_code_parameter_supported":true,` + ciba + `}`,
		want: map[string]any{ // in the profile's order
			"token_endpoint_auth_methods_supported":                           []any{"tls_client_auth", "private_key_jwt"},
			"token_endpoint_auth_signing_alg_values_supported":                []any{"PS256", "ES256"},
			"request_object_signing_alg_values_supported":                     []any{"PS256", "ES256"},
			"id_token_signing_alg_values_supported":                           []any{"PS256", "ES256"},
			"grant_types_supported":                                           []any{"authorization_code", "client_credentials", "refresh_token", "urn:openid:params:grant-type:ciba"},
			"response_types_supported":                                        []any{"code", "code id_token"},
			"scopes_supported":                                                []any{"openid", "accounts", "payments", "fundsconfirmations"},
			"tls_client_certificate_bound_access_tokens":                      true,
			"backchannel_token_delivery_modes_supported":                      []any{"poll", "ping"},
			"backchannel_authentication_request_signing_alg_values_supported": []any{"PS256", "ES256"},
			"backchannel_user_code_parameter_supported":                       false,
		},
	}, {
		name: "backend publishes a subset",
		backend: `{"token_endpoint_auth_methods_supported":["tls_client_auth"],
			"request_object_signing_alg_values_supported":["ES256"],
			"id_token_signing_alg_values_supported":["PS256"],
			"grant_types_supported":["client_credentials"],
			"response_types_supported":["id_token code"],
			"scopes_supported":["openid","accounts"],
			"backchannel_token_delivery_modes_supported":["poll"]}`,
		want: map[string]any{
			"token_endpoint_auth_methods_supported": []any{"tls_client_auth"},
			// Meaningless without private_key_jwt: not published.
			"token_endpoint_auth_signing_alg_values_supported": nil,
			"request_object_signing_alg_values_supported":      []any{"ES256"},
			"id_token_signing_alg_values_supported":            []any{"PS256"},
			"grant_types_supported":                            []any{"client_credentials"},
			"response_types_supported":                         []any{"code id_token"},
			"scopes_supported":                                 []any{"openid", "accounts"},
			// No CIBA grant published: its fields go.
			"backchannel_token_delivery_modes_supported": nil,
		},
	}, {
		name:    "a wider dcr profile is published as far as the backend goes",
		backend: `{"token_endpoint_auth_methods_supported":["client_secret_jwt","private_key_jwt","client_secret_basic"]}`,
		profile: func(p *obprofile.Config) {
			p.AuthMethods = []string{"private_key_jwt", "client_secret_jwt", "client_secret_post"}
			p.SigningAlgs = []string{"ES256"}
		},
		want: map[string]any{
			"token_endpoint_auth_methods_supported":            []any{"private_key_jwt", "client_secret_jwt"},
			"token_endpoint_auth_signing_alg_values_supported": []any{"ES256", "HS256", "HS384", "HS512"},
			"id_token_signing_alg_values_supported":            []any{"ES256"},
		},
	}, {
		name:    "backend false keeps tokens unbound",
		backend: `{"tls_client_certificate_bound_access_tokens":false}`,
		want:    map[string]any{"tls_client_certificate_bound_access_tokens": false},
	}}
	disjoint := []struct{ field, backend, gateway string }{
		{"token_endpoint_auth_methods_supported", `["client_secret_basic","none"]`, "tls_client_auth, private_key_jwt"},
		{"token_endpoint_auth_signing_alg_values_supported", `["RS256","HS256"]`, "PS256, ES256"},
		{"request_object_signing_alg_values_supported", `["none","RS256"]`, "PS256, ES256"},
		{"id_token_signing_alg_values_supported", `["RS256"]`, "PS256, ES256"},
		{"grant_types_supported", `["implicit","password"]`, "authorization_code, client_credentials, refresh_token, urn:openid:params:grant-type:ciba"},
		{"response_types_supported", `["id_token","token id_token"]`, "code, code id_token"},
		{"scopes_supported", `["profile","email"]`, "openid, accounts, payments, fundsconfirmations"},
		{"backchannel_token_delivery_modes_supported", `["push"]`, "poll, ping"},
		{"backchannel_authentication_request_signing_alg_values_supported", `["RS256"]`, "PS256, ES256"},
	}
	for _, d := range disjoint {
		tests = append(tests, struct {
			name    string
			backend string
			profile func(*obprofile.Config)
			want    map[string]any
			wantErr []string
		}{
			name:    "disjoint " + d.field,
			backend: `{"` + d.field + `":` + d.backend + `,` + ciba + `}`,
			wantErr: []string{d.field, "the dcr handler's OB profile: " + d.gateway, "the backend publishes: " + strings.Trim(strings.ReplaceAll(strings.ReplaceAll(d.backend, `"`, ""), ",", ", "), "[]")},
		})
	}
	tests = append(tests, []struct {
		name    string
		backend string
		profile func(*obprofile.Config)
		want    map[string]any
		wantErr []string
	}{
		{name: "an empty backend list", backend: `{"scopes_supported":[]}`, wantErr: []string{"scopes_supported", "the backend publishes: nothing"}},
		{name: "not a list", backend: `{"grant_types_supported":"client_credentials"}`, wantErr: []string{"grant_types_supported is not a JSON array"}},
		{name: "only CIBA, no backchannel endpoint", backend: `{}`, profile: func(p *obprofile.Config) { p.GrantTypes = []string{obprofile.GrantCIBA} },
			wantErr: []string{"grant_types_supported", "no backchannel_authentication_endpoint"}},
	}...)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tt.backend), &m); err != nil {
				t.Fatal(err)
			}
			p := defaultProfile()
			if tt.profile != nil {
				tt.profile(p)
			}
			before := *defaultProfile()
			_, err := applyProfile(m, p)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; published %v", m)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// What a client reads: the document as JSON.
			b, _ := json.Marshal(m)
			var got map[string]any
			_ = json.Unmarshal(b, &got)
			for field, want := range tt.want {
				if v, ok := got[field]; want == nil && ok {
					t.Errorf("%s = %v, want it absent", field, v)
				} else if want != nil && !reflect.DeepEqual(v, want) {
					t.Errorf("%s = %v, want %v", field, v, want)
				}
			}
			if tt.profile == nil && !reflect.DeepEqual(*p, before) {
				t.Errorf("the profile was modified: %+v", *p)
			}
		})
	}
}

// TestDiscoveryConflictAnswer: nothing in common answers 502 with an RFC 7591 error naming
// the field and both lists, logged once however many times the document is fetched.
func TestDiscoveryConflictAnswer(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	d := &Discovery{}
	if err := d.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	d.logger = zap.New(core)
	backend := jsonBackend(`{"issuer":"https://as.example","id_token_signing_alg_values_supported":["RS256"]}`)
	for range 3 {
		w := serveDiscovery(t, d, DefaultDiscoveryPath, backend)
		var e struct{ Error, ErrorDescription string }
		_ = json.Unmarshal(w.Body.Bytes(), &struct {
			E *string `json:"error"`
			D *string `json:"error_description"`
		}{&e.Error, &e.ErrorDescription})
		if w.Code != http.StatusBadGateway || w.Header().Get("Content-Type") != "application/json" || e.Error != "server_error" ||
			!strings.Contains(e.ErrorDescription, "id_token_signing_alg_values_supported has no value") ||
			!strings.Contains(e.ErrorDescription, "PS256, ES256") || !strings.Contains(e.ErrorDescription, "publishes: RS256") {
			t.Fatalf("answer %d %v %s", w.Code, w.Header(), w.Body)
		}
	}
	if n := logs.FilterMessage("the discovery document cannot be published").Len(); n != 1 {
		t.Fatalf("the conflict was logged %d times, want once: %v", n, logs.All())
	}
	// And the warning that no dcr handler was found, once as well.
	if n := logs.FilterMessageSnippet("no dcr handler in this server").Len(); n != 1 {
		t.Fatalf("the fallback warning was logged %d times, want once", n)
	}
}

// TestDiscoveryFollowsDCRProfile: the profile and endpoint come from the dcr handler of the
// request's server, the nearest one when there are several, and go away with its Cleanup.
func TestDiscoveryFollowsDCRProfile(t *testing.T) {
	srv, other := new(caddyhttp.Server), new(caddyhttp.Server)
	app, siteA, siteB := new(caddyhttp.App), new(caddyhttp.Subroute), new(caddyhttp.Subroute)
	profile := func(methods ...string) obprofile.Config {
		p := obprofile.Config{AuthMethods: methods}
		p.SetDefaults()
		return p
	}
	// What Handler.Provision publishes, with the parent modules Caddy's context would hold.
	publish := func(s *caddyhttp.Server, scope []caddy.Module, endpoint, publicURL string, p obprofile.Config) func() {
		return dcrProfiles.add(&publishedProfile{server: s, scope: scope, Endpoint: endpoint, PublicURL: publicURL, Profile: p})
	}
	withdrawA := publish(srv, []caddy.Module{app, siteA}, "/register", "", profile("private_key_jwt"))
	defer withdrawA()
	withdrawB := publish(srv, []caddy.Module{app, siteB}, "/register", "https://b.example/ob/register/", profile("tls_client_auth"))
	defer withdrawB()
	withdrawOther := publish(other, []caddy.Module{app}, "/dcr", "", profile("client_secret_basic"))
	defer withdrawOther()

	serve := func(d *Discovery, server *caddyhttp.Server) map[string]any {
		t.Helper()
		w := httptest.NewRecorder()
		if err := d.ServeHTTP(w, discoveryRequest(DefaultDiscoveryPath, server), jsonBackend(backendDiscovery)); err != nil {
			t.Fatal(err)
		}
		return decodeDocument(t, w)
	}
	// A Discovery provisioned in a server under scope.
	provisioned := func(d *Discovery, scope ...caddy.Module) *Discovery {
		t.Helper()
		if err := d.Provision(caddy.Context{}); err != nil {
			t.Fatal(err)
		}
		d.scope = scope
		return d
	}
	inA := provisioned(&Discovery{}, app, siteA)
	inB := provisioned(&Discovery{}, app, siteB)
	for _, c := range []struct {
		name     string
		d        *Discovery
		server   *caddyhttp.Server
		methods  []any
		endpoint string
	}{
		{"site A", inA, srv, []any{"private_key_jwt"}, "https://gw.example:8443/register"},
		{"site B, public_url", inB, srv, []any{"tls_client_auth"}, "https://b.example/ob/register"},
		{"another server", inA, other, []any{"client_secret_basic"}, "https://gw.example:8443/dcr"},
	} {
		got := serve(c.d, c.server)
		if !reflect.DeepEqual(got["token_endpoint_auth_methods_supported"], c.methods) || got["registration_endpoint"] != c.endpoint {
			t.Errorf("%s: methods %v, registration_endpoint %v; want %v, %s", c.name, got["token_endpoint_auth_methods_supported"],
				got["registration_endpoint"], c.methods, c.endpoint)
		}
	}
	// A configured registration_endpoint picks the dcr handler with that endpoint path.
	byPath := provisioned(&Discovery{RegistrationEndpoint: "https://{http.request.hostport}/dcr"}, app)
	if got := serve(byPath, other); !reflect.DeepEqual(got["token_endpoint_auth_methods_supported"], []any{"client_secret_basic"}) {
		t.Errorf("by endpoint path: %v", got["token_endpoint_auth_methods_supported"])
	}

	// Withdrawn (the config was unloaded): site A's document falls back to site B's handler
	// of the same server, then to the defaults.
	withdrawA()
	if got := serve(inA, srv); !reflect.DeepEqual(got["token_endpoint_auth_methods_supported"], []any{"tls_client_auth"}) {
		t.Errorf("after site A's cleanup: %v", got["token_endpoint_auth_methods_supported"])
	}
	withdrawB()
	if got := serve(inA, srv); !reflect.DeepEqual(got["token_endpoint_auth_methods_supported"], []any{"tls_client_auth", "private_key_jwt"}) {
		t.Errorf("without dcr handlers: %v", got["token_endpoint_auth_methods_supported"])
	}
}
