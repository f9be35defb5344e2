package tlsrevocation_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// verifierBlock is the client_auth verifier of these tests. The sandbox CRL is served by the
// gateway itself over https, so its fetch needs the sandbox CA.
func verifierBlock(options ...string) string {
	return "\t\t\tverifier revocation {\n\t\t\t\ttls_trust_pool file {{SANDBOX}}/ca/bundle.pem\n\t\t\t\t" +
		strings.Join(options, "\n\t\t\t\t") + "\n\t\t\t}"
}

func client(t *testing.T, g *gatewaytest.Gateway, index int) *tppclient.Client {
	t.Helper()
	c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(index), g.Endpoint, g.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// register sends TPP index's registration request; err is a transport error.
func register(t *testing.T, g *gatewaytest.Gateway, index int) (*tppclient.Response, error) {
	t.Helper()
	c := client(t, g, index)
	body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Register(gatewaytest.Context(t), body, "", "")
}

// proxied GETs a path that is not DCR (the stand-in backend answers it) with TPP index's
// certificate.
func proxied(t *testing.T, g *gatewaytest.Gateway, index int) (string, error) {
	t.Helper()
	c := client(t, g, index)
	req, err := http.NewRequestWithContext(gatewaytest.Context(t), http.MethodGet, g.BaseURL+"/accounts", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b), nil
}

// wantOK checks that TPP index registers (201) and reaches the backend.
func wantOK(t *testing.T, g *gatewaytest.Gateway, index int) {
	t.Helper()
	resp, err := register(t, g, index)
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("TPP %d register: %v %+v\n%s", index, err, resp, g.Logs())
	}
	got, err := proxied(t, g, index)
	if err != nil || got != "200 backend: GET /accounts" {
		t.Fatalf("TPP %d proxied path: %q %v", index, got, err)
	}
}

// wantRefused checks that TPP index gets no HTTP answer at all, on /register and on a
// proxied path: the TLS layer refused its certificate. In TLS 1.3 the client has finished its
// handshake when the server checks the certificate, so the refusal reaches it as an alert or
// as a closed connection, whichever it reads or writes first; in TLS 1.2 the server checks
// before it finishes, so the client always reads the alert.
func wantRefused(t *testing.T, g *gatewaytest.Gateway, index int) {
	t.Helper()
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		c := client(t, g, index)
		tr := c.HTTP.Transport.(*http.Transport)
		tr.TLSClientConfig.MinVersion, tr.TLSClientConfig.MaxVersion = version, version
		body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		resp, regErr := c.Register(gatewaytest.Context(t), body, "", "")
		req, err := http.NewRequestWithContext(gatewaytest.Context(t), http.MethodGet, g.BaseURL+"/accounts", nil)
		if err != nil {
			t.Fatal(err)
		}
		presp, getErr := c.HTTP.Do(req)
		if presp != nil {
			presp.Body.Close()
		}
		for what, err := range map[string]error{"register": regErr, "proxied path": getErr} {
			if err == nil {
				t.Fatalf("TPP %d %s over %s: got an HTTP answer (%+v), want the handshake refused", index, what, tls.VersionName(version), resp)
			}
			if version == tls.VersionTLS12 && !strings.Contains(err.Error(), "bad certificate") {
				t.Fatalf("TPP %d %s over TLS 1.2: %v, want the bad_certificate alert", index, what, err)
			}
		}
	}
}

// logEntries stops the gateway (so its log is complete) and returns its JSON log lines whose
// message contains msg.
func logEntries(t *testing.T, g *gatewaytest.Gateway, msg string) []map[string]any {
	t.Helper()
	g.Stop()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(g.Logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil && strings.Contains(fmt.Sprint(e["msg"]), msg) {
			out = append(out, e)
		}
	}
	return out
}

func serialOf(t *testing.T, tpp *sandbox.TPP) string {
	t.Helper()
	certs, err := sandbox.ReadCertificates(tpp.TransportCert)
	if err != nil {
		t.Fatal(err)
	}
	return sandbox.SerialHex(certs[0])
}

