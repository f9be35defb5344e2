package examples_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/dcrgate/dcrgate"
)

// placeholders are the environment variables of the example Caddyfiles (the shared contract
// of `make run`, `make run-upstream` and the tests).
var placeholders = []string{"DCRGATE_PORT", "DCRGATE_HTTP_PORT", "DCRGATE_ADMIN", "DCRGATE_BACKEND_PORT", "DCRGATE_SANDBOX"}

// adapt adapts a Caddyfile of the repository and returns every string and number in the
// JSON, except below the dcr_discovery handler (its registration_endpoint line belongs to that
// module's own work), as text.
func adapt(t *testing.T, name string) []string {
	t.Helper()
	path := filepath.Join("..", name)
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": path})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	var values []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "dcr_discovery" {
				return
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			values = append(values, v)
		case float64:
			values = append(values, fmt.Sprint(v))
		}
	}
	walk(v)
	return values
}

func containing(values []string, part string) []string {
	var out []string
	for _, v := range values {
		if strings.Contains(v, part) {
			out = append(out, v)
		}
	}
	return out
}

func TestCaddyfilesDefaultsWithoutEnv(t *testing.T) {
	for _, name := range placeholders {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	for file, backend := range map[string]string{"Caddyfile": "localhost:9080", "examples/Caddyfile.upstream": "127.0.0.1:3000"} {
		values := adapt(t, file)
		for _, want := range []string{":8443", "8080", "localhost:2019", backend, "sandbox/ca/bundle.pem",
			"sandbox/server/cert.pem", "sandbox/directory/jwks.json", "sandbox/jwks", "https://localhost:8443", "localhost:8443"} {
			if !slices.Contains(values, want) {
				t.Errorf("%s without the env vars: no %q in the adapted config", file, want)
			}
		}
	}
}

func TestCaddyfilesFollowEnv(t *testing.T) {
	sandbox := filepath.Join(t.TempDir(), "sb")
	env := map[string]string{"DCRGATE_PORT": "19443", "DCRGATE_HTTP_PORT": "19080", "DCRGATE_ADMIN": "127.0.0.1:12019",
		"DCRGATE_BACKEND_PORT": "13001", "DCRGATE_SANDBOX": sandbox}
	for k, v := range env {
		t.Setenv(k, v)
	}
	for file, backend := range map[string]string{"Caddyfile": "localhost:13001", "examples/Caddyfile.upstream": "127.0.0.1:13001"} {
		values := adapt(t, file)
		for _, want := range []string{":19443", "19080", "127.0.0.1:12019", backend, sandbox + "/ca/bundle.pem",
			sandbox + "/server/cert.pem", sandbox + "/server/key.pem", sandbox + "/directory/jwks.json", sandbox + "/jwks",
			"https://localhost:19443", "localhost:19443"} {
			if !slices.Contains(values, want) {
				t.Errorf("%s with the env vars: no %q in the adapted config", file, want)
			}
		}
		// Nothing of the defaults is left: every port, address and path follows the variables.
		for _, def := range []string{"8443", "8080", ":2019", ":3000", ":9080"} {
			if got := containing(values, def); len(got) > 0 {
				t.Errorf("%s with the env vars still has %q: %q", file, def, got)
			}
		}
		for _, v := range values {
			if strings.HasPrefix(v, "sandbox/") {
				t.Errorf("%s with DCRGATE_SANDBOX set still has the default path %q", file, v)
			}
		}
		if got := containing(values, "/token/introspection"); file == "examples/Caddyfile.upstream" &&
			!slices.Contains(got, "https://localhost:19443/token/introspection") {
			t.Errorf("introspection URL does not follow DCRGATE_PORT: %q", got)
		}
	}
}
