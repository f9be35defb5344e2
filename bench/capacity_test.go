package bench

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/caddymodule"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/loadgen"
	"github.com/dcrgate/dcrgate/internal/sandbox"
	_ "github.com/dcrgate/dcrgate/plugins/mtls"
	_ "github.com/dcrgate/dcrgate/plugins/signedrequest"
	_ "github.com/dcrgate/dcrgate/plugins/softwarestatement"
	_ "github.com/dcrgate/dcrgate/registrars/local"
	_ "github.com/dcrgate/dcrgate/storage/bolt"
)

// inFlightPerCore is the concurrency of both runs of TestCapacityVsInProcess, the same as
// caddymodule's BenchmarkPipelineParallel (16 requests in flight per core).
const inFlightPerCore = 16

// TestCapacityVsInProcess: registrations/s of the real binary over mTLS with keep-alive and
// pre-signed requests (closed loop), against the in-process pipeline's rate measured in the
// same run: the same protections, the same sandbox (its JWKS served by that gateway) and the
// same default store (bolt on disk), the handler called directly from as many goroutines. The
// ratio (capacity_ratio, target ≥ 0.5) is what HTTP, TLS and the process boundary cost. The
// load generator runs on the same machine as the gateway, so its TLS and HTTP client work
// is in the end-to-end figure too. It asserts counts only: every request a 201.
func TestCapacityVsInProcess(t *testing.T) {
	s := currentScale()
	n := startNode(t, s, gatewaytest.Options{DCRBlock: dcrBlock(""), DefaultStore: true})
	workers := inFlightPerCore * runtime.GOMAXPROCS(0)

	h, certs := inProcessHandler(t, n.g, len(n.clients))
	bodies := n.signed(t, s.capacityRequests)
	inproc := inProcessLoop(t, h, certs, workers, s.perLoad, bodies)
	t.Log(inproc)
	if inproc.Statuses[http.StatusCreated] != inproc.Sent || inproc.Sent == 0 {
		t.Fatalf("in-process run: not every registration succeeded: %+v", inproc)
	}

	bodies = n.signed(t, s.capacityRequests)
	e2e := loadgen.ClosedLoop(context.Background(), "register/bolt/capacity", workers, s.perLoad, len(bodies), http.StatusCreated, n.register(bodies))
	t.Log(e2e)
	if e2e.Statuses[http.StatusCreated] != e2e.Sent || e2e.Sent == 0 {
		t.Fatalf("end-to-end run: not every registration succeeded: %+v", e2e)
	}
	ratio := e2e.Achieved / inproc.Achieved
	t.Logf("capacity: end to end %.1f/s, in process %.1f/s: capacity_ratio %.3f (target >= 0.5)", e2e.Achieved, inproc.Achieved, ratio)
	record(t, inproc.Name, inproc)
	record(t, e2e.Name, e2e)
	record(t, "register/bolt/capacity_ratio", ratio)
}

// inProcessHandler is the dcr handler of node g's Caddyfile, provisioned in this process with
// its own bolt file, and the transport certificates of its first tpps TPPs (what mtls sees).
func inProcessHandler(t *testing.T, g *gatewaytest.Gateway, tpps int) (*caddymodule.Handler, []*x509.Certificate) {
	t.Helper()
	sb := g.Sandbox
	pool := map[string]any{"ca": map[string]any{"provider": "file", "pem_files": []string{sb.Files.CABundle}}}
	cfg := map[string]any{
		"default_policy": false,
		"storage":        map[string]any{"backend": "bolt", "path": filepath.Join(t.TempDir(), "registry.db")},
		"protections": []any{
			map[string]any{"protection": "mtls"},
			map[string]any{"protection": "software_statement",
				"directories": []any{map[string]any{"issuer": sandbox.DirectoryIssuer, "keys": map[string]any{"file": sb.Files.DirectoryJWKS},
					"jwks_hosts": []string{fmt.Sprintf("localhost:%d", g.Port)}}},
				"fetch": map[string]any{"tls": pool}},
			map[string]any{"protection": "signed_request", "audience": []string{benchAudience}, "fetch": map[string]any{"tls": pool}},
		},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := new(caddymodule.Handler)
	if err := json.Unmarshal(raw, h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for i := 1; i <= tpps; i++ {
		c, err := sandbox.ReadCertificates(sb.TPP(i).TransportCert)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c[0])
	}
	return h, certs
}

// inProcessLoop calls h for each body (body i is TPP i%len(certs)'s, as node.signed makes
// them) from workers goroutines (at most for d), as loadgen.ClosedLoop does over the network.
func inProcessLoop(t *testing.T, h *caddymodule.Handler, certs []*x509.Certificate, workers int, d time.Duration, bodies [][]byte) loadgen.Result {
	t.Helper()
	next := func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(http.StatusTeapot); return nil }
	serve := func(k int) int {
		r := httptest.NewRequest(http.MethodPost, "https://localhost/register", bytes.NewReader(bodies[k]))
		r.TLS.PeerCertificates = []*x509.Certificate{certs[k%len(certs)]}
		r.Header.Set("Content-Type", "application/jose")
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, handlerFunc(next)); err != nil {
			t.Error(err)
		}
		return w.Code
	}
	// Warm the JWKS caches, as the node's own warm-up did.
	for k := range min(len(certs), len(bodies)) {
		if code := serve(k); code != http.StatusCreated {
			t.Fatalf("in-process warm-up: %d", code)
		}
	}
	first := int64(min(len(certs), len(bodies)))
	var (
		i        atomic.Int64 // the next body, after the warm-up's
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				k := int(first + i.Add(1) - 1)
				if k >= len(bodies) {
					return
				}
				code := serve(k)
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	sent := 0
	for _, c := range statuses {
		sent += c
	}
	return loadgen.Result{Name: "register/bolt/in_process", Workers: workers, Sent: sent, Statuses: statuses, Elapsed: elapsed,
		Achieved: float64(statuses[http.StatusCreated]) / elapsed.Seconds()}
}

type handlerFunc func(http.ResponseWriter, *http.Request) error

func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }
