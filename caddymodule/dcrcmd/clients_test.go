package dcrcmd

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// The operator's CLI against the real binary: a TPP registers, `caddy dcr clients` lists,
// shows (no secret), traces and deletes it, and the TPP's token is refused afterwards.
func TestClientsCommandsAgainstTheGateway(t *testing.T) {
	adminPort := gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: gatewaytest.DefaultDCRBlock, DefaultStore: true, AdminPort: adminPort})
	address := fmt.Sprintf("127.0.0.1:%d", adminPort)
	c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(1), g.Endpoint, g.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := gatewaytest.Context(t)
	r := registerAs(t, g, 1)
	if r.Status != 201 {
		t.Fatalf("register: %v", r)
	}
	st, err := tppclient.StateFromResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	orgID := g.Sandbox.TPP(1).OrgID

	cli := func(wantCode int, args ...string) string {
		t.Helper()
		return operatorCLI(t, g, address, wantCode, args...)
	}

	out := cli(0, "list")
	if !strings.Contains(out, "CLIENT_ID") || !strings.Contains(out, st.ClientID) || !strings.Contains(out, orgID) || !strings.Contains(out, "1 client(s)") {
		t.Errorf("list:\n%s", out)
	}
	if out := cli(0, "list", "--org-id", "some-other-org"); strings.Contains(out, st.ClientID) || !strings.Contains(out, "0 client(s)") {
		t.Errorf("list --org-id some-other-org:\n%s", out)
	}
	var page struct {
		Clients []map[string]any `json:"clients"`
	}
	if err := json.Unmarshal([]byte(cli(0, "list", "--org-id", orgID, "--json")), &page); err != nil || len(page.Clients) != 1 || page.Clients[0]["client_id"] != st.ClientID {
		t.Errorf("list --json = %+v, %v", page, err)
	}

	out = cli(0, "show", st.ClientID)
	if !strings.Contains(out, st.ClientID) || !strings.Contains(out, g.Sandbox.TPP(1).TransportSubjectDN) {
		t.Errorf("show:\n%s", out)
	}
	for _, secret := range []string{st.RegistrationAccessToken, "registration_token_hash", "client_secret", "software_statement"} {
		if strings.Contains(out, secret) || strings.Contains(cli(0, "show", st.ClientID, "--json"), secret) {
			t.Errorf("show has %q", secret)
		}
	}
	if out := cli(0, "history", st.ClientID); !strings.Contains(out, "registered") {
		t.Errorf("history:\n%s", out)
	}

	// Bad input is refused and changes nothing.
	if out := cli(1, "list", "--status", "gone"); !strings.Contains(out, "invalid_request") {
		t.Errorf("list --status gone:\n%s", out)
	}
	if out := cli(1, "show", "no-such-client"); !strings.Contains(out, "not_found") {
		t.Errorf("show no-such-client:\n%s", out)
	}
	cli(2, "show")

	if out := cli(0, "delete", st.ClientID); !strings.Contains(out, "Deleted "+st.ClientID) {
		t.Errorf("delete:\n%s", out)
	}
	if r, err := c.Get(ctx, st.ClientID, st.RegistrationAccessToken); err != nil || r.Status != 401 {
		t.Errorf("the TPP's GET after the operator's delete = %v %v, want 401", r, err)
	}
	if out := cli(0, "list"); strings.Contains(out, st.ClientID) {
		t.Errorf("list after delete:\n%s", out)
	}
	if out := cli(0, "list", "--status", "deleted"); !strings.Contains(out, st.ClientID) {
		t.Errorf("list --status deleted:\n%s", out)
	}
	out = cli(0, "history", st.ClientID)
	if !strings.Contains(out, "deleted") || !strings.Contains(out, "local admin") {
		t.Errorf("history after delete:\n%s", out)
	}
	if !strings.Contains(g.Logs(), `"actor":"local admin"`) {
		t.Errorf("the delete is not audited with the operator:\n%s", g.Logs())
	}
}
