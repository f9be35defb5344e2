package bolt_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
	"github.com/dcrgate/dcrgate/storage/bolt"
	"github.com/dcrgate/dcrgate/storage/caddystorage"
)

// BenchmarkStoreCreateClaim is what one registration costs the store: a Create with its jti
// and its history event (one dcr.Commit, as the registrar writes it), on disk (the test's temp dir), from all cores at once with concurrency
// requests in flight per core (a loaded gateway has many; a store that makes each wait
// for its own fsync cannot use them). caddy (one fsynced file per
// key, and lock files) runs first; bolt reports its speed as a multiple of it (x_caddy), so
// the figure is a ratio measured in one run:
//
//	go test -run '^$' -bench StoreCreateClaim -benchtime 2s ./storage/bolt/
func BenchmarkStoreCreateClaim(b *testing.B) {
	var caddyNs float64
	b.Run("caddy", func(b *testing.B) {
		s := caddystorage.New(&certmagic.FileStorage{Path: b.TempDir()}, "dcr")
		caddyNs = createClaim(b, s)
	})
	b.Run("bolt", func(b *testing.B) {
		s, err := bolt.Open(filepath.Join(b.TempDir(), "registry.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		ns := createClaim(b, s)
		if caddyNs > 0 && ns > 0 {
			b.ReportMetric(caddyNs/ns, "x_caddy")
		}
	})
}

// concurrency is the number of requests in flight per core (b.SetParallelism).
const concurrency = 16

var benchIDs atomic.Int64

// createClaim runs creates with their commit in parallel and returns the wall-clock ns per
// registration.
func createClaim(b *testing.B, s dcr.Store) float64 {
	ctx := b.Context()
	b.SetParallelism(concurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(benchIDs.Add(1))
			c := dcr.Commit{
				Once:  []dcr.OnceClaim{{Key: fmt.Sprintf("jti-%d", i), TTL: time.Hour}},
				Event: &dcr.HistoryEvent{Time: time.Now().UTC(), Event: dcr.EventRegistered, Operation: "register", Status: 201},
			}
			if err := s.Create(ctx, storetest.NewRegistration(i), c); err != nil {
				b.Errorf("Create: %v", err)
				return
			}
		}
	})
	b.StopTimer()
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
