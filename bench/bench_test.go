package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/loadgen"
	"github.com/dcrgate/dcrgate/internal/redistest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

var (
	full   = flag.Bool("full", false, "run the full suite (tens of minutes) instead of the short smoke run")
	report = flag.String("report", "", "write every result as JSON to this file")
)

// scale is how much each benchmark does: the full suite, or a smoke run for `make test`.
type scale struct {
	tpps             int
	loads            []float64     // offered registrations per second
	perLoad          time.Duration // how long each offered load runs
	capacityRequests int           // pre-signed requests for the closed-loop capacity run
	passWorkers      int
	passFor          time.Duration
	passRounds       int
	memRegs          int           // registrations before the memory reading
	soakRate         float64       // registrations per second during the soak
	soakFor          time.Duration // how long the constant-load run lasts
	soakEvery        time.Duration // how often memory is sampled during it
}

func currentScale() scale {
	if *full {
		return scale{tpps: 20, loads: []float64{25, 50, 100, 200}, perLoad: 20 * time.Second, capacityRequests: 8000,
			passWorkers: 16, passFor: 10 * time.Second, passRounds: 6,
			memRegs: 100_000, soakRate: 40, soakFor: 10 * time.Minute, soakEvery: 30 * time.Second}
	}
	return scale{tpps: 3, loads: []float64{10}, perLoad: time.Second, capacityRequests: 20,
		passWorkers: 4, passFor: time.Second, passRounds: 1,
		memRegs: 30, soakRate: 10, soakFor: 2 * time.Second, soakEvery: time.Second}
}

var (
	resultsMu sync.Mutex
	results   = map[string]any{}
)

