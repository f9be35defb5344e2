package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// The console in a real browser, through the real gateway: two orgs register over mTLS, one
// client is updated; the page behind basic_auth lists both, filters by org from its URL,
// shows a client's history and counts the outcomes (an operator's delete too, across a
// reload). On the admin endpoint, a browser is refused until the admin origins allow a
// navigation without Origin or Referer.
func TestConsoleInChromium(t *testing.T) {
	gatewaytest.SkipInShortMode(t, "the gateway and chromium")
	hash, err := bcrypt.GenerateFromPassword([]byte("console-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	adminPort := gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, gatewaytest.Options{AdminPort: adminPort, SiteDirectives: fmt.Sprintf(`
	handle_path /console/* {
		basic_auth {
			operator %s
		}
		dcr_console
	}`, hash)})
	ctx := gatewaytest.Context(t)

	type registered struct{ clientID, token, orgID string }
	var regs []registered
	clients := map[int]*tppclient.Client{}
	for _, i := range []int{1, 2} {
		c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(i), g.Endpoint, g.BaseURL)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Register(ctx, body, "", "")
		if err != nil || r.Status != 201 {
			t.Fatalf("register TPP %d: %v %v", i, r, err)
		}
		st, err := tppclient.StateFromResponse(r)
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, registered{st.ClientID, st.RegistrationAccessToken, g.Sandbox.TPP(i).OrgID})
	}
	if regs[0].orgID == regs[1].orgID {
		t.Fatal("the sandbox gave both TPPs one org")
	}
	body, err := clients[1].Sign(clients[1].Claims(), tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := clients[1].Update(ctx, regs[0].clientID, regs[0].token, body); err != nil || r.Status != 200 {
		t.Fatalf("update: %v %v", r, err)
	}
	// One rejected registration: an unsigned request.
	unsigned, err := clients[2].Sign(clients[2].Claims(), tppclient.SignOptions{Alg: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := clients[2].Register(ctx, unsigned, "", ""); err != nil || r.Status != 400 {
		t.Fatalf("unsigned register: %v %v", r, err)
	}

	base := fmt.Sprintf("https://operator:console-pass@localhost:%d/console/", g.Port)
	has := func(dom, clientID string) bool { return strings.Contains(dom, `data-client-id="`+clientID+`"`) }

	// The registry: both clients, the counts of this process.
	dom := gatewaytest.Chromium(t, base, "")
	if !strings.Contains(dom, `data-ready="true"`) || !has(dom, regs[0].clientID) || !has(dom, regs[1].clientID) {
		t.Fatalf("the console does not list both clients:\n%s", dom)
	}
	for id, want := range map[string]string{"count-registered": "2", "count-updated": "1", "count-deleted": "0", "count-rejected": "1"} {
		if !strings.Contains(dom, `<td id="`+id+`">`+want+`</td>`) {
			t.Errorf("counts: want %s = %s:\n%s", id, want, dom)
		}
	}
	if !strings.Contains(dom, `<tr data-error="`) {
		t.Errorf("counts by error code show no rejection:\n%s", dom)
	}
	noSecrets(t, dom, regs[0].token, regs[1].token)

	// Filtered by org from the URL: only that org's client.
	dom = gatewaytest.Chromium(t, base+"?org_id="+regs[1].orgID, "")
	if !strings.Contains(dom, `data-ready="true"`) || !has(dom, regs[1].clientID) || has(dom, regs[0].clientID) {
		t.Fatalf("?org_id=%s does not show only that org's client:\n%s", regs[1].orgID, dom)
	}

	// One client's detail and history.
	dom = gatewaytest.Chromium(t, base+"?client="+regs[0].clientID, "")
	if !strings.Contains(dom, `<tr data-event="registered">`) || !strings.Contains(dom, `<tr data-event="updated">`) ||
		!strings.Contains(dom, g.Sandbox.TPP(1).TransportSubjectDN) {
		t.Fatalf("the detail page lacks the history or the certificate subject:\n%s", dom)
	}
	if !strings.Contains(dom, `"redirect_uris"`) || !strings.Contains(dom, `"software_roles"`) {
		t.Errorf("the detail page lacks the metadata or the SSA claims:\n%s", dom)
	}
	noSecrets(t, dom, regs[0].token, regs[1].token)

	// Without the operator's password: refused by basic_auth, nothing of the registry.
	dom = gatewaytest.Chromium(t, fmt.Sprintf("https://localhost:%d/console/api/clients", g.Port), "")
	if has(dom, regs[0].clientID) || strings.Contains(dom, regs[0].clientID) {
		t.Fatalf("the console API answered without authentication:\n%s", dom)
	}

	// Screenshots of the list and of the detail; DCRGATE_CONSOLE_SCREENSHOT=docs/console.png
	// also writes the list's there (and the detail's beside it, -detail.png) for the docs.
	shots := t.TempDir()
	for name, url := range map[string]string{"console.png": base, "console-detail.png": base + "?client=" + regs[0].clientID} {
		shot := filepath.Join(shots, name)
		gatewaytest.Chromium(t, url, shot)
		info, err := os.Stat(shot)
		if err != nil || info.Size() < 10_000 {
			t.Fatalf("screenshot %s: %v %v", shot, info, err)
		}
		if dst := os.Getenv("DCRGATE_CONSOLE_SCREENSHOT"); dst != "" {
			if name != "console.png" {
				dst = strings.TrimSuffix(dst, ".png") + "-detail.png"
			}
			data, _ := os.ReadFile(shot)
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("screenshot: %s", shot)
	}

	// The admin endpoint's JSON for tools: the counts, no browser headers.
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	var counts struct {
		Scope  string `json:"scope"`
		Totals struct {
			Registered, Updated, Deleted, Rejected int
		} `json:"totals"`
	}
	getJSON(t, admin+"/dcr/counts", &counts)
	if counts.Scope != "process" || counts.Totals.Registered != 2 || counts.Totals.Updated != 1 || counts.Totals.Rejected != 1 {
		t.Errorf("GET /dcr/counts = %+v", counts)
	}
	// An operator's delete is counted; a reload keeps the counts.
	req, err := http.NewRequest(http.MethodDelete, admin+"/dcr/clients/"+regs[1].clientID, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("DELETE /dcr/clients/%s = %d", regs[1].clientID, resp.StatusCode)
	}
	if out, err := g.Command("reload", "--force", "--config", filepath.Join(g.Dir, "Caddyfile"), "--adapter", "caddyfile",
		"--address", fmt.Sprintf("127.0.0.1:%d", adminPort)).CombinedOutput(); err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	counts.Totals.Registered, counts.Totals.Updated, counts.Totals.Rejected = 0, 0, 0
	getJSON(t, admin+"/dcr/counts", &counts)
	if counts.Totals.Registered != 2 || counts.Totals.Updated != 1 || counts.Totals.Deleted != 1 || counts.Totals.Rejected != 1 {
		t.Errorf("GET /dcr/counts after a delete and a reload = %+v", counts)
	}

	// A browser on the admin endpoint: its navigation has neither Origin nor Referer, and
	// Caddy refuses it under the default origins.
	dom = gatewaytest.Chromium(t, admin+"/dcr/console/", "")
	if !strings.Contains(dom, "not allowed to access from origin") || has(dom, regs[0].clientID) {
		t.Fatalf("the admin endpoint served the console to a browser under the default origins:\n%s", dom)
	}
	// With the empty origin allowed (docs/console.md), it serves the page, whose own calls
	// carry a same-origin Referer.
	adminLine := fmt.Sprintf("admin 127.0.0.1:%d", adminPort)
	if !strings.Contains(g.Caddyfile, adminLine) {
		t.Fatalf("no %q in the Caddyfile", adminLine)
	}
	g.WriteCaddyfile(strings.Replace(g.Caddyfile, adminLine, fmt.Sprintf("%s {\n\t\torigins \"\" 127.0.0.1:%d localhost:%d\n\t}", adminLine, adminPort, adminPort), 1))
	g.Restart()
	dom = gatewaytest.Chromium(t, admin+"/dcr/console/", "")
	if !strings.Contains(dom, `data-ready="true"`) || !has(dom, regs[0].clientID) || has(dom, regs[1].clientID) {
		t.Fatalf("the admin endpoint's console with origins \"\" does not list the live client only:\n%s", dom)
	}
	if dom := gatewaytest.Chromium(t, admin+"/dcr/console/?status=deleted", ""); !has(dom, regs[1].clientID) || has(dom, regs[0].clientID) {
		t.Fatalf("the admin endpoint's console does not list the deleted client under ?status=deleted:\n%s", dom)
	}
	// The counts are the process's: the restarted gateway starts again.
	if !strings.Contains(dom, `<td id="count-registered">0</td>`) {
		t.Errorf("the restarted gateway's counts are not its own:\n%s", dom)
	}
}

// noSecrets fails t if dom holds a token or a credential's name as a JSON member.
func noSecrets(t *testing.T, dom string, tokens ...string) {
	t.Helper()
	for _, secret := range append(tokens, `"registration_access_token"`, `"registration_token_hash"`, `"client_secret"`,
		`"client_secret_hash"`, `"software_statement"`) {
		if strings.Contains(dom, secret) {
			t.Errorf("the page shows %q", secret)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, data)
	}
}
