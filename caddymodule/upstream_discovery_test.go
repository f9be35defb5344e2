package caddymodule_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr/obprofile"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
)

// discoverySiteDirectives are those of upstreamOptions with a bare dcr_discovery: the
// defaults need no lines.
const discoverySiteDirectives = `
	request_header -X-Client-Cert
	@backend_registration {
		path /reg /reg/*
		not vars dcr_registrar_call true
	}
	respond @backend_registration 404
	dcr_discovery`

// startDiscoveryGateway runs the upstream deployment with a bare dcr_discovery, the dcr block
// extended by extraDCR, in front of backend (or a new example provider when nil).
func startDiscoveryGateway(t *testing.T, extraDCR string, backend *gatewaytest.OIDCProvider, adminPort int) (*gatewaytest.Gateway, *gatewaytest.OIDCProvider) {
	t.Helper()
	port, backendPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	if backend != nil {
		backendPort = backend.Port
	}
	o := upstreamOptions(port, backendPort)
	o.SiteDirectives = discoverySiteDirectives
	o.DCRBlock += extraDCR
	o.AdminPort = adminPort
	g := gatewaytest.Start(t, o)
	if backend == nil {
		backend = gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{
			Issuer: g.BaseURL, InitialAccessToken: upstreamIAT, Port: backendPort,
			TrustedCAFile: g.Sandbox.Files.CABundle, GatewayClientID: "dcrgate", GatewayClientSecret: upstreamGatewaySecret,
		})
	}
	return g, backend
}

func getDiscovery(t *testing.T, g *gatewaytest.Gateway) (int, map[string]any) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustPool(t, g.Sandbox)}}}
	resp, err := hc.Get(g.BaseURL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readJSON(t, resp)
}

