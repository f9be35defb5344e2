// Package redistest runs real redis-server (and sentinel) processes for tests, on free ports,
// stopped when the test ends.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
)

// StartupDeadline bounds how long a helper waits for Redis to reach a state; it only keeps a
// broken setup from hanging the suite and is never asserted against.
const StartupDeadline = 60 * time.Second

// Server is one redis-server (or sentinel) process the test started on a free port.
type Server struct {
	t    testing.TB
	Port int
	Dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// ServerPath fails the test when redis-server is missing: `.ci/run` installs it, and a
// skipped store test would read as a passing one. Under -short (make unit) it skips the test.
func ServerPath(t testing.TB) string {
	t.Helper()
	gatewaytest.SkipInShortMode(t, "redis-server")
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (apt-get install redis-server; .ci/run does it): ", err)
	}
	return p
}

// Start starts redis-server on a free port without persistence; extra are more
// command-line options ("--appendonly", "yes", ...).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := New(t, gatewaytest.FreePort(t), extra...)
	s.Start()
	return s
}

// New prepares a redis-server on port without starting it (Start does; a test can first show
// what happens while Redis is down). Later options in extra override earlier ones, so
// ("--appendonly", "yes") turns persistence on.
func New(t testing.TB, port int, extra ...string) *Server {
	t.Helper()
	gatewaytest.SkipInShortMode(t, "redis-server")
	dir := t.TempDir()
	args := append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--logfile", filepath.Join(dir, "redis.log")}, extra...)
	s := &Server{t: t, Port: port, Dir: dir, args: args}
	t.Cleanup(s.Kill)
	return s
}

// StartSentinel starts a sentinel monitoring the master at masterPort as name.
func StartSentinel(t testing.TB, name string, masterPort int) *Server {
	t.Helper()
	gatewaytest.SkipInShortMode(t, "redis-sentinel")
	port := gatewaytest.FreePort(t)
	dir := t.TempDir()
	conf := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, port, dir, filepath.Join(dir, "sentinel.log"), name, masterPort, name, name, name)
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Port: port, Dir: dir, args: []string{path, "--sentinel"}}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Start runs the process (again, on the same port and directory) and waits until it answers
// PING.
func (s *Server) Start() {
	s.t.Helper()
	cmd := exec.Command(ServerPath(s.t), s.args...)
	// If the test binary dies (a timeout, a kill), Redis dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(StartupDeadline)
	for {
		select {
		case <-exited:
			s.t.Fatalf("redis-server %v exited at start:\n%s\n%s", s.args, out.String(), s.Log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		// NOAUTH: a server with a password is up, it only wants the password.
		if err == nil || strings.Contains(err.Error(), "NOAUTH") {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %d does not answer: %v\n%s", s.Port, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartAsReplicaOf runs the server again (same port and directory) as a replica of the
// server at addr: how a failed master rejoins a Sentinel group it no longer leads.
func (s *Server) StartAsReplicaOf(addr string) {
	s.t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.args = append(s.args, "--replicaof", host, port)
	s.Start()
}

// Kill stops the process at once (SIGKILL): what a crashed host looks like to clients.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop shuts the process down gracefully.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(StartupDeadline):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Log returns the server's log file.
func (s *Server) Log() string {
	for _, name := range []string{"redis.log", "sentinel.log"} {
		if b, err := os.ReadFile(filepath.Join(s.Dir, name)); err == nil {
			return string(b)
		}
	}
	return ""
}

// Client returns a plain client of this one server.
func (s *Server) Client() *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}
