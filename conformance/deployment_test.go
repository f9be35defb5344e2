package conformance

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/sandbox"
)

// Secrets of the deployment: the provider's INITIAL_ACCESS_TOKEN and GATEWAY_CLIENT_SECRET,
// which the Caddyfile reads from AS_INITIAL_ACCESS_TOKEN and DCR_GATEWAY_SECRET.
const (
	initialAccessToken = "conformance-initial-access-token-0123456789"
	gatewaySecret      = "conformance-gateway-secret-0123456789"
	gatewayClientID    = "dcrgate"
)

// deployment is docs/upstream.md's deployment, as an operator runs it: the sandbox made by
// `caddy dcr sandbox init`, the example provider, and examples/Caddyfile.upstream run by the
// real binary with its ports and paths moved by the environment placeholders of the contract
// (DCRGATE_PORT, DCRGATE_HTTP_PORT, DCRGATE_ADMIN, DCRGATE_BACKEND_PORT, DCRGATE_SANDBOX).
type deployment struct {
	BaseURL      string
	DiscoveryURL string
	Sandbox      *sandbox.Sandbox
	Provider     *gatewaytest.OIDCProvider
	logs         *logBuffer
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

func startDeployment(t *testing.T) *deployment {
	t.Helper()
	bin := gatewaytest.Binary(t)
	dir := t.TempDir()
	port, httpPort, adminPort, backendPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	d := &deployment{BaseURL: fmt.Sprintf("https://localhost:%d", port)}
	d.DiscoveryURL = d.BaseURL + "/.well-known/openid-configuration"

	// 1. The sandbox, by the documented command, with its URLs on the gateway's port.
	sbDir := filepath.Join(dir, "sandbox")
	mkSandbox := exec.Command(bin, "dcr", "sandbox", "init", "--dir", sbDir, "--tpps", fmt.Sprint(sandboxTPPs), "--base-url", d.BaseURL)
	mkSandbox.Dir = dir
	if out, err := mkSandbox.CombinedOutput(); err != nil {
		t.Fatalf("caddy dcr sandbox init: %v\n%s", err, out)
	}
	sb, err := sandbox.Load(sbDir)
	if err != nil {
		t.Fatal(err)
	}
	d.Sandbox = sb

	// 2. The backend, as docs/upstream.md starts it.
	d.Provider = gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{
		Issuer: d.BaseURL, InitialAccessToken: initialAccessToken, Port: backendPort,
		TrustedCAFile: sb.Files.CABundle, GatewayClientID: gatewayClientID, GatewayClientSecret: gatewaySecret,
	})

	// 3. The gateway on examples/Caddyfile.upstream.
	caddyfile := filepath.Join(repoRoot(), "examples", "Caddyfile.upstream")
	src, err := os.ReadFile(caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("{$DCRGATE_PORT")) {
		t.Fatal("examples/Caddyfile.upstream must take its port from {$DCRGATE_PORT} (docs/upstream.md)")
	}
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		fmt.Sprintf("DCRGATE_PORT=%d", port),
		fmt.Sprintf("DCRGATE_HTTP_PORT=%d", httpPort),
		fmt.Sprintf("DCRGATE_ADMIN=localhost:%d", adminPort),
		fmt.Sprintf("DCRGATE_BACKEND_PORT=%d", backendPort),
		"DCRGATE_SANDBOX="+sbDir,
		"AS_INITIAL_ACCESS_TOKEN="+initialAccessToken,
		"DCR_GATEWAY_SECRET="+gatewaySecret,
	)
	d.logs = &logBuffer{}
	roots, err := sb.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	startProcess(t, "gateway", cmd, d.logs, 60*time.Second, func() error {
		resp, err := probe.Get(d.DiscoveryURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("discovery answered %d", resp.StatusCode)
		}
		return nil
	})
	return d
}

// files are TPP n's files, as its OB client takes them.
func (d *deployment) files(n int) TPPFiles {
	tpp := d.Sandbox.TPP(n)
	return TPPFiles{
		TransportCert: tpp.TransportCert, TransportKey: tpp.TransportKey,
		SigningKey: tpp.SigningKey, SigningKID: tpp.SigningKID,
		SSA: tpp.SSAFile, CABundle: d.Sandbox.Files.CABundle,
	}
}

// Logs are the gateway's and the provider's output, for failure messages.
func (d *deployment) Logs() string {
	return "--- gateway:\n" + d.logs.String() + "\n--- provider:\n" + d.Provider.Logs()
}

// startProcess starts cmd, fails the test unless ready reports nil within timeout, and stops
// the process (SIGTERM, then SIGKILL) when the test ends.
func startProcess(t *testing.T, what string, cmd *exec.Cmd, logs *logBuffer, timeout time.Duration, ready func() error) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited during start:\n%s", what, logs.String())
		default:
		}
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %v\n%s", what, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
