// Package gatewaytest runs the real gateway binary for integration tests: it builds
// ./cmd/caddy once per test process, lays out a sandbox trust setup, writes a Caddyfile on free
// ports and starts `caddy run` with its own data directory (the embedded store lives there).
package gatewaytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// SkipInShortMode skips t under `go test -short` (`make unit`: no external processes). Every
// helper here and in internal/redistest that starts a process (or builds the binary) calls
// it, so that is the one place where a test becomes an integration test; `make test` and
// `make integration` run without -short and skip nothing. what names the process.
func SkipInShortMode(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test (starts %s): skipped in -short mode; make integration runs it", what)
	}
}

// Binary builds the gateway once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	SkipInShortMode(t, "the gateway binary")
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "dcrgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/caddy")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreePort returns a TCP port that was free a moment ago on 127.0.0.1 and that no earlier
// call in this process returned: the kernel may hand a just-closed ephemeral port out again,
// and a test that asks for two ports (the gateway's and its backend's) must get two.
func FreePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		handedOutMu.Lock()
		seen := handedOut[port]
		handedOut[port] = true
		handedOutMu.Unlock()
		if !seen {
			return port
		}
	}
}

var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
)

// Options shape one gateway.
type Options struct {
	// TPPs in the sandbox; default 2.
	TPPs int
	// Sandbox reuses an existing sandbox directory (e.g. for a second node).
	Sandbox *sandbox.Sandbox
	// DCRBlock replaces the body of the `dcr /register { ... }` block; {{SANDBOX}} is replaced
	// by the sandbox directory and {{BASE}} by https://localhost:<port>.
	DCRBlock string
	// Port to listen on; default a free one (required equal to the sandbox's when reusing it).
	Port int

	// Upstream is the reverse_proxy target (host:port); default a stand-in backend that
	// answers "backend: {method} {uri}".
	Upstream string
	// ReverseProxyBlock is the body of the `reverse_proxy` block (e.g. header_up lines).
	ReverseProxyBlock string
	// SiteDirectives are added to the site block, before `dcr` (e.g. request_header, another
	// handler directive). The placeholders of DCRBlock work in these three as well.
	SiteDirectives string
	// Env is added to the gateway process's environment (e.g. for {env.*} placeholders).
	Env []string
	// AdminPort enables Caddy's admin endpoint (and its /metrics) on 127.0.0.1:AdminPort;
	// 0 = admin off.
	AdminPort int
	// WithoutDCR leaves the dcr directive out: plain Caddy with the same TLS and
	// reverse_proxy, the baseline of pass-through benchmarks.
	WithoutDCR bool
	// ClientAuthDirectives are added to the site's `client_auth` block (e.g. a `verifier
	// revocation { ... }`); the placeholders of DCRBlock work here too.
	ClientAuthDirectives string
	// DefaultStore runs a DCRBlock without a storage line on the gateway's own default (the
	// bolt file in the data directory). When false, such a block gets `storage caddy`: one
	// file per key under DataDir, which StoreFiles lists while the gateway runs (the bolt
	// file is locked by the running gateway; its tests read it after stopping it).
	DefaultStore bool
}

// hasStorage matches a storage line in a dcr block.
var hasStorage = regexp.MustCompile(`(?m)^\s*storage\s`)

// DefaultDCRBlock is the protection set of the example Caddyfile.
const DefaultDCRBlock = `
		mtls
		software_statement {
			directory "OpenBanking Ltd" {
				jwks_file {{SANDBOX}}/directory/jwks.json
				jwks_hosts localhost:{{PORT}}
			}
			fetch {
				tls_trust_pool file {{SANDBOX}}/ca/bundle.pem
			}
		}
		signed_request {
			audience {{BASE}}
			fetch {
				tls_trust_pool file {{SANDBOX}}/ca/bundle.pem
			}
		}
`

// Gateway is one running gateway process.
type Gateway struct {
	t         testing.TB
	Dir       string
	Port      int
	BaseURL   string
	Endpoint  string
	DataDir   string
	Sandbox   *sandbox.Sandbox
	Caddyfile string

	env  []string
	proc *process
	logs *syncBuffer
}

