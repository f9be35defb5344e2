package redis_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

const (
	// benchConcurrency is the number of registrations in flight at once.
	benchConcurrency = 8
	// benchMaxRequests bounds one measurement whatever -benchtime asks for.
	benchMaxRequests = 2000
)

// BenchmarkRegistration measures end-to-end registrations (POST /register over mTLS, through
// the real gateway binary, PS256 request and SSA verified, stored) with the embedded store
// and with Redis on one and on two nodes, in one run on loopback. Requests are signed before
// the clock starts, so the figures are the gateway's, not the client's signing:
//
//	go test -run '^$' -bench Registration -benchtime 400x ./storage/redis/
//
// It reports regs/s and the p50 and p99 latency in milliseconds.
func BenchmarkRegistration(b *testing.B) {
	srv := startServer(b)
	embedded := gatewaytest.Start(b, gatewaytest.Options{TPPs: 1, DCRBlock: gatewaytest.DefaultDCRBlock + "\n\t\tdefault_policy off\n"})
	redisNodes := startNodes(b, 2, "address "+srv.Addr())

	for _, tc := range []struct {
		name     string
		nodes    []*gatewaytest.Gateway
		audience string
	}{
		{"embedded/1node", []*gatewaytest.Gateway{embedded}, ""},
		{"redis/1node", redisNodes[:1], audience},
		{"redis/2nodes", redisNodes, audience},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var clients []*tppclient.Client
			for _, g := range tc.nodes {
				c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(1), g.Endpoint, tc.audience)
				if err != nil {
					b.Fatal(err)
				}
				clients = append(clients, c)
			}
			n := min(b.N, benchMaxRequests)
			bodies := make([][]byte, n)
			for i := range bodies {
				bodies[i] = signed(b, clients[i%len(clients)], nil)
			}
			// One registration per client first, so connections and JWKS caches are warm.
			for _, c := range clients {
				if r, err := c.Register(b.Context(), signed(b, c, nil), "", ""); err != nil || r.Status != 201 {
					b.Fatalf("warm-up registration: %v %v", r, err)
				}
			}
			latencies := make([]time.Duration, n)
			var next atomic.Int64
			var failed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range benchConcurrency {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= n {
							return
						}
						t0 := time.Now()
						r, err := clients[i%len(clients)].Register(b.Context(), bodies[i], "", "")
						latencies[i] = time.Since(t0)
						if err != nil || r.Status != 201 {
							failed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d of %d registrations failed", failed.Load(), n)
			}
			slices.Sort(latencies)
			b.ReportMetric(float64(n)/elapsed.Seconds(), "regs/s")
			b.ReportMetric(ms(latencies[n/2]), "p50-ms")
			b.ReportMetric(ms(latencies[(n*99)/100]), "p99-ms")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