// TestGatewayRefusesCRLRevokedTransportCert: the CRL distribution point of the sandbox
// certificates is the gateway itself. The CRL fetch made inside a pending handshake is a
// connection of its own, without a client certificate, which verify_if_given lets through
// without calling the verifier: no deadlock, and the non-revoked TPP's handshake completes
// with the CRL fetched.
func TestGatewayRefusesCRLRevokedTransportCert(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{ClientAuthDirectives: verifierBlock()})
	revoked := g.Sandbox.TPP(1)
	if _, _, err := g.Sandbox.RevokeTransportCert(revoked, sandbox.RevocationReasons["keyCompromise"]); err != nil {
		t.Fatal(err)
	}

	wantOK(t, g, 2)
	wantRefused(t, g, 1)
	wantOK(t, g, 2) // the cached CRL still lets TPP 2 in

	entries := logEntries(t, g, "client certificate revoked")
	if len(entries) < 4 { // one per refused handshake: two requests, two TLS versions
		t.Fatalf("%d revocation log lines, want at least 4:\n%s", len(entries), g.Logs())
	}
	e := entries[0]
	want := map[string]any{
		"level": "error", "logger": "tls.client_auth.verifier.revocation",
		"subject": revoked.TransportSubjectDN, "serial": serialOf(t, revoked), "issuer": g.Sandbox.IssuingCA().Subject.String(),
		"source": "crl", "source_location": g.Sandbox.CRLURL(), "reason": "keyCompromise", "reason_code": float64(1),
	}
	for k, w := range want {
		if e[k] != w {
			t.Errorf("log field %s = %v, want %v", k, e[k], w)
		}
	}
}

// TestGatewayRefusesOCSPRevokedTransportCert: certificates that name an OCSP responder (a
// real one, in this test, signing with the sandbox issuing CA key) are refused when it says
// revoked, although the CRL does not list them.
func TestGatewayRefusesOCSPRevokedTransportCert(t *testing.T) {
	gatewaytest.SkipInShortMode(t, "the gateway")
	responder := gatewaytest.StartOCSPResponder(t)
	port := gatewaytest.FreePort(t)
	sb, err := sandbox.Init(sandbox.Options{Dir: filepath.Join(t.TempDir(), "sandbox"), TPPs: 2,
		BaseURL: fmt.Sprintf("https://localhost:%d", port), OCSPURL: responder.URL})
	if err != nil {
		t.Fatal(err)
	}
	responder.SetIssuer(sb.IssuingCA(), sb.IssuingKey())
	certs, err := sandbox.ReadCertificates(sb.TPP(1).TransportCert)
	if err != nil {
		t.Fatal(err)
	}
	responder.Revoke(certs[0].SerialNumber, sandbox.RevocationReasons["cessationOfOperation"])

	g := gatewaytest.Start(t, gatewaytest.Options{Sandbox: sb, Port: port, ClientAuthDirectives: verifierBlock()})
	wantOK(t, g, 2)
	wantRefused(t, g, 1)

	entries := logEntries(t, g, "client certificate revoked")
	if len(entries) == 0 {
		t.Fatalf("no revocation log line:\n%s", g.Logs())
	}
	e := entries[0]
	if e["source"] != "ocsp" || e["source_location"] != responder.URL || e["reason"] != "cessationOfOperation" || e["serial"] != sandbox.SerialHex(certs[0]) {
		t.Fatalf("log line %v, want OCSP %s, cessationOfOperation, serial %s", e, responder.URL, sandbox.SerialHex(certs[0]))
	}
	if responder.Requests.Load() == 0 {
		t.Fatal("the OCSP responder was never asked")
	}
}

