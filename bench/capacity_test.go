package bench

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	cpu0 := selfCPU(t)
	inproc := inProcessLoop(t, h, certs, workers, s.perLoad, bodies)
	inprocCPU := selfCPU(t) - cpu0
	t.Log(inproc)
	if inproc.Statuses[http.StatusCreated] != inproc.Sent || inproc.Sent == 0 {
		t.Fatalf("in-process run: not every registration succeeded: %+v", inproc)
	}

	bodies = n.signed(t, s.capacityRequests)
	gw0, cpu0 := processCPU(t, n.g.PID()), selfCPU(t)
	e2e := loadgen.ClosedLoop(context.Background(), "register/bolt/capacity", workers, s.perLoad, len(bodies), http.StatusCreated, n.post(bodies))
	gatewayCPU, clientCPU := processCPU(t, n.g.PID())-gw0, selfCPU(t)-cpu0
	t.Log(e2e)
	if e2e.Statuses[http.StatusCreated] != e2e.Sent || e2e.Sent == 0 {
		t.Fatalf("end-to-end run: not every registration succeeded: %+v", e2e)
	}
	ratio := e2e.Achieved / inproc.Achieved
	t.Logf("capacity: end to end %.1f/s, in process %.1f/s: capacity_ratio %.3f (target >= 0.5)", e2e.Achieved, inproc.Achieved, ratio)
	// Where the end-to-end CPU went: the gateway process, and this process (the load
	// generator's TLS client and the gateway's log lines read from its pipe), per registration,
	// against the in-process run's.
	perReg := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(max(n, 1)) }
	cpu := map[string]float64{
		"in_process_us_per_reg":     perReg(inprocCPU, inproc.Statuses[http.StatusCreated]),
		"gateway_us_per_reg":        perReg(gatewayCPU, e2e.Statuses[http.StatusCreated]),
		"load_generator_us_per_reg": perReg(clientCPU, e2e.Statuses[http.StatusCreated]),
	}
	t.Logf("CPU per registration: in process %.0f µs; end to end: gateway %.0f µs, load generator %.0f µs",
		cpu["in_process_us_per_reg"], cpu["gateway_us_per_reg"], cpu["load_generator_us_per_reg"])
	record(t, inproc.Name, inproc)
	record(t, e2e.Name, e2e)
	record(t, "register/bolt/capacity_ratio", ratio)
	record(t, "register/bolt/capacity_cpu", cpu)
}

// post POSTs bodies[i] as TPP i's registration and drains the answer without decoding it:
// the load generator's share of the two cores is kept to the HTTP and TLS it cannot avoid
// (the status is what ClosedLoop counts; TestRegistrationLoad's clients read every body).
func (n *node) post(bodies [][]byte) loadgen.Do {
	return func(ctx context.Context, i int) (int, error) {
		c := n.clients[i%len(n.clients)]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(bodies[i]))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/jose")
		res, err := c.HTTP.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode, err
	}
}

// selfCPU is this process's CPU time so far (user and system, every thread).
func selfCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is process pid's CPU time so far, from /proc/pid/stat (utime and stime, in
// clock ticks of 1/100 s, the USER_HZ of Linux on every architecture Go supports here).
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's closing parenthesis; utime and stime are the 14th and
	// 15th of the whole line, the 12th and 13th after it.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/stat: %q", pid, data)
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
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
