package caddymodule_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// cli runs `caddy dcr <args>` for TPP 1 of the gateway's sandbox and returns its exit code and
// output.
func cli(t *testing.T, g *gatewaytest.Gateway, args ...string) (int, string) {
	t.Helper()
	full := append([]string{"dcr"}, args...)
	full = append(full, "--sandbox", g.Sandbox.Dir, "--endpoint", g.Endpoint)
	cmd := exec.Command(gatewaytest.Binary(t), full...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestLifecycleThroughCLI is what a TPP does with the binary: register, read, update, then the
// gateway restarts and the registration is still there; delete; gone.
func TestLifecycleThroughCLI(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1})
	state := filepath.Join(g.Sandbox.TPP(1).Dir, "registration.json")

	code, out := cli(t, g, "register")
	if code != 0 || !strings.Contains(out, "201") {
		t.Fatalf("register: exit %d\n%s\n%s", code, out, g.Logs())
	}
	st, err := tppclient.LoadState(state)
	if err != nil || st.ClientID == "" || st.RegistrationAccessToken == "" {
		t.Fatalf("state after register: %+v %v", st, err)
	}
	if !strings.Contains(out, st.ClientID) {
		t.Fatalf("register output lacks the client_id:\n%s", out)
	}

	if code, out = cli(t, g, "get"); code != 0 || !strings.Contains(out, "200") || !strings.Contains(out, st.ClientID) {
		t.Fatalf("get: exit %d\n%s", code, out)
	}
	if code, out = cli(t, g, "update", "--claim", "scope=openid accounts"); code != 0 || !strings.Contains(out, "200") {
		t.Fatalf("update: exit %d\n%s", code, out)
	}

	g.Restart()
	code, out = cli(t, g, "get")
	if code != 0 || !strings.Contains(out, "200") || !strings.Contains(out, `"accounts openid"`) {
		t.Fatalf("get after restart: exit %d\n%s", code, out)
	}

	// A rejected request is a non-zero exit with the RFC 7591 error on stdout.
	if code, out = cli(t, g, "update", "--claim", "aud=https://other.example"); code != 1 || !strings.Contains(out, "invalid_client_metadata") {
		t.Fatalf("bad update: exit %d\n%s", code, out)
	}

	if code, out = cli(t, g, "delete"); code != 0 || !strings.Contains(out, "204") {
		t.Fatalf("delete: exit %d\n%s", code, out)
	}
	code, out = cli(t, g, "get", "--client-id", st.ClientID, "--token", st.RegistrationAccessToken)
	if code != 1 || !strings.Contains(out, "401") || !strings.Contains(out, "invalid_token") {
		t.Fatalf("get after delete: exit %d\n%s", code, out)
	}
	// Non-DCR traffic reaches the backend untouched.
	c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(1), g.Endpoint, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTP.Get(g.BaseURL + "/open-banking/v3.1/aisp/accounts?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body := readJSONOrText(t, resp)
	if resp.StatusCode != 200 || body != "backend: GET /open-banking/v3.1/aisp/accounts?x=1" {
		t.Fatalf("pass-through: %d %q", resp.StatusCode, body)
	}
}
