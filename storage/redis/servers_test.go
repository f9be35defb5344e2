package redis_test

import (
	"bytes"
	"context"
	"fmt"
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

// startupDeadline bounds how long a helper waits for Redis to reach a state; it only keeps a
// broken setup from hanging the suite and is never asserted against.
const startupDeadline = 60 * time.Second

// server is one redis-server (or sentinel) process the test started on a free port.
type server struct {
	t    testing.TB
	Port int
	Dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// redisServerPath fails the test when redis-server is missing: `.ci/run` installs it, and a
// skipped store test would read as a passing one.
func redisServerPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (apt-get install redis-server; .ci/run does it): ", err)
	}
	return p
}

// startServer starts redis-server on a free port without persistence; extra are more
// command-line options ("--appendonly", "yes", ...).
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	port := gatewaytest.FreePort(t)
	dir := t.TempDir()
	args := append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--logfile", filepath.Join(dir, "redis.log")}, extra...)
	s := &server{t: t, Port: port, Dir: dir, args: args}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// startSentinel starts a sentinel monitoring the master at masterPort as name.
func startSentinel(t *testing.T, name string, masterPort int) *server {
	t.Helper()
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
	s := &server{t: t, Port: port, Dir: dir, args: []string{path, "--sentinel"}}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

func (s *server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Start runs the process (again, on the same port and directory) and waits until it answers
// PING.
func (s *server) Start() {
	s.t.Helper()
	cmd := exec.Command(redisServerPath(s.t), s.args...)
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
	deadline := time.Now().Add(startupDeadline)
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

// Kill stops the process at once (SIGKILL): what a crashed host looks like to clients.
func (s *server) Kill() { s.signal(syscall.SIGKILL) }

// Stop shuts the process down gracefully.
func (s *server) Stop() { s.signal(syscall.SIGTERM) }

func (s *server) signal(sig syscall.Signal) {
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
	case <-time.After(startupDeadline):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Log returns the server's log file.
func (s *server) Log() string {
	for _, name := range []string{"redis.log", "sentinel.log"} {
		if b, err := os.ReadFile(filepath.Join(s.Dir, name)); err == nil {
			return string(b)
		}
	}
	return ""
}

// Client returns a plain client of this one server.
func (s *server) Client() *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds; what describes the state awaited, for the failure.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(startupDeadline)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %s", what, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startCluster starts three masters with --cluster-enabled and joins them with
// `redis-cli --cluster create`; it returns their addresses once every node reports the
// cluster ok.
func startCluster(t *testing.T) []string {
	t.Helper()
	redisServerPath(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not installed (it comes with redis-server's redis-tools): ", err)
	}
	var nodes []*server
	var addrs []string
	for range 3 {
		// The bus port is explicit: the default, port+10000, may be taken or out of range.
		s := startServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", fmt.Sprint(gatewaytest.FreePort(t)), "--cluster-node-timeout", "5000")
		nodes = append(nodes, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		c := n.Client()
		waitFor(t, "cluster_state:ok on "+n.Addr(), func() (bool, string) {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3"), info
		})
	}
	return addrs
}

// sentinelGroup is a master, one replica and three sentinels monitoring them.
type sentinelGroup struct {
	Name      string
	Master    *server
	Replica   *server
	Sentinels []*server
}

func startSentinelGroup(t *testing.T) *sentinelGroup {
	t.Helper()
	g := &sentinelGroup{Name: "dcrmaster"}
	g.Master = startServer(t)
	g.Replica = startServer(t, "--replicaof", "127.0.0.1", fmt.Sprint(g.Master.Port))
	replica := g.Replica.Client()
	waitFor(t, "the replica in sync", func() (bool, string) {
		info, err := replica.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up"), info
	})
	for range 3 {
		g.Sentinels = append(g.Sentinels, startSentinel(t, g.Name, g.Master.Port))
	}
	// A failover needs every sentinel to know the replica and a majority of its peers.
	for _, s := range g.Sentinels {
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr()})
		t.Cleanup(func() { sc.Close() })
		waitFor(t, "sentinel "+s.Addr()+" to know the group", func() (bool, string) {
			ctx := context.Background()
			replicas, err1 := sc.Replicas(ctx, g.Name).Result()
			peers, err2 := sc.Sentinels(ctx, g.Name).Result()
			return err1 == nil && err2 == nil && len(replicas) == 1 && len(peers) == 2,
				fmt.Sprintf("replicas %v peers %v (%v %v)", len(replicas), len(peers), err1, err2)
		})
	}
	return g
}

func (g *sentinelGroup) SentinelAddrs() []string {
	var out []string
	for _, s := range g.Sentinels {
		out = append(out, s.Addr())
	}
	return out
}

// MasterAddr asks a sentinel which server is the master now.
func (g *sentinelGroup) MasterAddr(t *testing.T) string {
	t.Helper()
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: g.Sentinels[0].Addr()})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(context.Background(), g.Name).Result()
	if err != nil {
		return ""
	}
	return addr[0] + ":" + addr[1]
}
