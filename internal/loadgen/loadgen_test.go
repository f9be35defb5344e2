package loadgen

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setOfferedHook installs hook as OpenLoop's scheduler hook for the rest of the test.
func setOfferedHook(t *testing.T, hook func(i int, admitted bool)) {
	t.Helper()
	testHookOffered = hook
	t.Cleanup(func() { testHookOffered = nil })
}

func TestOpenLoopCountsAndPercentiles(t *testing.T) {
	var calls atomic.Int64
	// Room for every request: a scheduler that falls behind (a loaded machine) offers the
	// late ones back to back, and none of them may be refused for want of room here.
	const n = 100
	r := OpenLoop(context.Background(), "t", 1000, n, n, http.StatusOK, func(ctx context.Context, i int) (int, error) {
		calls.Add(1)
		if i%10 == 0 {
			return http.StatusBadRequest, nil
		}
		if i == 5 {
			return 0, errors.New("boom")
		}
		return http.StatusOK, nil
	})
	if calls.Load() != 100 || r.Sent != 100 || r.Unsent != 0 || r.Statuses[200] != 89 || r.Statuses[400] != 10 || r.Errors != 1 {
		t.Fatalf("%+v (calls %d)", r, calls.Load())
	}
	if r.P50 > r.P99 || r.P99 > r.Max || r.Achieved <= 0 {
		t.Fatalf("percentiles out of order: %+v", r)
	}
}

func TestOpenLoopBoundsInFlight(t *testing.T) {
	// The first 5 requests hang until every other one was offered: with 5 allowed in flight,
	// the other 45 find no room and count as errors (the server fell behind).
	const n, room = 50, 5
	release := make(chan struct{})
	var (
		mu       sync.Mutex
		admitted []int
		refused  []int
	)
	setOfferedHook(t, func(i int, ok bool) {
		mu.Lock()
		if ok {
			admitted = append(admitted, i)
		} else {
			refused = append(refused, i)
		}
		mu.Unlock()
		if i == n-1 {
			close(release) // every request was offered: let the hanging ones answer
		}
	})
	var calls atomic.Int64
	r := OpenLoop(context.Background(), "t", 10000, n, room, http.StatusOK, func(ctx context.Context, i int) (int, error) {
		calls.Add(1)
		if i < room {
			<-release
		}
		return http.StatusOK, nil
	})
	if r.Sent != n || r.Unsent != 0 || r.Statuses[200] != room || r.Errors != n-room || calls.Load() != room {
		t.Fatalf("%+v (calls %d)", r, calls.Load())
	}
	if !slices.Equal(admitted, []int{0, 1, 2, 3, 4}) || len(refused) != n-room || refused[0] != room || refused[len(refused)-1] != n-1 {
		t.Fatalf("admitted %v, refused %v", admitted, refused)
	}
}

func TestOpenLoopContextEndCountsUnsent(t *testing.T) {
	// The context ends once request 9 was offered: the 40 requests after it were never sent,
	// which is not an error of the server; the 10 sent ones all answered.
	const n, sent = 50, 10
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	setOfferedHook(t, func(i int, admitted bool) {
		if i == sent-1 {
			cancel()
		}
	})
	var calls atomic.Int64
	r := OpenLoop(ctx, "t", 10000, n, n, http.StatusOK, func(ctx context.Context, i int) (int, error) {
		calls.Add(1)
		return http.StatusOK, nil
	})
	if r.Sent != sent || r.Unsent != n-sent || r.Statuses[200] != sent || r.Errors != 0 || calls.Load() != sent {
		t.Fatalf("%+v (calls %d)", r, calls.Load())
	}
}

func TestClosedLoopStopsAtN(t *testing.T) {
	const n = 40
	var (
		mu   sync.Mutex
		seen = map[int]int{}
	)
	r := ClosedLoop(context.Background(), "t", 4, time.Minute, n, http.StatusOK, func(ctx context.Context, i int) (int, error) {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		return http.StatusOK, nil
	})
	if len(seen) != n || r.Sent != n || r.Statuses[200] != n || r.Workers != 4 {
		t.Fatalf("%+v (distinct requests %d)", r, len(seen))
	}
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("request %d sent %d times", i, seen[i])
		}
	}
}