// Start lays out everything and starts the gateway; it is stopped when the test ends.
func Start(t testing.TB, o Options) *Gateway {
	t.Helper()
	SkipInShortMode(t, "the gateway")
	Binary(t) // build first: a build failure is reported as such
	dir := t.TempDir()
	g := &Gateway{t: t, Dir: dir, DataDir: filepath.Join(dir, "data")}
	if o.Sandbox != nil {
		g.Sandbox = o.Sandbox
		g.Port = o.Port
	} else {
		g.Port = o.Port
		if g.Port == 0 {
			g.Port = FreePort(t)
		}
		if o.TPPs == 0 {
			o.TPPs = 2
		}
		sb, err := sandbox.Init(sandbox.Options{Dir: filepath.Join(dir, "sandbox"), TPPs: o.TPPs,
			BaseURL: fmt.Sprintf("https://localhost:%d", g.Port)})
		if err != nil {
			t.Fatalf("sandbox init: %v", err)
		}
		g.Sandbox = sb
	}
	g.BaseURL = fmt.Sprintf("https://localhost:%d", g.Port)
	g.Endpoint = g.BaseURL + "/register"
	block := o.DCRBlock
	if block == "" {
		block = DefaultDCRBlock
	}
	if !o.DefaultStore && !hasStorage.MatchString(block) {
		block += "\n\t\tstorage caddy\n"
	}
	sbDir := g.Sandbox.Dir
	r := strings.NewReplacer("{{SANDBOX}}", sbDir, "{{BASE}}", g.BaseURL, "{{PORT}}", fmt.Sprint(g.Port))
	backend := FreePort(t)
	upstream := o.Upstream
	if upstream == "" {
		upstream = fmt.Sprintf("127.0.0.1:%d", backend)
	}
	g.env = o.Env
	admin := "admin off"
	if o.AdminPort != 0 {
		admin = fmt.Sprintf("admin 127.0.0.1:%d", o.AdminPort)
	}
	dcrDirective := "\tdcr /register {\n" + block + "\n\t}"
	if o.WithoutDCR {
		dcrDirective = ""
	}
	g.Caddyfile = r.Replace(fmt.Sprintf(`{
	%s
	https_port %d
	http_port %d
	auto_https disable_redirects
	storage file_system %s
}

localhost:%d {
	tls {{SANDBOX}}/server/cert.pem {{SANDBOX}}/server/key.pem {
		client_auth {
			mode verify_if_given
			trust_pool file {{SANDBOX}}/ca/bundle.pem
%s
		}
	}
	handle_path /sandbox/jwks/* {
		root * {{SANDBOX}}/jwks
		file_server
	}
	handle_path /sandbox/crl/* {
		root * {{SANDBOX}}/crl
		file_server
	}
%s
%s
	reverse_proxy %s {
%s
	}
}

http://:%d {
	respond "backend: {method} {uri}" 200
}
`, admin, g.Port, FreePort(t), g.DataDir, g.Port, o.ClientAuthDirectives, o.SiteDirectives, dcrDirective, upstream, o.ReverseProxyBlock, backend))
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(g.Caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	g.logs = &syncBuffer{}
	g.start()
	t.Cleanup(g.Stop)
	return g
}

func (g *Gateway) start() {
	g.t.Helper()
	cmd := g.Command("run", "--config", filepath.Join(g.Dir, "Caddyfile"), "--adapter", "caddyfile")
	// Ready when the TLS listener answers a request.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	g.proc = startProcess(g.t, "gateway", cmd, g.logs, 60*time.Second, func() error {
		resp, err := client.Get(g.BaseURL + "/healthz-probe")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
}

// Command is the gateway binary with args, in the gateway's directory and environment (its
// HOME and XDG directories, so caddy.AppDataDir() is DataDir/caddy): for running other
// subcommands, such as `caddy dcr store migrate`, as an operator would on that machine.
func (g *Gateway) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(Binary(g.t), args...)
	cmd.Dir = g.Dir
	cmd.Env = append(os.Environ(), "HOME="+g.Dir, "XDG_DATA_HOME="+g.DataDir, "XDG_CONFIG_HOME="+filepath.Join(g.Dir, "config"))
	cmd.Env = append(cmd.Env, g.env...)
	return cmd
}

// WriteCaddyfile replaces the gateway's Caddyfile; the next Restart (or a `caddy run` by
// Command) reads it.
func (g *Gateway) WriteCaddyfile(content string) {
	g.t.Helper()
	g.Caddyfile = content
	if err := os.WriteFile(filepath.Join(g.Dir, "Caddyfile"), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// Kill ends the gateway with SIGKILL, as a crash would: no cleanup runs.
func (g *Gateway) Kill() {
	g.t.Helper()
	if g.proc == nil {
		return
	}
	_ = g.proc.cmd.Process.Kill()
	<-g.proc.exited
	g.proc = nil
}

// Stop ends the gateway (gracefully, then by force).
func (g *Gateway) Stop() {
	g.proc.stop()
	g.proc = nil
}

// Restart stops the gateway and starts it again on the same data directory.
func (g *Gateway) Restart() {
	g.t.Helper()
	g.Stop()
	g.start()
}

// PID is the gateway process's id (0 when it is not running).
func (g *Gateway) PID() int {
	if g.proc == nil {
		return 0
	}
	return g.proc.cmd.Process.Pid
}

// Logs returns what the gateway printed so far.
func (g *Gateway) Logs() string { return g.logs.String() }

// StoreFiles lists the files of the embedded store below the data directory whose path
// contains part (e.g. "/registrations/" or "/once/").
func (g *Gateway) StoreFiles(part string) []string {
	var out []string
	_ = filepath.Walk(g.DataDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(p, part) && !strings.HasSuffix(p, ".lock") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Context returns a context bounded for one test step.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// AuditLines are the gateway's audit log lines so far (Caddy logs JSON to stderr), decoded.
func (g *Gateway) AuditLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(g.Logs(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["logger"] == "http.handlers.dcr.audit" {
			out = append(out, m)
		}
	}
	return out
}
