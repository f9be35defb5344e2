package redis_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
	redisstore "github.com/dcrgate/dcrgate/storage/redis"
)

// prefixes hands every conformance subtest its own key prefix, which makes its store empty
// without flushing a server that other subtests share.
var prefixes atomic.Int64

func nextPrefix() string { return fmt.Sprintf("t%d", prefixes.Add(1)) }

func conformance(t *testing.T, client goredis.UniversalClient, minReplicasAck int) {
	t.Helper()
	storetest.Run(t, func(t *testing.T) dcr.Store {
		return redisstore.New(client, nextPrefix(), minReplicasAck)
	})
}

func TestConformanceStandalone(t *testing.T) {
	srv := startServer(t)
	conformance(t, srv.Client(), 0)
}

func TestConformanceCluster(t *testing.T) {
	addrs := startCluster(t)
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { client.Close() })
	conformance(t, client, 0)

	// The registry of a prefix lives on one node (its hash tag), its one-time keys with it: a
	// registration's script claims them with the record, which Redis Cluster allows only
	// within one slot (the conformance suite above ran those scripts on the Cluster).
	ctx := t.Context()
	s := redisstore.New(client, "spread", 0)
	for i := range 64 {
		if _, err := s.Claim(ctx, fmt.Sprintf("jti-%d", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, storetest.NewRegistration(1)); err != nil {
		t.Fatal(err)
	}
	var withKeys, withBoth atomic.Int32 // ForEachMaster calls back concurrently
	err := client.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
		keys, err := node.Keys(ctx, "{spread}:once:*").Result()
		if err != nil {
			return err
		}
		regs, err := node.Keys(ctx, "{spread}:reg:*").Result()
		if len(keys) > 0 {
			withKeys.Add(1)
			if len(keys) == 64 && len(regs) == 1 {
				withBoth.Add(1)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if withKeys.Load() != 1 || withBoth.Load() != 1 {
		t.Errorf("one-time keys are on %d masters (%d with all 64 and the registration), want all on the registry's", withKeys.Load(), withBoth.Load())
	}
}

// A store that waits for one replica passes the suite on a master with a replica.
func TestConformanceWithReplicaAck(t *testing.T) {
	master := startServer(t)
	replica := startServer(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.Port))
	rc := replica.Client()
	waitFor(t, "the replica in sync", func() (bool, string) {
		info, err := rc.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up"), info
	})
	conformance(t, master.Client(), 1)
}

// Without the replicas it asks for, a store answers an error and leaves no registration:
// an unacknowledged Create is taken back.
func TestReplicaAckMissingLeavesNothing(t *testing.T) {
	srv := startServer(t) // no replica
	s := redisstore.New(srv.Client(), "", 1)
	s.ReplicaAckTimeout = caddy.Duration(100 * time.Millisecond)
	ctx := t.Context()
	rec := storetest.NewRegistration(1)
	err := s.Create(ctx, rec)
	if err == nil || errors.Is(err, dcr.ErrExists) || errors.Is(err, dcr.ErrConflict) || errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("Create without a replica = %v, want a store-unavailable error", err)
	}
	plain := redisstore.New(srv.Client(), "", 0)
	if _, err := plain.Get(ctx, rec.ClientID); !errors.Is(err, dcr.ErrNotFound) {
		t.Errorf("Get after an unacknowledged Create = %v, want ErrNotFound", err)
	}
	if ids, err := plain.ListBySoftware(ctx, rec.SoftwareID); err != nil || len(ids) != 0 {
		t.Errorf("ListBySoftware after an unacknowledged Create = %v, %v; want none", ids, err)
	}
	// The client_id was never issued, so it is free again.
	if err := plain.Create(ctx, storetest.NewRegistration(1)); err != nil {
		t.Errorf("Create after the discarded one: %v", err)
	}
}

// A Redis that is down gives plain errors (the handler's 503), never ErrNotFound or
// ErrExists, which would turn into 401 and lost registrations; and the store works again
// once Redis is back.
func TestRedisDownGivesStoreErrors(t *testing.T) {
	srv := startServer(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, "", 0)
	ctx := t.Context()
	rec := storetest.NewRegistration(1)
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, rec.ClientID)
	checks["Create"] = s.Create(ctx, storetest.NewRegistration(2))
	checks["Update"] = s.Update(ctx, rec.Clone())
	checks["Delete"] = s.Delete(ctx, rec.ClientID, rec.Version)
	_, checks["ListBySoftware"] = s.ListBySoftware(ctx, rec.SoftwareID)
	_, checks["Claim"] = s.Claim(ctx, "jti", time.Minute)
	_, checks["Seen"] = s.Seen(ctx, "jti")
	checks["Release"] = s.Release(ctx, "jti")
	for op, err := range checks {
		if err == nil || errors.Is(err, dcr.ErrNotFound) || errors.Is(err, dcr.ErrExists) || errors.Is(err, dcr.ErrConflict) {
			t.Errorf("%s with Redis down = %v, want a store-unavailable error", op, err)
		}
	}
	srv.Start()
	waitFor(t, "the store to work again", func() (bool, string) {
		ok, err := s.Claim(ctx, "after-restart", time.Minute)
		return err == nil && ok, fmt.Sprint(err)
	})
}

