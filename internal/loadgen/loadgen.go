// Package loadgen drives a server at a fixed offered rate (open loop) or with a fixed number of
// busy workers (closed loop) and summarises what it saw: achieved rate, latency percentiles,
// status codes. Every run is bounded in count and time and stops by itself.
package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Do sends request number i and returns its HTTP status.
type Do func(ctx context.Context, i int) (int, error)

// Result summarises one run.
type Result struct {
	Name     string         `json:"name"`
	Offered  float64        `json:"offered_per_s,omitempty"` // open loop only
	Workers  int            `json:"workers,omitempty"`       // closed loop only
	Sent     int            `json:"sent"`
	Unsent   int            `json:"unsent,omitempty"` // open loop: never sent, the context ended first
	Errors   int            `json:"errors"`           // transport errors (no status)
	Statuses map[int]int    `json:"statuses"`
	Elapsed  time.Duration  `json:"elapsed_ns"`
	Achieved float64        `json:"achieved_per_s"` // responses with the wanted status per second
	P50      time.Duration  `json:"p50_ns"`
	P90      time.Duration  `json:"p90_ns"`
	P99      time.Duration  `json:"p99_ns"`
	Max      time.Duration  `json:"max_ns"`
	Extra    map[string]any `json:"extra,omitempty"`
}

func (r Result) String() string {
	return fmt.Sprintf("%-34s sent %6d  ok/s %8.1f  p50 %8s  p90 %8s  p99 %8s  max %8s  statuses %v errors %d unsent %d",
		r.Name, r.Sent, r.Achieved, r.P50.Round(10*time.Microsecond), r.P90.Round(10*time.Microsecond),
		r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), r.Statuses, r.Errors, r.Unsent)
}

type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	statuses  map[int]int
	errors    int
}

func (rec *recorder) add(d time.Duration, status int, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err != nil {
		rec.errors++
		return
	}
	rec.statuses[status]++
	rec.latencies = append(rec.latencies, d)
}

func (rec *recorder) result(name string, elapsed time.Duration, wantStatus int) Result {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := Result{Name: name, Statuses: rec.statuses, Errors: rec.errors, Elapsed: elapsed}
	for _, n := range rec.statuses {
		r.Sent += n
	}
	r.Sent += rec.errors
	if elapsed > 0 {
		r.Achieved = float64(rec.statuses[wantStatus]) / elapsed.Seconds()
	}
	if len(rec.latencies) > 0 {
		slices.Sort(rec.latencies)
		pct := func(p float64) time.Duration { return rec.latencies[int(p*float64(len(rec.latencies)-1))] }
		r.P50, r.P90, r.P99, r.Max = pct(.50), pct(.90), pct(.99), rec.latencies[len(rec.latencies)-1]
	}
	return r
}

// testHookOffered, when set by a test, is called by OpenLoop's scheduler once request i was
// offered: admitted (its Do started) or refused for want of room. It lets a test act at a
// known point of the schedule instead of guessing one with a sleep.
var testHookOffered func(i int, admitted bool)

// OpenLoop starts request i at start + i/rate, whether or not earlier ones finished (so a slow
// server shows up as latency, not as a politely lower rate), for n requests at most, with at
// most maxInFlight outstanding (beyond that a request counts as an error: the server fell
// behind the offered load). When ctx ends, the requests not yet sent count as Unsent, not as
// errors; those in flight get ctx and report what their Do returns. A caller that wants every
// scheduled request answered gives ctx no deadline before the schedule's end plus the time
// the last request needs (each Do is best bounded by its own client's timeout).
func OpenLoop(ctx context.Context, name string, rate float64, n, maxInFlight, wantStatus int, do Do) Result {
	rec := &recorder{statuses: map[int]int{}}
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	offered := 0
	for i := range n {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		offered++
		select {
		case sem <- struct{}{}:
		default:
			rec.add(0, 0, fmt.Errorf("more than %d requests in flight", maxInFlight))
			if testHookOffered != nil {
				testHookOffered(i, false)
			}
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			status, err := do(ctx, i)
			rec.add(time.Since(t0), status, err)
		}(i)
		if testHookOffered != nil {
			testHookOffered(i, true)
		}
	}
	wg.Wait()
	r := rec.result(name, time.Since(start), wantStatus)
	r.Offered = rate
	r.Unsent = n - offered
	return r
}

// ClosedLoop keeps workers busy for d (and at most n requests in all).
func ClosedLoop(ctx context.Context, name string, workers int, d time.Duration, n, wantStatus int, do Do) Result {
	rec := &recorder{statuses: map[int]int{}}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
	)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t0 := time.Now()
				status, err := do(ctx, i)
				if ctx.Err() != nil {
					return // cut off by the deadline: not a real answer
				}
				rec.add(time.Since(t0), status, err)
			}
		}()
	}
	wg.Wait()
	r := rec.result(name, time.Since(start), wantStatus)
	r.Workers = workers
	return r
}
