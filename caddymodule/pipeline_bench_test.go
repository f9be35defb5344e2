package caddymodule

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/internal/jwks"
	"github.com/dcrgate/dcrgate/internal/tppclient"
	"github.com/dcrgate/dcrgate/storage/bolt"
)

// BenchmarkPipeline compares the whole POST pipeline (mTLS check, SSA verification, request
// verification with the TPP JWKS from the (cached) software_jwks_endpoint, every OB rule, the
// jti replay claim and the registration written to the embedded store on a temp dir) with the
// two bare signature verifications it cannot avoid (the SSA's PS256 and the request's, PS256
// or ES256). Run both in one go and compare:
//
//	go test -run '^$' -bench Pipeline -benchtime 3s ./caddymodule
func BenchmarkPipeline(b *testing.B) {
	benchmarkPipeline(b, newInProcess(b))
}

// BenchmarkPipelineTmpfs is the same pipeline with the store on a tmpfs (/dev/shm), which takes
// the disk's fsync out: what is left is the gateway's own work.
func BenchmarkPipelineTmpfs(b *testing.B) {
	shm, err := os.MkdirTemp("/dev/shm", "dcrgate-bench-")
	if err != nil {
		b.Fatalf("no tmpfs at /dev/shm: %v", err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(shm) })
	benchmarkPipeline(b, newInProcessAt(b, shm))
}

