package caddymodule

import (
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dcrgate/dcrgate/storage/bolt"
)

// BenchmarkReplayParallel is what a replayed request (its jti already used) costs against a
// new registration, both on all cores (b.RunParallel, pipelineConcurrency in flight per core)
// on the bolt store on disk, in one run:
//
//	go test -run '^$' -bench ReplayParallel -benchtime 2s ./caddymodule/
//
// POST registers a new request per operation; Replay sends one used request again and again
// and reports post_cost_ratio, its time per request as a fraction of POST's. The replay is
// refused by signed_request's screen (a read-only look-up of its replay key) before any key
// fetch, signature verification or policy evaluation, so the ratio is the look-up and the
// request's parsing against the whole pipeline.
func BenchmarkReplayParallel(b *testing.B) {
	boltInProcess := func(b *testing.B) *inProcess {
		p := newInProcess(b)
		s, err := bolt.Open(filepath.Join(b.TempDir(), "registry.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		p.h.store = s
		return p
	}
	var postNs float64
	b.Run("POST", func(b *testing.B) {
		p := boltInProcess(b)
		if w := p.do(http.MethodPost, "/register", p.signedRequest(b, nil), ""); w.Code != http.StatusCreated {
			b.Fatalf("warm-up: %d %s", w.Code, w.Body)
		}
		bodies := make([][]byte, b.N)
		for i := range bodies {
			bodies[i] = p.signedRequest(b, nil)
		}
		var next atomic.Int64
		b.SetParallelism(pipelineConcurrency)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if w := p.do(http.MethodPost, "/register", bodies[next.Add(1)-1], ""); w.Code != http.StatusCreated {
					b.Errorf("status %d %s", w.Code, w.Body)
					return
				}
			}
		})
		postNs = nsPerOp(b)
	})
	b.Run("Replay", func(b *testing.B) {
		p := boltInProcess(b)
		used := p.signedRequest(b, nil)
		if w := p.do(http.MethodPost, "/register", used, ""); w.Code != http.StatusCreated {
			b.Fatalf("first use: %d %s", w.Code, w.Body)
		}
		b.SetParallelism(pipelineConcurrency)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if w := p.do(http.MethodPost, "/register", used, ""); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "already been used") {
					b.Errorf("status %d %s", w.Code, w.Body)
					return
				}
			}
		})
		if ns := nsPerOp(b); postNs > 0 && ns > 0 {
			b.ReportMetric(ns/postNs, "post_cost_ratio")
		}
	})
}
