package caddymodule_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// startReloadable starts a gateway with its admin endpoint on, so that tests can reload it
// with `caddy reload` as an operator does.
func startReloadable(t *testing.T, o gatewaytest.Options) (*gatewaytest.Gateway, string) {
	t.Helper()
	o.AdminPort = gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, o)
	return g, fmt.Sprintf("127.0.0.1:%d", o.AdminPort)
}

// reload runs `caddy reload --force` with the Caddyfile at path and returns its error output.
func reload(t *testing.T, admin, path string) error {
	t.Helper()
	out, err := exec.Command(gatewaytest.Binary(t), "reload", "--force", "--config", path, "--adapter", "caddyfile", "--address", admin).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// TestReloadAfterSandboxRotation: `caddy dcr sandbox init --force` while the gateway runs
// replaces the CA, the directory key and the TPPs; after `caddy reload` the new ones are used
// (the JWKS fetcher trusts the new CA: its pool key covers the CA file's contents) and an SSA
// of the old directory is refused. A reload that fails validation leaves the running config
// working.
func TestReloadAfterSandboxRotation(t *testing.T) {
	block := gatewaytest.DefaultDCRBlock
	g, admin := startReloadable(t, gatewaytest.Options{TPPs: 2, DCRBlock: block})
	wantCreated(t, register(t, newClient(t, g, 1), ""))
	oldSSA, err := os.ReadFile(g.Sandbox.TPP(1).SSAFile)
	if err != nil {
		t.Fatal(err)
	}

	sb, err := sandbox.Init(sandbox.Options{Dir: g.Sandbox.Dir, TPPs: 2, BaseURL: g.BaseURL, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	g.Sandbox = sb
	caddyfile := filepath.Join(g.Dir, "Caddyfile")
	if err := reload(t, admin, caddyfile); err != nil {
		t.Fatalf("reload after the rotation: %v", err)
	}
	c := newClient(t, g, 1)
	if res := register(t, c, ""); res.Status != http.StatusCreated {
		t.Fatalf("after the rotation and reload: %d %s (the gateway still trusts the old CA or directory key?)\n%s", res.Status, res.Body, g.Logs())
	}
	claims := c.Claims()
	claims["software_statement"] = strings.TrimSpace(string(oldSSA))
	res, err := c.Register(gatewaytest.Context(t), sign(t, c, claims, tppclient.SignOptions{}), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusBadRequest || res.JSON["error"] != "invalid_software_statement" {
		t.Fatalf("an SSA of the replaced directory key: %d %s, want 400 invalid_software_statement", res.Status, res.Body)
	}

	// A reload that fails validation (a trust pool file without a certificate) is refused
	// and changes nothing that runs.
	bad := filepath.Join(g.Dir, "Caddyfile.bad")
	empty := filepath.Join(g.Dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(text), "tls_trust_pool file "+sb.Dir+"/ca/bundle.pem", "tls_trust_pool file "+empty, 1)
	if broken == string(text) {
		t.Fatal("the test Caddyfile has no tls_trust_pool line to break")
	}
	if err := os.WriteFile(bad, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	err = reload(t, admin, bad)
	if err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("a reload with an empty trust pool file: %v, want a refusal that names the file", err)
	}
	if res := register(t, newClient(t, g, 2), ""); res.Status != http.StatusCreated {
		t.Fatalf("after a refused reload: %d %s, want the running config to go on", res.Status, res.Body)
	}
}

// mtlsAS is an authorization server that requires a TLS client certificate and accepts
// introspection calls only from the certificate it currently trusts (by SHA-256).
type mtlsAS struct {
	srv *httptest.Server
	ca  string

	mu      sync.Mutex
	allowed string
	seen    []string
}

func newMTLSAS(t *testing.T) *mtlsAS {
	t.Helper()
	as := &mtlsAS{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var fp string
		if len(r.TLS.PeerCertificates) > 0 {
			sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
			fp = hex.EncodeToString(sum[:])
		}
		as.mu.Lock()
		as.seen = append(as.seen, fp)
		ok := fp != "" && fp == as.allowed
		as.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok || r.URL.Path != "/introspect" || r.ParseForm() != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "scope": "dcr_register",
			"client_id": "onboarding", "exp": time.Now().Add(10 * time.Minute).Unix()})
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	as.srv = srv
	as.ca = filepath.Join(t.TempDir(), "as-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(as.ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return as
}

func (as *mtlsAS) trust(t *testing.T, certFile string) {
	t.Helper()
	as.mu.Lock()
	defer as.mu.Unlock()
	as.allowed = fingerprint(t, certFile)
}

func (as *mtlsAS) lastSeen() string {
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.seen) == 0 {
		return ""
	}
	return as.seen[len(as.seen)-1]
}

func fingerprint(t *testing.T, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// TestReloadAfterIntrospectionCertificateRotation: the gateway's introspection client
// authenticates with a TLS client certificate (tls_client_auth); the operator replaces the
// certificate files in place and reloads; the next introspection call presents the new
// certificate (the authorization server now refuses the old one).
func TestReloadAfterIntrospectionCertificateRotation(t *testing.T) {
	as := newMTLSAS(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "gw.pem"), filepath.Join(dir, "gw.key")
	block := gatewaytest.DefaultDCRBlock + fmt.Sprintf(`
		access_token {
			introspection %s/introspect
			client dcr-gateway {
				tls_client_auth %s %s
				tls_trust_pool file %s
			}
			register
		}
`, as.srv.URL, cert, key, as.ca)
	// The gateway's certificates: the sandbox's TPP transport certificates, laid out before
	// the gateway starts (it reads them at provisioning).
	pre, err := sandbox.Init(sandbox.Options{Dir: t.TempDir(), TPPs: 2})
	if err != nil {
		t.Fatal(err)
	}
	install := func(tpp int) {
		copyFile(t, pre.TPP(tpp).TransportCert, cert)
		copyFile(t, pre.TPP(tpp).TransportKey, key)
		as.trust(t, cert)
	}
	install(1)
	g, admin := startReloadable(t, gatewaytest.Options{TPPs: 2, DCRBlock: block})

	if res := register(t, newClient(t, g, 1), "opaque-1"); res.Status != http.StatusCreated {
		t.Fatalf("with the first certificate: %d %s\n%s", res.Status, res.Body, g.Logs())
	}
	first := as.lastSeen()
	if first != fingerprint(t, pre.TPP(1).TransportCert) {
		t.Fatalf("the authorization server saw certificate %q, want the configured one", first)
	}

	install(2)
	if err := reload(t, admin, filepath.Join(g.Dir, "Caddyfile")); err != nil {
		t.Fatal(err)
	}
	if res := register(t, newClient(t, g, 2), "opaque-2"); res.Status != http.StatusCreated {
		t.Fatalf("after the rotation and reload: %d %s (the old certificate still in use?)\n%s", res.Status, res.Body, g.Logs())
	}
	if got, want := as.lastSeen(), fingerprint(t, pre.TPP(2).TransportCert); got != want {
		t.Fatalf("after the reload the gateway presented %s, want the new certificate %s", got, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