func record(t *testing.T, key string, v any) {
	t.Helper()
	resultsMu.Lock()
	results[key] = v
	resultsMu.Unlock()
	b, _ := json.Marshal(v)
	t.Logf("%s: %s", key, b)
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if *report != "" {
		results["full"] = *full
		results["date"] = time.Now().UTC().Format(time.RFC3339)
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*report, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// node is a gateway and one TPP client per sandbox TPP.
type node struct {
	g       *gatewaytest.Gateway
	clients []*tppclient.Client
	ecKeys  []jwk.Key // set to sign with the TPPs' ES256 keys
}

// useES256 makes later signatures ES256 with each TPP's EC key.
func (n *node) useES256(t *testing.T) {
	t.Helper()
	for i := range n.clients {
		tpp := n.g.Sandbox.TPP(i + 1)
		k, _, err := tppclient.LoadSigningKey(tpp.SigningKeyEC, tpp.SigningKIDEC, "ES256")
		if err != nil {
			t.Fatal(err)
		}
		n.ecKeys = append(n.ecKeys, k)
	}
}

const benchAudience = "https://dcr.bench"

// dcrBlock is the example protections, with a fixed audience (so several nodes accept the same
// requests) and the store line. The default policy is off: its per-software limit would cap
// the thousands of registrations a few TPPs make here (the policy has its own benchmark).
func dcrBlock(storage string) string {
	return strings.Replace(gatewaytest.DefaultDCRBlock, "audience {{BASE}}", "audience "+benchAudience, 1) +
		"\n\t\t" + storage + "\n\t\tdefault_policy off\n"
}

func startNode(t *testing.T, s scale, o gatewaytest.Options) *node {
	t.Helper()
	o.TPPs = s.tpps
	g := gatewaytest.Start(t, o)
	n := &node{g: g}
	for i := 1; i <= s.tpps; i++ {
		c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(i), g.Endpoint, benchAudience)
		if err != nil {
			t.Fatal(err)
		}
		n.clients = append(n.clients, c)
	}
	// One registration per TPP first: connections, TLS sessions and JWKS caches are warm, as
	// on a gateway that has been up for a while.
	for _, c := range n.clients {
		body, _ := c.Sign(c.Claims(), tppclient.SignOptions{})
		if r, err := c.Register(gatewaytest.Context(t), body, "", ""); err != nil || r.Status != http.StatusCreated {
			t.Fatalf("warm-up registration: %v %+v\n%s", err, r, g.Logs())
		}
	}
	return n
}

// signed pre-signs count registrations (PS256) round-robin over the TPPs: signing is the
// TPP's cost, not the gateway's, so it happens before the clock starts.
func (n *node) signed(t *testing.T, count int) [][]byte {
	return n.signedWith(t, count, tppclient.SignOptions{})
}

// signedWith signs with the given options (the memory runs use the TPPs' ES256 keys: cheap to
// sign, and what is measured there is the gateway's memory, not its speed).
func (n *node) signedWith(t *testing.T, count int, o tppclient.SignOptions) [][]byte {
	t.Helper()
	bodies := make([][]byte, count)
	for i := range bodies {
		c := n.clients[i%len(n.clients)]
		opts := o
		if n.ecKeys != nil {
			opts.Key, opts.Alg = n.ecKeys[i%len(n.clients)], "ES256"
		}
		b, err := c.Sign(c.Claims(), opts)
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = b
	}
	return bodies
}

func (n *node) register(bodies [][]byte) loadgen.Do {
	return func(ctx context.Context, i int) (int, error) {
		c := n.clients[i%len(n.clients)]
		r, err := c.Register(ctx, bodies[i], "", "")
		if err != nil {
			return 0, err
		}
		return r.Status, nil
	}
}

// registerFresh signs each registration as it is sent (with the node's signing options).
func (n *node) registerFresh() loadgen.Do {
	return func(ctx context.Context, i int) (int, error) {
		c := n.clients[i%len(n.clients)]
		var o tppclient.SignOptions
		if n.ecKeys != nil {
			o.Key, o.Alg = n.ecKeys[i%len(n.clients)], "ES256"
		}
		body, err := c.Sign(c.Claims(), o)
		if err != nil {
			return 0, err
		}
		r, err := c.Register(ctx, body, "", "")
		if err != nil {
			return 0, err
		}
		return r.Status, nil
	}
}

// TestRegistrationLoad: registrations/s and latency at fixed offered loads over real mTLS with
// keep-alive, many TPP identities and fresh jtis, on the embedded store and on Redis.
func TestRegistrationLoad(t *testing.T) {
	s := currentScale()
	redis := redistest.Start(t)
	for _, store := range []struct{ name, line string }{
		{"embedded", "storage caddy"},
		{"redis", "storage redis " + redis.Addr()},
	} {
		n := startNode(t, s, gatewaytest.Options{DCRBlock: dcrBlock(store.line)})
		for _, rate := range s.loads {
			count := int(rate * s.perLoad.Seconds())
			bodies := n.signed(t, count)
			r := loadgen.OpenLoop(context.Background(), fmt.Sprintf("register/%s/%g", store.name, rate), rate, count, 256, http.StatusCreated, n.register(bodies))
			t.Log(r)
			if r.Statuses[http.StatusCreated] == 0 {
				t.Fatalf("no registration succeeded: %+v\n%s", r, n.g.Logs())
			}
			record(t, r.Name, r)
		}
		// Capacity: as many registrations as 16 busy clients get through.
		bodies := n.signed(t, s.capacityRequests)
		r := loadgen.ClosedLoop(context.Background(), "register/"+store.name+"/capacity", 16, s.perLoad, len(bodies), http.StatusCreated, n.register(bodies))
		t.Log(r)
		if r.Statuses[http.StatusCreated] != r.Sent {
			t.Errorf("capacity run: not every registration succeeded: %+v", r)
		}
		record(t, r.Name, r)
		n.g.Stop()
	}
}

// TestPassThrough: non-DCR requests through Caddy with dcr configured vs Caddy with only
// reverse_proxy, same backend, same run, alternating rounds so drift hits both alike.
func TestPassThrough(t *testing.T) {
	s := currentScale()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Data":{"Account":[{"AccountId":"22289","Currency":"GBP"}]}}`)
	}))
	defer backend.Close()
	upstream := strings.TrimPrefix(backend.URL, "http://")
	withDCR := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1, Upstream: upstream})
	plain := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1, Upstream: upstream, WithoutDCR: true})

	get := func(g *gatewaytest.Gateway) loadgen.Do {
		pool := mustPool(t, g)
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: s.passWorkers}}
		url := g.BaseURL + "/open-banking/v3.1/aisp/accounts"
		return func(ctx context.Context, i int) (int, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}
	}
	dcrDo, plainDo := get(withDCR), get(plain)
	var sumDCR, sumPlain, p99DCR, p99Plain float64
	var roundRatios []float64
	for round := range s.passRounds {
		run := func(name string, do loadgen.Do) loadgen.Result {
			return loadgen.ClosedLoop(context.Background(), fmt.Sprintf("passthrough/%s/%d", name, round), s.passWorkers, s.passFor, 1<<30, http.StatusOK, do)
		}
		// ABBA: which one runs first alternates, so warm-up and drift do not favour either.
		var a, b loadgen.Result
		if round%2 == 0 {
			a, b = run("dcr", dcrDo), run("plain", plainDo)
		} else {
			b, a = run("plain", plainDo), run("dcr", dcrDo)
		}
		t.Log(a)
		t.Log(b)
		if a.Statuses[http.StatusOK] == 0 || b.Statuses[http.StatusOK] == 0 {
			t.Fatalf("pass-through failed: %+v %+v", a, b)
		}
		sumDCR, sumPlain = sumDCR+a.Achieved, sumPlain+b.Achieved
		roundRatios = append(roundRatios, a.Achieved/b.Achieved)
		p99DCR, p99Plain = p99DCR+float64(a.P99), p99Plain+float64(b.P99)
		record(t, a.Name, a)
		record(t, b.Name, b)
	}
	slices.Sort(roundRatios)
	record(t, "passthrough/ratio", map[string]any{
		"throughput_dcr_over_plain":         sumDCR / sumPlain,
		"p99_dcr_over_plain":                p99DCR / p99Plain,
		"throughput_ratio_per_round":        roundRatios,
		"throughput_ratio_median_of_rounds": roundRatios[len(roundRatios)/2],
	})
}

