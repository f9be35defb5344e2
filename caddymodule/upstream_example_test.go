package caddymodule_test

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestUpstreamExampleAdapts keeps examples/Caddyfile.upstream valid: the upstream registrar,
// the discovery rewrite and the forwarded certificate header, in that order around dcr.
func TestUpstreamExampleAdapts(t *testing.T) {
	data, err := os.ReadFile("../examples/Caddyfile.upstream")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(data, map[string]any{"filename": "Caddyfile.upstream"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{`"registrar":"upstream"`, `"handler":"dcr_discovery"`,
		`"X-Client-Cert":["{http.request.tls.client.certificate_der_base64}"]`, `"delete":["X-Client-Cert"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("adapted config lacks %s", want)
		}
	}
	// The header is removed before the proxy sets it: headers, then reverse_proxy.
	if strings.Index(s, `"delete":["X-Client-Cert"]`) > strings.Index(s, `"handler":"reverse_proxy"`) {
		t.Error("the client's X-Client-Cert is not removed before reverse_proxy")
	}
}