func benchmarkPipeline(b *testing.B, p *inProcess) {
	// Warm the JWKS cache, as a running gateway would be.
	if w := p.do(http.MethodPost, "/register", p.signedRequest(b, nil), ""); w.Code != http.StatusCreated {
		b.Fatalf("warm-up: %d %s", w.Code, w.Body)
	}

	ecKey, _, err := tppclient.LoadSigningKey(p.sb.TPP(1).SigningKeyEC, p.sb.TPP(1).SigningKIDEC, "ES256")
	if err != nil {
		b.Fatal(err)
	}
	// The request signed PS256 (the TPP's RSA key) and ES256 (its P-256 key); the SSA is the
	// directory's PS256 either way.
	for _, alg := range []struct {
		name string
		opts tppclient.SignOptions
	}{
		{"PS256", tppclient.SignOptions{}},
		{"ES256", tppclient.SignOptions{Key: ecKey, Alg: "ES256"}},
	} {
		b.Run("POST/"+alg.name, func(b *testing.B) {
			// Every request needs its own jti, so they are signed before the clock starts.
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = p.signedRequestWith(b, nil, alg.opts)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if w := p.do(http.MethodPost, "/register", bodies[i], ""); w.Code != http.StatusCreated {
					b.Fatalf("status %d %s", w.Code, w.Body)
				}
			}
		})

		b.Run("BareVerify/"+alg.name, func(b *testing.B) {
			req := p.signedRequestWith(b, nil, alg.opts)
			ssa := []byte(p.tpp.SoftwareStatement)
			signer := p.tpp.SigningKey
			reqAlg := jwa.PS256
			if alg.opts.Key != nil {
				signer, reqAlg = alg.opts.Key, jwa.ES256
			}
			tppPub, err := signer.PublicKey()
			if err != nil {
				b.Fatal(err)
			}
			dirSet, err := jwks.LoadFile(p.sb.Files.DirectoryJWKS)
			if err != nil {
				b.Fatal(err)
			}
			dirKey, _ := dirSet.Key(0)
			var dirPub jwk.Key = dirKey
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := jws.Verify(ssa, jws.WithKey(jwa.PS256, dirPub)); err != nil {
					b.Fatal(err)
				}
				if _, err := jws.Verify(req, jws.WithKey(reqAlg, tppPub)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// pipelineConcurrency is the number of requests in flight per core in
// BenchmarkPipelineParallel: a loaded gateway serves many connections at once, and a store
// that group-commits turns them into shared fsyncs.
const pipelineConcurrency = 16

// BenchmarkPipelineParallel is the POST pipeline from all cores at once (b.RunParallel,
// pipelineConcurrency requests in flight per core) against the two bare signature
// verifications it cannot avoid, run the same way, in one run:
//
//	go test -run '^$' -bench PipelineParallel -benchtime 2s ./caddymodule/
//
// BareVerify runs first; POST (the bolt store on disk, the default) and POSTCaddyStore (the
// caddy store on disk) report bare_rate_ratio, their rate as a fraction of BareVerify's
// (1 would mean the pipeline costs nothing beyond its cryptography). Replay posts requests
// whose jti was used (each signed request again, after its 201) on the bolt store and
// reports post_cost_ratio, its time per request as a fraction of POST's: what a replayed
// request costs the gateway. ReplayHarness measures the benchmark's own share of a replay
// (building the httptest request and recorder) and reports it as harness_share of Replay.
// POST, Replay and ReplayHarness also report cpu-ns/op, the process's CPU time per request.
func BenchmarkPipelineParallel(b *testing.B) {
	// With -count n every sub-benchmark runs n times in a row (BareVerify n times, then POST
	// n times, ...); each run starts with a b.N == 1 probe. The k-th run of POST is compared
	// with the k-th of BareVerify, and the k-th Replay with the k-th POST.
	var bareRuns, postRuns, postCaddyRuns []float64
	runOf := func(b *testing.B, runs *[]float64) int {
		if b.N == 1 || len(*runs) == 0 {
			*runs = append(*runs, 0)
		}
		return len(*runs) - 1
	}
	measured := func(runs []float64, k int) float64 {
		if k < len(runs) {
			return runs[k]
		}
		return 0
	}
	b.Run("BareVerify", func(b *testing.B) {
		k := runOf(b, &bareRuns)
		p := newInProcess(b)
		ssa := []byte(p.tpp.SoftwareStatement)
		req := p.signedRequest(b, nil)
		tppPub, err := p.tpp.SigningKey.PublicKey()
		if err != nil {
			b.Fatal(err)
		}
		dirSet, err := jwks.LoadFile(p.sb.Files.DirectoryJWKS)
		if err != nil {
			b.Fatal(err)
		}
		dirPub, _ := dirSet.Key(0)
		b.SetParallelism(pipelineConcurrency)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := jws.Verify(ssa, jws.WithKey(jwa.PS256, dirPub)); err != nil {
					b.Error(err)
					return
				}
				if _, err := jws.Verify(req, jws.WithKey(jwa.PS256, tppPub)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		bareRuns[k] = nsPerOp(b)
	})
	post := func(b *testing.B, p *inProcess, runs *[]float64) {
		k := runOf(b, runs)
		if w := p.do(http.MethodPost, "/register", p.signedRequest(b, nil), ""); w.Code != http.StatusCreated {
			b.Fatalf("warm-up: %d %s", w.Code, w.Body)
		}
		// Every request needs its own jti, so they are signed before the clock starts.
		bodies := make([][]byte, b.N)
		for i := range bodies {
			bodies[i] = p.signedRequest(b, nil)
		}
		var next atomic.Int64
		b.SetParallelism(pipelineConcurrency)
		b.ReportAllocs()
		b.ResetTimer()
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				body := bodies[next.Add(1)-1]
				if w := p.do(http.MethodPost, "/register", body, ""); w.Code != http.StatusCreated {
					b.Errorf("status %d %s", w.Code, w.Body)
					return
				}
			}
		})
		ns := nsPerOp(b)
		if bare := measured(bareRuns, k); bare > 0 && ns > 0 {
			b.ReportMetric(bare/ns, "bare_rate_ratio")
		}
		(*runs)[k] = ns
	}
	b.Run("POST", func(b *testing.B) {
		post(b, newInProcessOnBolt(b), &postRuns)
	})
	var replayRuns []float64
	b.Run("Replay", func(b *testing.B) {
		k := runOf(b, &replayRuns)
		p := newInProcessOnBolt(b)
		// A pool of requests, each registered once before the clock starts; the benchmark
		// posts them again, round robin: every one is a replay of a used jti.
		const pool = 64
		bodies := make([][]byte, pool)
		for i := range bodies {
			bodies[i] = p.signedRequest(b, nil)
			if w := p.do(http.MethodPost, "/register", bodies[i], ""); w.Code != http.StatusCreated {
				b.Fatalf("first post: %d %s", w.Code, w.Body)
			}
		}
		var next atomic.Int64
		b.SetParallelism(pipelineConcurrency)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := reportCPU(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				body := bodies[(next.Add(1)-1)%pool]
				if w := p.do(http.MethodPost, "/register", body, ""); w.Code != http.StatusBadRequest {
					b.Errorf("replay: status %d %s, want 400", w.Code, w.Body)
					return
				}
			}
		})
		ns := nsPerOp(b)
		cpu()
		if post := measured(postRuns, k); post > 0 && ns > 0 {
			b.ReportMetric(ns/post, "post_cost_ratio")
		}
		replayRuns[k] = ns
	})
	// ReplayHarness is what the benchmark itself spends per Replay request outside the
	// handler: the httptest request and recorder inProcess.do builds, without ServeHTTP. It
	// reports harness_share, its time as a fraction of Replay's: the part of a replay's figure
	// that a gateway behind net/http pays in its own request parsing instead.
	var harnessRuns []float64
	b.Run("ReplayHarness", func(b *testing.B) {
		k := runOf(b, &harnessRuns)
		p := newInProcess(b)
		body := p.signedRequest(b, nil)
		var sink atomic.Int64
		b.SetParallelism(pipelineConcurrency)
		b.ReportAllocs()
		b.ResetTimer()
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, w := harnessRequest(p, body)
				sink.Add(r.ContentLength + int64(w.Code))
			}
		})
		if ns, replay := nsPerOp(b), measured(replayRuns, k); replay > 0 && ns > 0 {
			b.ReportMetric(ns/replay, "harness_share")
		}
	})
	b.Run("POSTCaddyStore", func(b *testing.B) {
		post(b, newInProcess(b), &postCaddyRuns)
	})
}

// newInProcessOnBolt is the in-process handler on the bolt store (the default) in a temp dir
// on disk.
func newInProcessOnBolt(b *testing.B) *inProcess {
	p := newInProcess(b)
	s, err := bolt.Open(filepath.Join(b.TempDir(), "registry.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	p.h.store = s
	p.h.audit.history.store = s
	return p
}

// nsPerOp is the wall-clock time per operation of the benchmark so far.
func nsPerOp(b *testing.B) float64 {
	b.StopTimer()
	if b.N == 0 {
		return 0
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// harnessRequest builds what inProcess.do builds for a POST of body before it calls the
// handler: the httptest request over mTLS with TPP 1's certificate, and the recorder.
func harnessRequest(p *inProcess, body []byte) (*http.Request, *httptest.ResponseRecorder) {
	r := httptest.NewRequest(http.MethodPost, "https://localhost/register", bytes.NewReader(body))
	r.TLS.PeerCertificates = []*x509.Certificate{p.cert}
	r.Header.Set("Content-Type", "application/jose")
	return r, httptest.NewRecorder()
}

// reportCPU starts measuring the process's CPU time (getrusage: every goroutine's, the
// garbage collector's and the store's included); the returned func reports it per operation
// as cpu-ns/op, which leaves out the time the benchmark waited for a core on a shared machine.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
