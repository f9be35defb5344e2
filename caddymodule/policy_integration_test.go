package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// startWithPolicy starts the real gateway with the default protections and a policy block;
// files are written to a directory the block refers to as {{POLICY}}.
func startWithPolicy(t *testing.T, tpps int, policyBlock string, files map[string]string) *gatewaytest.Gateway {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	block := gatewaytest.DefaultDCRBlock + "\n" + strings.ReplaceAll(policyBlock, "{{POLICY}}", dir) + "\n"
	return gatewaytest.Start(t, gatewaytest.Options{TPPs: tpps, DCRBlock: block})
}

// policyRegister sends a registration of TPP index with claim changes and returns the response.
func policyRegister(t *testing.T, g *gatewaytest.Gateway, index int, change map[string]any) *tppclient.Response {
	t.Helper()
	c := newClient(t, g, index)
	claims := c.Claims()
	for k, v := range change {
		claims[k] = v
	}
	res, err := c.Register(gatewaytest.Context(t), sign(t, c, claims, tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantRejected(t *testing.T, res *tppclient.Response, status int, code, description string) {
	t.Helper()
	if res.Status != status || res.JSON["error"] != code || !strings.Contains(fmt.Sprint(res.JSON["error_description"]), description) {
		t.Fatalf("got %d %s, want %d %s with %q", res.Status, res.Body, status, code, description)
	}
}

func wantCreated(t *testing.T, res *tppclient.Response) {
	t.Helper()
	if res.Status != http.StatusCreated {
		t.Fatalf("got %d %s, want 201", res.Status, res.Body)
	}
}

// TestPolicyDefaultRulesThroughServer runs the embedded default set, tuned with data, in the
// real server: every rule once denied (the response carries the rule's error and
// description) and once allowed.
func TestPolicyDefaultRulesThroughServer(t *testing.T) {
	g := startWithPolicy(t, 3, `policy {
			data {{POLICY}}/data.json
		}`, map[string]string{"data.json": "{}"})
	// The data names TPP 2's organisation, so it is written once the sandbox exists; the
	// gateway reads it on start, so restart it.
	data := fmt.Sprintf(`{"dcr":{"config":{
		"max_registrations_per_software": 2,
		"denied_org_ids": [%q]}}}`, g.Sandbox.TPP(2).OrgID)
	writePolicyFile(t, g, "data.json", data)
	g.Restart()

	t.Run("org_status", func(t *testing.T) {
		wantRejected(t, policyRegister(t, g, 1, map[string]any{"software_statement": ssaWith(t, g, map[string]any{"org_status": "Suspended"})}),
			400, "unapproved_software_statement", `org_status "Suspended" is not accepted`)
	})
	t.Run("registrations_limit", func(t *testing.T) {
		wantCreated(t, policyRegister(t, g, 1, map[string]any{"scope": "openid accounts"}))
		wantCreated(t, policyRegister(t, g, 1, map[string]any{"scope": "openid accounts"}))
		wantRejected(t, policyRegister(t, g, 1, map[string]any{"scope": "openid accounts"}), 400, "unapproved_software_statement", "already has 2 registrations (at most 2)")
	})
	t.Run("org_lists", func(t *testing.T) {
		wantRejected(t, policyRegister(t, g, 2, map[string]any{"scope": "openid accounts"}), 400, "unapproved_software_statement", "is not allowed to register")
		wantCreated(t, policyRegister(t, g, 3, map[string]any{"scope": "openid accounts"}))
	})
	logs := completeLogs(g)
	if !strings.Contains(logs, `"policy decision"`) || !strings.Contains(logs, `"outcome":"deny"`) || !strings.Contains(logs, `"outcome":"allow"`) {
		t.Fatalf("decision log lines missing:\n%s", logs)
	}
	ssa := newClient(t, g, 1).SoftwareStatement
	if strings.Contains(logs, ssa) {
		t.Fatal("the logs carry a software statement")
	}
}

// TestPolicyEnvironmentAndStatusThroughServer covers software_mode and org_status, which only
// the policy judges (the software_statement protection requires them as strings): data that
// makes the policy stricter than its defaults is followed.
func TestPolicyEnvironmentAndStatusThroughServer(t *testing.T) {
	g := startWithPolicy(t, 1, `policy {
			data {{POLICY}}/production.yaml
		}`, map[string]string{"production.yaml": "dcr:\n  config:\n    environment: production\n    org_statuses: [Active]\n"})
	wantRejected(t, policyRegister(t, g, 1, nil), 400, "unapproved_software_statement", `software_mode "Test" is not accepted in the production environment`)
	wantCreated(t, policyRegister(t, g, 1, map[string]any{"software_statement": ssaWith(t, g, map[string]any{"software_mode": "Live"})}))

	writePolicyFile(t, g, "production.yaml", "dcr:\n  config:\n    environment: production\n    org_statuses: [Authorised]\n")
	g.Restart()
	wantRejected(t, policyRegister(t, g, 1, map[string]any{"software_statement": ssaWith(t, g, map[string]any{"software_mode": "Live"})}),
		400, "unapproved_software_statement", `org_status "Active" is not accepted`)
}

// TestPolicyDataOwnsOrgStatusAndSoftwareMode is what a policy author sees: with the defaults
// of policies/data.json a Suspended organisation and Test software in production are refused;
// a data file that allows them is followed by the real gateway, since no Go rule judges
// org_status or software_mode any more.
func TestPolicyDataOwnsOrgStatusAndSoftwareMode(t *testing.T) {
	g := startWithPolicy(t, 1, `policy {
			data {{POLICY}}/data.yaml
		}`, map[string]string{"data.yaml": "dcr:\n  config:\n    environment: production\n"})
	register := func(orgStatus, mode string) *tppclient.Response {
		return policyRegister(t, g, 1, map[string]any{"scope": "openid accounts",
			"software_statement": ssaWith(t, g, map[string]any{"org_status": orgStatus, "software_mode": mode})})
	}
	wantRejected(t, register("Suspended", "Live"), 400, "unapproved_software_statement", `org_status "Suspended" is not accepted`)
	wantRejected(t, register("Active", "Test"), 400, "unapproved_software_statement", `software_mode "Test" is not accepted in the production environment`)

	writePolicyFile(t, g, "data.yaml", "dcr:\n  config:\n    environment: production\n    org_statuses: [Active, Suspended]\n    software_modes:\n      production: [Test, Live]\n")
	g.Restart()
	wantCreated(t, register("Suspended", "Test"))
	wantRejected(t, policyRegister(t, g, 1, map[string]any{"software_statement": ssaWith(t, g, map[string]any{"org_status": "Revoked"})}),
		400, "unapproved_software_statement", `org_status "Revoked" is not accepted`)
}

// TestRoleScopesOwnedByTheProfile: roles → scopes has one home, the profile's role_scopes
// (dcr/obprofile); mapping a role to another scope there is followed by the real gateway,
// with the default policy running (it has no roles rule of its own any more).
func TestRoleScopesOwnedByTheProfile(t *testing.T) {
	g := startWithPolicy(t, 1, `profile {
			role_scopes CBPII payments
		}`, nil)
	cbpii := func(scope string) map[string]any {
		return map[string]any{"scope": scope, "software_statement": ssaWith(t, g, map[string]any{"software_roles": []string{"CBPII"}})}
	}
	res := policyRegister(t, g, 1, cbpii("openid payments"))
	wantCreated(t, res)
	if res.JSON["scope"] != "openid payments" {
		t.Errorf("registered scope %v", res.JSON["scope"])
	}
	wantRejected(t, policyRegister(t, g, 1, cbpii("openid fundsconfirmations")), 400, "invalid_client_metadata",
		`scope "fundsconfirmations" is not allowed by the software statement's software_roles (CBPII)`)
	omitted := cbpii("")
	omitted["scope"] = nil // sent as null: omitted
	res = policyRegister(t, g, 1, omitted)
	wantCreated(t, res)
	if res.JSON["scope"] != "openid payments" {
		t.Errorf("default scope %v, want the roles' openid payments", res.JSON["scope"])
	}
}

// completeLogs stops the gateway and returns everything it printed. The child's output
// reaches the test through a pipe copied by another goroutine, so a line the gateway wrote
// before it answered may not be in Logs() yet when the answer arrives (under load it is
// not). Stop waits for the process to exit and for its output to be copied: the log read
// after it is complete, for the lines a test wants and for the secrets it must not find.
func completeLogs(g *gatewaytest.Gateway) string {
	g.Stop()
	return g.Logs()
}

// writePolicyFile rewrites a file of the policy directory the gateway's Caddyfile names.
func writePolicyFile(t *testing.T, g *gatewaytest.Gateway, name, content string) {
	t.Helper()
	i := strings.Index(g.Caddyfile, "/"+name)
	if i < 0 {
		t.Fatalf("the Caddyfile does not name %s", name)
	}
	start := strings.LastIndexAny(g.Caddyfile[:i], " \t") + 1
	if err := os.WriteFile(g.Caddyfile[start:i]+"/"+name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testPolicy decides by the registration's client_name, so that one gateway shows every outcome.
const testPolicy = `package dcr

import rego.v1

mode := object.get(object.get(input, "metadata", {}), "client_name", "allow")

decision := {"allow": true, "metadata": {"scope": "openid accounts", "grant_types": ["authorization_code", "refresh_token"]}} if mode == "allow"

decision := {"allow": false, "error": "invalid_redirect_uri", "error_description": "denied by the test policy", "reasons": ["client_name says so"]} if mode == "deny"

decision := {"allow": false, "error": "not_a_dcr_code"} if mode == "bad code"

decision := to_number("not a number") > 0 if mode == "error"

decision := {"allow": "yes"} if mode == "malformed"

decision := true if {
	mode == "timeout"
	some i in numbers.range(1, 100000)
	some j in numbers.range(1, 100000)
	i * j < 0
}
`

// TestPolicyOutcomesThroughServer: overrides are what is stored and returned; a denial carries
// the policy's error; an error, a timeout and an undefined decision fail closed with 503.
func TestPolicyOutcomesThroughServer(t *testing.T) {
	g := startWithPolicy(t, 1, `policy {
			defaults off
			modules {{POLICY}}/test.rego
			timeout 50ms
		}`, map[string]string{"test.rego": testPolicy})

	res := policyRegister(t, g, 1, nil)
	wantCreated(t, res)
	if res.JSON["scope"] != "openid accounts" || fmt.Sprint(res.JSON["grant_types"]) != "[authorization_code refresh_token]" {
		t.Fatalf("the response must carry the overrides: scope %v grant_types %v", res.JSON["scope"], res.JSON["grant_types"])
	}
	c := newClient(t, g, 1)
	id, token := res.JSON["client_id"].(string), res.JSON["registration_access_token"].(string)
	got, err := c.Get(gatewaytest.Context(t), id, token)
	if err != nil || got.Status != 200 || got.JSON["scope"] != "openid accounts" {
		t.Fatalf("the stored registration must carry the overrides: %v %d %s", err, got.Status, got.Body)
	}
	stored := g.StoreFiles("/registrations/")
	found := false
	for _, f := range stored {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(id)) && bytes.Contains(b, []byte(`"scope":"openid accounts"`)) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no stored record of %s with the overridden scope in %v", id, stored)
	}

	wantRejected(t, policyRegister(t, g, 1, map[string]any{"client_name": "deny"}), 400, "invalid_redirect_uri", "denied by the test policy")
	wantRejected(t, policyRegister(t, g, 1, map[string]any{"client_name": "bad code"}), 400, "invalid_client_metadata", "refused by the registration policy")
	for mode, description := range map[string]string{
		"error":     "could not be evaluated",
		"timeout":   "did not decide in time",
		"undefined": "made no decision",
		"malformed": "could not be evaluated",
	} {
		res := policyRegister(t, g, 1, map[string]any{"client_name": mode})
		wantRejected(t, res, 503, "temporarily_unavailable", description)
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("%s: a 503 needs Retry-After", mode)
		}
	}
	// Nothing but the first registration was stored.
	if n := len(g.StoreFiles("/registrations/")); n != len(stored) {
		t.Fatalf("%d registration files after the refusals, want %d", n, len(stored))
	}
	logs := completeLogs(g)
	for _, outcome := range []string{"allow", "deny", "error", "timeout", "undefined"} {
		if !strings.Contains(logs, `"outcome":"`+outcome+`"`) {
			t.Errorf("no decision log line with outcome %s", outcome)
		}
	}
	if strings.Contains(logs, token) {
		t.Error("the logs carry the registration access token")
	}
}

// TestPolicyReloadThroughServer reloads the gateway with a changed policy while registrations
// are in flight: every request gets an answer from the old or the new policy, none fails,
// and after the reload the new policy decides.
func TestPolicyReloadThroughServer(t *testing.T) {
	allowAll := "package dcr\nimport rego.v1\ndecision := true\n"
	denyAll := "package dcr\nimport rego.v1\ndecision := {\"allow\": false, \"error\": \"unapproved_software_statement\", \"error_description\": \"policy v2 refuses\"}\n"
	g := startWithPolicy(t, 1, `policy {
			defaults off
			modules {{POLICY}}/p.rego
		}`, map[string]string{"p.rego": allowAll})
	// Enable the admin endpoint (the test harness starts with admin off) and restart.
	adminAddr := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	caddyfile := strings.Replace(g.Caddyfile, "admin off", "admin "+adminAddr, 1)
	caddyfilePath := filepath.Join(g.Dir, "Caddyfile")
	if err := os.WriteFile(caddyfilePath, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	g.Restart()
	wantCreated(t, policyRegister(t, g, 1, nil))

	c := newClient(t, g, 1)
	// A fresh connection per request: a keep-alive connection the old server closes while
	// idle is a client artifact, not a dropped request.
	c.HTTP.Transport.(*http.Transport).DisableKeepAlives = true
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		failures []string
		stop     = make(chan struct{})
		// dialResets counts connections reset before any request was sent on them.
		dialResets int
	)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					return
				}
				// Whether the request was written tells an in-flight request from a
				// connection that failed before one was sent on it.
				var wrote atomic.Bool
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }})
				res, err := c.Register(ctx, body, tppclient.ContentTypeJOSE, "")
				mu.Lock()
				switch {
				case err != nil && !wrote.Load():
					// The connection was reset before a request was sent on it (at connect
					// or in the TLS handshake): with SO_REUSEPORT, a connection queued on the
					// old listener's socket when it closes is reset by the kernel. Nothing
					// was in flight and a client retries. What must never fail is a request
					// that was sent.
					dialResets++
				case err != nil:
					failures = append(failures, "transport: "+err.Error())
				case res.Status == 201, res.Status == 400 && res.JSON["error_description"] == "policy v2 refuses":
					statuses[res.Status]++
				default:
					failures = append(failures, fmt.Sprintf("%d %s", res.Status, res.Body))
				}
				mu.Unlock()
			}
		}()
	}
	writePolicyFile(t, g, "p.rego", denyAll)
	out, err := exec.Command(gatewaytest.Binary(t), "reload", "--force", "--config", caddyfilePath, "--adapter", "caddyfile", "--address", adminAddr).CombinedOutput()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	// The Caddyfile did not change, only the policy file: --force reloads anyway. Once the
	// reload returned, the new policy decides every new request.
	wantRejected(t, policyRegister(t, g, 1, nil), 400, "unapproved_software_statement", "policy v2 refuses")
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed during the reload, e.g. %s", len(failures), failures[0])
	}
	if statuses[400] == 0 && statuses[201] == 0 {
		t.Fatal("no request ran during the reload")
	}
	t.Logf("during the reload: %d allowed by v1, %d refused by v2, %d connections reset before a request was sent", statuses[201], statuses[400], dialResets)
}