// TestGatewayFailModesWhenSourcesDown: with the OCSP responder down and the CRL gone (404),
// fail_mode hard refuses every client certificate and fail_mode soft accepts it with a
// warning.
func TestGatewayFailModesWhenSourcesDown(t *testing.T) {
	gatewaytest.SkipInShortMode(t, "the gateway")
	responder := gatewaytest.StartOCSPResponder(t)
	port := gatewaytest.FreePort(t)
	sb, err := sandbox.Init(sandbox.Options{Dir: filepath.Join(t.TempDir(), "sandbox"), TPPs: 2,
		BaseURL: fmt.Sprintf("https://localhost:%d", port), OCSPURL: responder.URL})
	if err != nil {
		t.Fatal(err)
	}
	responder.SetDown(true)
	if err := os.Remove(sb.Files.IssuingCRL); err != nil {
		t.Fatal(err)
	}

	hard := gatewaytest.Start(t, gatewaytest.Options{Sandbox: sb, Port: port, ClientAuthDirectives: verifierBlock()})
	wantRefused(t, hard, 1)
	entries := logEntries(t, hard, "no revocation status for the client certificate (fail_mode hard)")
	if len(entries) == 0 || entries[0]["level"] != "error" || entries[0]["serial"] != serialOf(t, sb.TPP(1)) {
		t.Fatalf("hard: log lines %v\n%s", entries, hard.Logs())
	}
	errs := fmt.Sprint(entries[0]["errors"])
	if !strings.Contains(errs, responder.URL) || !strings.Contains(errs, sb.CRLURL()) || !strings.Contains(errs, "status 404") {
		t.Fatalf("hard: errors %s do not name both sources", errs)
	}

	soft := gatewaytest.Start(t, gatewaytest.Options{Sandbox: sb, Port: port, ClientAuthDirectives: verifierBlock("fail_mode soft")})
	wantOK(t, soft, 1)
	entries = logEntries(t, soft, "accepted without a revocation status (fail_mode soft)")
	if len(entries) == 0 || entries[0]["level"] != "warn" || entries[0]["subject"] != sb.TPP(1).TransportSubjectDN {
		t.Fatalf("soft: log lines %v\n%s", entries, soft.Logs())
	}
}

// TestGatewayRevokedCertificateCannotManageItsRegistration: a TPP registered before its
// transport certificate was revoked can no longer read, update or delete the registration:
// every management call is refused in the handshake. The CRL here is a configured file,
// which the verifier reads again as soon as it changes. The other TPP manages its own
// registration as before.
func TestGatewayRevokedCertificateCannotManageItsRegistration(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{ClientAuthDirectives: verifierBlock(
		"crl_files {{SANDBOX}}/crl/issuing.crl", "crl_distribution_points off")})
	ctx := gatewaytest.Context(t)
	type reg struct{ id, token string }
	regs := map[int]reg{}
	for _, n := range []int{1, 2} {
		resp, err := register(t, g, n)
		if err != nil || resp.Status != http.StatusCreated {
			t.Fatalf("TPP %d register: %v %+v", n, err, resp)
		}
		regs[n] = reg{resp.JSON["client_id"].(string), resp.JSON["registration_access_token"].(string)}
	}
	stored := len(g.StoreFiles("/registrations/"))

	if _, _, err := g.Sandbox.RevokeTransportCert(g.Sandbox.TPP(1), sandbox.RevocationReasons["keyCompromise"]); err != nil {
		t.Fatal(err)
	}
	// A new client for each call: a new connection, so a new handshake. (A connection made
	// before the revocation was known is not re-checked; docs/revocation.md.)
	calls := map[string]func(c *tppclient.Client, r reg) (*tppclient.Response, error){
		"read": func(c *tppclient.Client, r reg) (*tppclient.Response, error) { return c.Get(ctx, r.id, r.token) },
		"update": func(c *tppclient.Client, r reg) (*tppclient.Response, error) {
			body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return c.Update(ctx, r.id, r.token, body)
		},
	}
	for what, call := range calls {
		if resp, err := call(client(t, g, 1), regs[1]); err == nil {
			t.Fatalf("revoked TPP 1 %s: %+v, want the handshake refused", what, resp)
		}
		if resp, err := call(client(t, g, 2), regs[2]); err != nil || resp.Status != http.StatusOK {
			t.Fatalf("TPP 2 %s: %v %+v", what, err, resp)
		}
	}
	if resp, err := client(t, g, 1).Delete(ctx, regs[1].id, regs[1].token); err == nil {
		t.Fatalf("revoked TPP 1 delete: %+v, want the handshake refused", resp)
	}
	if n := len(g.StoreFiles("/registrations/")); n != stored {
		t.Fatalf("registrations %d → %d: a refused call changed the store", stored, n)
	}
	if resp, err := client(t, g, 2).Delete(ctx, regs[2].id, regs[2].token); err != nil || resp.Status != http.StatusNoContent {
		t.Fatalf("TPP 2 delete: %v %+v", err, resp)
	}

	entries := logEntries(t, g, "client certificate revoked")
	if len(entries) < 3 || entries[0]["source_location"] != g.Sandbox.Files.IssuingCRL || entries[0]["serial"] != serialOf(t, g.Sandbox.TPP(1)) {
		t.Fatalf("log lines %v, want 3 refusals by the CRL file", entries)
	}
}
