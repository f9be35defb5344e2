package dcrcmd

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// operatorCLI runs `caddy dcr clients ARGS --address ADDRESS` on g and checks its exit code.
func operatorCLI(t *testing.T, g *gatewaytest.Gateway, address string, wantCode int, args ...string) string {
	t.Helper()
	cmd := g.Command(append(append([]string{"dcr", "clients"}, args...), "--address", address)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != wantCode {
		t.Fatalf("caddy dcr clients %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	return string(out)
}

// registerAs registers a new client for TPP index and returns the answer.
func registerAs(t *testing.T, g *gatewaytest.Gateway, index int) *tppclient.Response {
	t.Helper()
	c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(index), g.Endpoint, g.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Register(gatewaytest.Context(t), body, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStrikeOffAgainstTheGateway: two orgs, three registrations of org A and one of org B;
// `caddy dcr clients revoke --org A` removes A's three, leaves B's, refuses A's next
// registration with the documented error, says 0 the second time; `lift` lets A register
// again. Each step through the real binary, its admin endpoint and the CLI.
func TestStrikeOffAgainstTheGateway(t *testing.T) {
	adminPort := gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: gatewaytest.DefaultDCRBlock, DefaultStore: true, AdminPort: adminPort})
	address := fmt.Sprintf("127.0.0.1:%d", adminPort)
	orgA, orgB := g.Sandbox.TPP(1).OrgID, g.Sandbox.TPP(2).OrgID
	var idsA []string
	var tokenA string
	for range 3 {
		r := registerAs(t, g, 1)
		if r.Status != 201 {
			t.Fatalf("register A: %d %v", r.Status, r.JSON)
		}
		idsA = append(idsA, r.JSON["client_id"].(string))
		tokenA = r.JSON["registration_access_token"].(string)
	}
	rb := registerAs(t, g, 2)
	if rb.Status != 201 {
		t.Fatalf("register B: %d %v", rb.Status, rb.JSON)
	}
	idB := rb.JSON["client_id"].(string)

	// Bad input: usage errors exit 2 and change nothing.
	operatorCLI(t, g, address, 2, "revoke")
	operatorCLI(t, g, address, 2, "revoke", "--org", orgA, "--software", "x")
	if out := operatorCLI(t, g, address, 0, "list", "--org-id", orgA); !strings.Contains(out, "3 client(s)") {
		t.Fatalf("after bad input:\n%s", out)
	}

	out := operatorCLI(t, g, address, 0, "revoke", "--org", orgA, "--reason", "FCA notice 42")
	if !strings.Contains(out, "3 deleted, 0 not deleted") || !strings.Contains(out, "deny list entry recorded") {
		t.Errorf("revoke:\n%s", out)
	}
	for _, id := range idsA {
		if !strings.Contains(out, id+"  deleted") {
			t.Errorf("revoke does not list %s as deleted:\n%s", id, out)
		}
	}
	if out := operatorCLI(t, g, address, 0, "list", "--org-id", orgA); !strings.Contains(out, "0 client(s)") {
		t.Errorf("org A after the strike-off:\n%s", out)
	}
	if out := operatorCLI(t, g, address, 0, "list", "--org-id", orgB); !strings.Contains(out, idB) || !strings.Contains(out, "1 client(s)") {
		t.Errorf("org B after the strike-off:\n%s", out)
	}
	// The struck-off client's management call is 401; its history says who and why.
	cA, _ := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(1), g.Endpoint, g.BaseURL)
	if r, err := cA.Get(gatewaytest.Context(t), idsA[2], tokenA); err != nil || r.Status != 401 {
		t.Errorf("GET of a struck-off client = %v %v, want 401", r, err)
	}
	if out := operatorCLI(t, g, address, 0, "history", idsA[0]); !strings.Contains(out, "struck off: FCA notice 42") || !strings.Contains(out, "local admin") {
		t.Errorf("history of a struck-off client:\n%s", out)
	}
	// A new registration of org A is refused, by the default policy's struck_off rule.
	r := registerAs(t, g, 1)
	if r.Status != 400 || r.JSON["error"] != "invalid_software_statement" ||
		!strings.Contains(fmt.Sprint(r.JSON["error_description"]), fmt.Sprintf("org_id %q is struck off", orgA)) {
		t.Fatalf("register A while struck off = %d %v", r.Status, r.JSON)
	}
	if strings.Contains(fmt.Sprint(r.JSON), "FCA notice") {
		t.Errorf("the TPP sees the operator's reason: %v", r.JSON)
	}
	if r := registerAs(t, g, 2); r.Status != 201 {
		t.Errorf("register B while A is struck off = %d %v", r.Status, r.JSON)
	}

	// Idempotent.
	if out := operatorCLI(t, g, address, 0, "revoke", "--org", orgA, "--reason", "again"); !strings.Contains(out, "0 deleted") ||
		!strings.Contains(out, "already recorded") || !strings.Contains(out, `"FCA notice 42"`) {
		t.Errorf("second revoke:\n%s", out)
	}
	out = operatorCLI(t, g, address, 0, "denylist")
	if !strings.Contains(out, "org_id") || !strings.Contains(out, orgA) || !strings.Contains(out, "FCA notice 42") || !strings.Contains(out, "1 entries") {
		t.Errorf("denylist:\n%s", out)
	}
	var list struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal([]byte(operatorCLI(t, g, address, 0, "denylist", "--json")), &list); err != nil || len(list.Entries) != 1 || list.Entries[0]["id"] != orgA {
		t.Errorf("denylist --json = %+v, %v", list, err)
	}
	if out := operatorCLI(t, g, address, 1, "lift", "--software", "never-struck-off"); !strings.Contains(out, "not_found") {
		t.Errorf("lift of an unknown entry:\n%s", out)
	}

	if out := operatorCLI(t, g, address, 0, "lift", "--org", orgA); !strings.Contains(out, "Lifted org_id "+orgA) {
		t.Errorf("lift:\n%s", out)
	}
	if r := registerAs(t, g, 1); r.Status != 201 {
		t.Fatalf("register A after the lift = %d %v", r.Status, r.JSON)
	}
	if out := operatorCLI(t, g, address, 0, "denylist"); !strings.Contains(out, "0 entries") {
		t.Errorf("denylist after the lift:\n%s", out)
	}
	logs := g.Logs()
	for _, want := range []string{`"dcr admin strike_off"`, `"reason":"FCA notice 42"`, `"dcr admin lift"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the gateway's log lacks %s", want)
		}
	}
}

// TestStrikeOffWithoutPolicy: with default_policy off no Rego runs, and the handler's own deny
// list check refuses a struck-off software.
func TestStrikeOffWithoutPolicy(t *testing.T) {
	adminPort := gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: gatewaytest.DefaultDCRBlock + "\n\t\tdefault_policy off\n",
		DefaultStore: true, AdminPort: adminPort})
	address := fmt.Sprintf("127.0.0.1:%d", adminPort)
	if r := registerAs(t, g, 1); r.Status != 201 {
		t.Fatalf("register: %d %v", r.Status, r.JSON)
	}
	software := g.Sandbox.TPP(1).SoftwareID
	if out := operatorCLI(t, g, address, 0, "revoke", "--software", software); !strings.Contains(out, "1 deleted") {
		t.Fatalf("revoke --software:\n%s", out)
	}
	r := registerAs(t, g, 1)
	if r.Status != 400 || r.JSON["error"] != "invalid_software_statement" ||
		!strings.Contains(fmt.Sprint(r.JSON["error_description"]), fmt.Sprintf("software_id %q is struck off", software)) {
		t.Fatalf("register while struck off, no policy = %d %v", r.Status, r.JSON)
	}
	operatorCLI(t, g, address, 0, "lift", "--software", software)
	if r := registerAs(t, g, 1); r.Status != 201 {
		t.Fatalf("register after the lift = %d %v", r.Status, r.JSON)
	}
}
