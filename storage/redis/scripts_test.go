package redis

import (
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/internal/redistest"
)

// go-redis resends a command whose reply was lost on the connection. The scripts must take
// their own write, seen again, for the success it was, and another write for what it is.
func TestScriptsRecogniseTheirOwnWrite(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: startRedisForUnitTest(t)})
	t.Cleanup(func() { client.Close() })
	s := New(client, "", 0)
	ctx := t.Context()
	keys := []string{s.registrationKey("c"), s.softwareIndexKey("sw"), s.orgIndexKey("org")}
	run := func(script *goredis.Script, keys []string, args ...any) int64 {
		t.Helper()
		n, err := script.Run(ctx, client, keys, args...).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := run(createScript, keys, "c", "sw", "org", `{"client_id":"c"}`, "w1"); n != 1 {
		t.Fatalf("create = %d, want 1", n)
	}
	if n := run(createScript, keys, "c", "sw", "org", `{"client_id":"c"}`, "w1"); n != 1 {
		t.Errorf("create resent = %d, want 1 (its own write)", n)
	}
	if n := run(createScript, keys, "c", "sw", "org", `{"client_id":"c"}`, "w2"); n != 0 {
		t.Errorf("another create = %d, want 0 (taken)", n)
	}
	updKeys := append(append([]string{}, keys...), keys[1], keys[2])
	if n := run(updateScript, updKeys, "c", "1", "sw", "org", `{}`, "w3"); n != 2 {
		t.Fatalf("update = %d, want version 2", n)
	}
	if n := run(updateScript, updKeys, "c", "1", "sw", "org", `{}`, "w3"); n != 2 {
		t.Errorf("update resent = %d, want 2 (its own write)", n)
	}
	if n := run(updateScript, updKeys, "c", "1", "sw", "org", `{}`, "w4"); n != scriptConflict {
		t.Errorf("stale update = %d, want conflict", n)
	}
	if n := run(deleteScript, keys, "c", "2", "2025-01-01T00:00:00Z", "w5"); n != 1 {
		t.Fatalf("delete = %d, want 1", n)
	}
	if n := run(deleteScript, keys, "c", "2", "2025-01-01T00:00:00Z", "w5"); n != 1 {
		t.Errorf("delete resent = %d, want 1 (its own write)", n)
	}
	if n := run(deleteScript, keys, "c", "2", "2025-01-01T00:00:00Z", "w6"); n != scriptNotFound {
		t.Errorf("second delete = %d, want not found", n)
	}
	if n := run(discardScript, keys, "c", "w1"); n != 0 {
		t.Errorf("discard of a record another write changed = %d, want 0", n)
	}
}

// startRedisForUnitTest runs a bare redis-server for this package's internal tests (the
// external tests have the fuller helpers of servers_test.go).
func startRedisForUnitTest(t *testing.T) string {
	t.Helper()
	bin := redistest.ServerPath(t) // fails when missing; skips under -short
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(time.Minute); c.Ping(t.Context()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
	}
	return addr
}
