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

	proc *process
	logs *syncBuffer
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
	SkipInShortMode(t, "the example OpenID provider")
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
	client := &http.Client{Timeout: 2 * time.Second}
	p.proc = startProcess(t, "oidc-provider", cmd, p.logs, 30*time.Second, func() error {
		resp, err := client.Get(p.URL + "/.well-known/openid-configuration")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("discovery answered %d", resp.StatusCode)
		}
		return nil
	})
	t.Cleanup(p.Stop)
	return p
}

// Stop ends the provider (its in-memory clients go with it).
func (p *OIDCProvider) Stop() {
	p.proc.stop()
	p.proc = nil
}

// Logs returns what the provider printed so far.
func (p *OIDCProvider) Logs() string { return p.logs.String() }