// Updates and Deletes racing on one record: every call succeeds or fails with a store
// error of the interface, exactly one Delete wins, and the index follows it.
func TestConcurrentCreateUpdateDelete(t *testing.T) {
	srv := startServer(t)
	s := redisstore.New(srv.Client(), "", 0)
	ctx := t.Context()
	if err := s.Create(ctx, storetest.NewRegistration(1)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var deleted atomic.Int32
	for range 20 {
		wg.Go(func() {
			for {
				rec, err := s.Get(ctx, "client-1")
				if errors.Is(err, dcr.ErrNotFound) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if rec.Version >= 10 {
					switch err := s.Delete(ctx, rec.ClientID, rec.Version); {
					case err == nil:
						deleted.Add(1)
					case !errors.Is(err, dcr.ErrConflict) && !errors.Is(err, dcr.ErrNotFound):
						t.Error(err)
					}
					continue
				}
				if err := s.Update(ctx, rec); err != nil && !errors.Is(err, dcr.ErrConflict) && !errors.Is(err, dcr.ErrNotFound) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if deleted.Load() != 1 {
		t.Errorf("%d Deletes of one record succeeded, want 1", deleted.Load())
	}
	if ids, err := s.ListBySoftware(ctx, "software-1"); err != nil || len(ids) != 0 {
		t.Errorf("ListBySoftware after the Delete = %v, %v", ids, err)
	}
}

// A one-time key recorded where the previous release kept them (no hash tag) still counts as
// used after the upgrade, until it expires: no replay gets through a rolling restart.
func TestLegacyOnceKeysStayUsed(t *testing.T) {
	srv := startServer(t)
	client := srv.Client()
	ctx := t.Context()
	s := redisstore.New(client, "legacy", 0)
	sum := sha256.Sum256([]byte("jti-old"))
	if err := client.Set(ctx, "legacy:once:"+hex.EncodeToString(sum[:]), "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if seen, err := s.Seen(ctx, "jti-old"); err != nil || !seen {
		t.Fatalf("Seen of a legacy key: %v %v", seen, err)
	}
	if ok, err := s.Claim(ctx, "jti-old", time.Minute); err != nil || ok {
		t.Fatalf("Claim of a legacy key: %v %v, want refused", ok, err)
	}
	err := s.Create(ctx, storetest.NewRegistration(1), dcr.Commit{Once: []dcr.OnceClaim{{Key: "jti-old", TTL: time.Minute}}})
	if !errors.Is(err, dcr.ErrOnceUsed) {
		t.Fatalf("Create with a legacy key: %v, want ErrOnceUsed", err)
	}
	if _, err := s.Get(ctx, "client-1"); !errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("a refused create stored its record: %v", err)
	}
}
