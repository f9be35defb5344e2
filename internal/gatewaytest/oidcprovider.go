package gatewaytest

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// OIDCProviderOptions shape one example backend (examples/backends/oidc-provider).
type OIDCProviderOptions struct {
	// Issuer is the public issuer: the gateway's origin (https://localhost:<port>), since
	// clients reach the backend through it.
	Issuer string
	// InitialAccessToken is the RFC 7591 initial access token that may create clients.
	InitialAccessToken string
	// TrustedCAFile is added to the CAs Node trusts when it fetches clients' jwks_uri (the
	// sandbox bundle, for software_jwks_endpoints the gateway serves).
	TrustedCAFile string
	// GatewayClientID and GatewayClientSecret, when set, add a static client_secret_basic
	// client for the gateway (introspection and revocation).
	GatewayClientID, GatewayClientSecret string
	// LoopbackFetchHosts are host:port whose jwks_uri may be on a loopback address (the
	// gateway serving the sandbox's software_jwks_endpoints); default the issuer's host.
	LoopbackFetchHosts []string
	// Port to listen on (127.0.0.1); default a free one.
	Port int
}

// OIDCProvider is one running node-oidc-provider process.
type OIDCProvider struct {
	t    testing.TB
	Port int
	// Addr is host:port, the reverse_proxy upstream.
	Addr string
	// URL is http://127.0.0.1:<port>, for talking to it directly (not through the gateway).
	URL string

	cmd    *exec.Cmd
	exited chan struct{}
	logs   *syncBuffer
}

var (
	npmOnce sync.Once
	npmErr  error
)

// OIDCProviderDir is the example backend's directory.
func OIDCProviderDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "backends", "oidc-provider")
}

// installOIDCProvider runs `npm ci` once when the dependencies are missing (.ci/run installs
// them up front; this keeps `go test` working on a fresh checkout).
func installOIDCProvider(t testing.TB) {
	t.Helper()
	dir := OIDCProviderDir()
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err == nil {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
}

// StartOIDCProvider starts the example backend and waits for its discovery document; it is
// stopped when the test ends.
func StartOIDCProvider(t testing.TB, o OIDCProviderOptions) *OIDCProvider {
	t.Helper()
	installOIDCProvider(t)
	if len(o.LoopbackFetchHosts) == 0 {
		if u, err := url.Parse(o.Issuer); err == nil && u.Host != "" {
			o.LoopbackFetchHosts = []string{u.Host}
		}
	}
	if o.Port == 0 {
		o.Port = FreePort(t)
	}
	p := &OIDCProvider{t: t, Port: o.Port, Addr: fmt.Sprintf("127.0.0.1:%d", o.Port),
		URL: fmt.Sprintf("http://127.0.0.1:%d", o.Port), logs: &syncBuffer{}}
	cmd := exec.Command("node", "provider.js")
	cmd.Dir = OIDCProviderDir()
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("PORT=%d", o.Port),
		"ISSUER="+o.Issuer,
		"INITIAL_ACCESS_TOKEN="+o.InitialAccessToken,
		"NODE_EXTRA_CA_CERTS="+o.TrustedCAFile,
		"GATEWAY_CLIENT_ID="+o.GatewayClientID,
		"GATEWAY_CLIENT_SECRET="+o.GatewayClientSecret,
		"LOOPBACK_FETCH_HOSTS="+strings.Join(o.LoopbackFetchHosts, ","),
	)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.Stop)

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("oidc-provider exited during start:\n%s", p.logs.String())
		default:
		}
		resp, err := client.Get(p.URL + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oidc-provider did not start: %v\n%s", err, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the provider (its in-memory clients go with it).
func (p *OIDCProvider) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// Logs returns what the provider printed so far.
func (p *OIDCProvider) Logs() string { return p.logs.String() }
