package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/sandbox"
)

// startupDeadline only keeps a broken setup from hanging the test; it is never asserted on.
const startupDeadline = 3 * time.Minute

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runUpstream is `make run-upstream` without make (which would build into the repository):
// the script it runs, with the test's binary, ports, sandbox and state.
type runUpstream struct {
	cmd     *exec.Cmd
	out     *lockedBuffer
	exited  chan struct{}
	state   string
	port    int
	backend int
}

func startRunUpstream(t *testing.T, sandboxDir string) *runUpstream {
	t.Helper()
	bin := gatewaytest.Binary(t)
	// A test binary started with SIGINT ignored (a background job of a shell) would pass that
	// on, and a shell cannot trap a signal ignored on entry: take SIGINT here while the script
	// runs, so it starts with the default disposition, as under a terminal.
	if signal.Ignored(syscall.SIGINT) {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT)
		t.Cleanup(func() { signal.Stop(ch) })
	}
	r := &runUpstream{out: &lockedBuffer{}, exited: make(chan struct{}), state: filepath.Join(t.TempDir(), "state"),
		port: gatewaytest.FreePort(t), backend: gatewaytest.FreePort(t)}
	r.cmd = exec.Command("./examples/run-upstream.sh")
	r.cmd.Dir = ".."
	r.cmd.Env = append(os.Environ(),
		"BIN="+bin,
		fmt.Sprintf("DCRGATE_PORT=%d", r.port),
		fmt.Sprintf("DCRGATE_HTTP_PORT=%d", gatewaytest.FreePort(t)),
		fmt.Sprintf("DCRGATE_ADMIN=127.0.0.1:%d", gatewaytest.FreePort(t)),
		fmt.Sprintf("DCRGATE_BACKEND_PORT=%d", r.backend),
		"DCRGATE_SANDBOX="+sandboxDir,
		"DCRGATE_STATE="+r.state,
	)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	// Its own process group, so a failing test can end the script and both servers.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.exited
		}
	})
	return r
}

// waitFor waits until the output contains s; false if the script exited first.
func (r *runUpstream) waitFor(t *testing.T, s string) bool {
	t.Helper()
	deadline := time.Now().Add(startupDeadline)
	for !strings.Contains(r.out.String(), s) {
		select {
		case <-r.exited:
			return strings.Contains(r.out.String(), s)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output of run-upstream.sh:\n%s", s, r.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// printed returns the printed instruction lines that start with prefix (indentation removed).
func printed(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("run-upstream.sh printed no line starting with %q:\n%s", prefix, out)
	return ""
}

func shell(t *testing.T, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRunUpstream runs `make run-upstream`'s script for real: it makes the sandbox for the
// port, starts the provider and the gateway, and prints how to register and how to get a
// token; both printed commands work as printed; SIGINT stops both servers.
func TestRunUpstream(t *testing.T) {
	gatewaytest.SkipInShortMode(t, "run-upstream.sh")
	sandboxDir := filepath.Join(t.TempDir(), "sb")
	r := startRunUpstream(t, sandboxDir)
	if !r.waitFor(t, "Ctrl-C stops both.") {
		t.Fatalf("run-upstream.sh exited:\n%s", r.out.String())
	}
	out := r.out.String()
	sb, err := sandbox.Load(sandboxDir)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("https://localhost:%d", r.port); sb.BaseURL != want {
		t.Fatalf("sandbox made for %s, want %s", sb.BaseURL, want)
	}
	pids := map[string]int{}
	for what, re := range map[string]string{"gateway": `dcrgate \(pid (\d+)\)`, "provider": `\(pid (\d+), 127\.0\.0\.1:` + strconv.Itoa(r.backend)} {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s pid in the output:\n%s", what, out)
		}
		pids[what], _ = strconv.Atoi(m[1])
	}

	// Register as printed, with the built-in client.
	register := printed(t, out, gatewaytest.Binary(t)+" dcr register")
	if got, err := shell(t, register); err != nil || !strings.Contains(got, "HTTP 201") {
		t.Fatalf("%s: %v\n%s\n%s", register, err, got, r.out.String())
	}
	// The registry is in the state directory given to the script, not in $HOME: the default
	// store's file (locked while the gateway runs, so only its presence is checked here).
	if _, err := os.Stat(filepath.Join(r.state, "caddy", "dcr", "registry.db")); err != nil {
		t.Errorf("no registry below %s: %v", r.state, err)
	}

	// The client-credentials token, with the lines printed for it.
	clientID := printed(t, out, "CLIENT_ID=")
	curl := printed(t, out, "curl ")
	got, err := shell(t, "set -e\n"+clientID+"\ntest -n \"$CLIENT_ID\"\n"+strings.Replace(curl, "curl ", "curl -sS --fail-with-body ", 1))
	if err != nil {
		t.Fatalf("token request as printed: %v\n%s\n%s", err, got, r.out.String())
	}
	var token map[string]any
	if err := json.Unmarshal([]byte(got), &token); err != nil || token["access_token"] == nil || token["access_token"] == "" {
		t.Fatalf("token response %q: %v", got, err)
	}

	// Ctrl-C: the script stops both, waits for them, and exits 130.
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.exited:
	case <-time.After(startupDeadline):
		t.Fatalf("run-upstream.sh did not stop on SIGINT:\n%s", r.out.String())
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d after SIGINT, want 130", code)
	}
	for what, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("the %s (pid %d) is still there after SIGINT: %v", what, pid, err)
		}
	}
	for _, port := range []int{r.port, r.backend} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still answers after SIGINT", port)
		}
	}
}

// A sandbox made for another port is refused before anything starts, with what to do.
func TestRunUpstreamRefusesSandboxOfAnotherPort(t *testing.T) {
	gatewaytest.SkipInShortMode(t, "run-upstream.sh")
	dir := filepath.Join(t.TempDir(), "sb")
	if _, err := sandbox.Init(sandbox.Options{Dir: dir, BaseURL: "https://localhost:1"}); err != nil {
		t.Fatal(err)
	}
	r := startRunUpstream(t, dir)
	<-r.exited
	out := r.out.String()
	if code := r.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"was made for https://localhost:1, not https://localhost:" + strconv.Itoa(r.port),
		"SANDBOX=sandbox-" + strconv.Itoa(r.port), "make sandbox PORT=" + strconv.Itoa(r.port)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "listening") || strings.Contains(out, "Ctrl-C") {
		t.Errorf("something started:\n%s", out)
	}
}