// TestMemory: RSS and Go heap after many registrations, per store, and over a run at a
// constant load (sampled: flat or not).
func TestMemory(t *testing.T) {
	s := currentScale()
	redis := redistest.Start(t)
	for _, store := range []struct{ name, line string }{
		{"embedded", "storage caddy"},
		{"redis", "storage redis " + redis.Addr()},
	} {
		admin := gatewaytest.FreePort(t)
		n := startNode(t, s, gatewaytest.Options{DCRBlock: dcrBlock(store.line), AdminPort: admin})
		n.useES256(t)
		before := readMemory(t, n.g, admin)
		// Registrations in chunks, signed just ahead, 8 in flight.
		const chunk = 2000
		done := 0
		for done < s.memRegs {
			k := min(chunk, s.memRegs-done)
			bodies := n.signed(t, k)
			r := loadgen.ClosedLoop(context.Background(), "memory-fill", 8, time.Hour, k, http.StatusCreated, n.register(bodies))
			if r.Statuses[http.StatusCreated] != k {
				t.Fatalf("filling: %+v\n%s", r, n.g.Logs())
			}
			done += k
		}
		after := readMemory(t, n.g, admin)
		record(t, "memory/"+store.name+"/after_registrations", map[string]any{
			"registrations": s.memRegs, "before": before, "after": after})

		// Constant load: sample memory while registering at soakRate. The requests are signed
		// as they are sent (ES256: cheap), since pre-signed ones would expire during the run.
		// The run is bounded by its count (the last request is sent at soakFor - 1/soakRate)
		// and each request by the client's timeout, not by a deadline at the schedule's end:
		// such a deadline cuts off the last requests whenever they take longer than 1/soakRate.
		// Sampling lasts until the run has ended.
		var samples []memory
		total := int(s.soakRate * s.soakFor.Seconds())
		soakDone := make(chan struct{})
		var soak loadgen.Result
		go func() {
			defer close(soakDone)
			soak = loadgen.OpenLoop(context.Background(), "soak/"+store.name, s.soakRate, total, 256, http.StatusCreated, n.registerFresh())
		}()
		tick := time.NewTicker(s.soakEvery)
		for sampling := true; sampling; {
			select {
			case <-tick.C:
				samples = append(samples, readMemory(t, n.g, admin))
			case <-soakDone:
				sampling = false
			}
		}
		tick.Stop()
		samples = append(samples, readMemory(t, n.g, admin))
		if soak.Sent != total || soak.Statuses[http.StatusCreated] != total {
			t.Errorf("constant load: not every one of the %d registrations was sent and succeeded: %+v\n%s", total, soak, n.g.Logs())
		}
		record(t, "memory/"+store.name+"/constant_load", map[string]any{"load": soak, "samples": samples})
		n.g.Stop()
	}
}

// memory is one reading of the gateway process.
type memory struct {
	At        time.Time `json:"at"`
	RSSBytes  int64     `json:"rss_bytes"`
	HeapInuse int64     `json:"heap_inuse_bytes"`
}

func readMemory(t *testing.T, g *gatewaytest.Gateway, adminPort int) memory {
	t.Helper()
	m := memory{At: time.Now()}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", g.PID()))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			m.RSSBytes = kb << 10
		}
	}
	f.Close()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc = bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			m.HeapInuse = int64(v)
		}
	}
	if m.RSSBytes == 0 || m.HeapInuse == 0 {
		t.Fatalf("could not read memory: %+v", m)
	}
	return m
}
