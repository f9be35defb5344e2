package redis_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/redistest"
)

// server is one redis-server the test started (internal/redistest).
type server = redistest.Server

const startupDeadline = redistest.StartupDeadline

func startServer(t testing.TB, extra ...string) *server { return redistest.Start(t, extra...) }

func startSentinel(t *testing.T, name string, masterPort int) *server {
	return redistest.StartSentinel(t, name, masterPort)
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
	redistest.ServerPath(t)
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

// MasterAddr asks the sentinels which server is the master now: the address they all give,
// or "" while they disagree (one that has not yet learnt of a failover could still act on the
// old view).
func (g *sentinelGroup) MasterAddr(t *testing.T) string {
	t.Helper()
	agreed := ""
	for i, s := range g.Sentinels {
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr()})
		addr, err := sc.GetMasterAddrByName(context.Background(), g.Name).Result()
		sc.Close()
		if err != nil {
			return ""
		}
		if a := addr[0] + ":" + addr[1]; i == 0 {
			agreed = a
		} else if a != agreed {
			return ""
		}
	}
	return agreed
}