// backendDocument is the provider's own discovery document, fetched directly.
func backendDocument(t *testing.T, as *gatewaytest.OIDCProvider) map[string]any {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(as.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readJSON(t, resp)
}

// expectedList is the published-field rule, restated: the profile's values (in its order)
// that the backend lists, or all of them when the backend omits the field.
func expectedList(backend map[string]any, field string, profile []string) []any {
	l, ok := backend[field].([]any)
	out := []any{}
	for _, v := range profile {
		if !ok || slices.Contains(l, any(v)) {
			out = append(out, v)
		}
	}
	return out
}

// TestUpstreamDiscoveryPublishesProfile: in front of the real provider, a bare dcr_discovery
// publishes what dcr enforces. request_object_signing_alg_values_supported is PS256, ES256
// whether the provider publishes the field (request objects on) or not (off): an OB client
// never reads "none" from it.
func TestUpstreamDiscoveryPublishesProfile(t *testing.T) {
	g, as := startDiscoveryGateway(t, "", nil, 0)
	backend := backendDocument(t, as)
	_, hasRequestObjects := backend["request_object_signing_alg_values_supported"]
	t.Logf("the provider publishes request_object_signing_alg_values_supported: %v", hasRequestObjects)

	status, doc := getDiscovery(t, g)
	if status != http.StatusOK {
		t.Fatalf("discovery %d: %v\n%s", status, doc, g.Logs())
	}
	if doc["registration_endpoint"] != g.Endpoint || doc["issuer"] != g.BaseURL || doc["token_endpoint"] != g.BaseURL+"/token" {
		t.Fatalf("discovery: %v", doc)
	}
	var p obprofile.Config
	p.SetDefaults()
	want := map[string]any{
		"request_object_signing_alg_values_supported": []any{"PS256", "ES256"},
		"token_endpoint_auth_methods_supported":       []any{"tls_client_auth", "private_key_jwt"},
		// The provider lists implicit and no CIBA (it has no backchannel endpoint).
		"grant_types_supported":                      []any{"authorization_code", "client_credentials", "refresh_token"},
		"tls_client_certificate_bound_access_tokens": true,
	}
	for field, profile := range map[string][]string{
		"token_endpoint_auth_signing_alg_values_supported": p.SigningAlgs,
		"id_token_signing_alg_values_supported":            p.SigningAlgs,
		"response_types_supported":                         p.ResponseTypes,
		"scopes_supported":                                 p.Scopes,
	} {
		want[field] = expectedList(backend, field, profile)
	}
	for field, w := range want {
		if !reflect.DeepEqual(doc[field], w) {
			t.Errorf("%s = %v, want %v (the provider publishes %v)", field, doc[field], w, backend[field])
		}
	}
	for _, field := range []string{"backchannel_token_delivery_modes_supported", "backchannel_user_code_parameter_supported"} {
		if v, ok := doc[field]; ok {
			t.Errorf("%s = %v published without the CIBA grant", field, v)
		}
	}
	if strings.Contains(g.Logs(), "dcr_discovery") {
		t.Errorf("a bare dcr_discovery in front of the example provider logs a problem:\n%s", g.Logs())
	}
}

// TestUpstreamDiscoveryFollowsDCRProfile: the profile configured in dcr is what discovery
// publishes, without repeating it; a profile the backend shares nothing with is a 502 naming
// the field and both lists, logged once.
func TestUpstreamDiscoveryFollowsDCRProfile(t *testing.T) {
	adminPort := gatewaytest.FreePort(t)
	narrowed, as := startDiscoveryGateway(t, `
		profile {
			token_endpoint_auth_methods private_key_jwt
			signing_algs ES256
		}
`, nil, adminPort)
	status, doc := getDiscovery(t, narrowed)
	if status != http.StatusOK {
		t.Fatalf("discovery %d: %v\n%s", status, doc, narrowed.Logs())
	}
	for field, w := range map[string]any{
		"token_endpoint_auth_methods_supported":            []any{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []any{"ES256"},
		"id_token_signing_alg_values_supported":            []any{"ES256"},
		"request_object_signing_alg_values_supported":      []any{"ES256"},
	} {
		if !reflect.DeepEqual(doc[field], w) {
			t.Errorf("%s = %v, want %v", field, doc[field], w)
		}
	}

	// caddy reload with another profile: the document follows the new config's dcr handler.
	reloaded := strings.Replace(narrowed.Caddyfile, "signing_algs ES256", "signing_algs PS256", 1)
	if reloaded == narrowed.Caddyfile {
		t.Fatal("the profile is not in the Caddyfile")
	}
	path := filepath.Join(narrowed.Dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(reloaded), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gatewaytest.Binary(t), "reload", "--config", path, "--adapter", "caddyfile", "--address", fmt.Sprintf("127.0.0.1:%d", adminPort))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	if status, doc = getDiscovery(t, narrowed); status != http.StatusOK || !reflect.DeepEqual(doc["id_token_signing_alg_values_supported"], []any{"PS256"}) ||
		!reflect.DeepEqual(doc["token_endpoint_auth_methods_supported"], []any{"private_key_jwt"}) {
		t.Fatalf("after the reload: %d %v", status, doc)
	}

	// The provider signs with none of these: no client could use what it registers.
	disjoint, _ := startDiscoveryGateway(t, `
		profile {
			signing_algs PS384 ES384
		}
`, as, 0)
	for range 2 {
		status, doc = getDiscovery(t, disjoint)
		desc, _ := doc["error_description"].(string)
		if status != http.StatusBadGateway || doc["error"] != "server_error" ||
			!strings.Contains(desc, "the dcr handler's OB profile: PS384, ES384") || !strings.Contains(desc, "the backend publishes: ") {
			t.Fatalf("disjoint profile: %d %v", status, doc)
		}
	}
	field := strings.Fields(doc["error_description"].(string))[1]
	if !strings.HasSuffix(field, "_alg_values_supported") {
		t.Errorf("the error names %q, not an algorithm list", field)
	}
	logged := strings.Count(disjoint.Logs(), "the discovery document cannot be published")
	if logged != 1 {
		t.Errorf("the conflict was logged %d times after two fetches, want once:\n%s", logged, disjoint.Logs())
	}
	t.Logf("disjoint profile answer: %v", doc["error_description"])
}
