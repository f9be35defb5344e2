package loadgen

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestOpenLoopCountsAndPercentiles(t *testing.T) {
	var calls atomic.Int64
	r := OpenLoop(context.Background(), "t", 1000, 100, 10, http.StatusOK, func(ctx context.Context, i int) (int, error) {
		calls.Add(1)
		if i%10 == 0 {
			return http.StatusBadRequest, nil
		}
		if i == 5 {
			return 0, errors.New("boom")
		}
		return http.StatusOK, nil
	})
	if calls.Load() != 100 || r.Sent != 100 || r.Statuses[200] != 89 || r.Statuses[400] != 10 || r.Errors != 1 {
		t.Fatalf("%+v (calls %d)", r, calls.Load())
	}
	if r.P50 > r.P99 || r.P99 > r.Max || r.Achieved <= 0 {
		t.Fatalf("percentiles out of order: %+v", r)
	}
}

func TestOpenLoopBoundsInFlight(t *testing.T) {
	// The first 5 requests hang until every other one was offered: with 5 allowed in flight,
	// the other 45 find no room and count as errors (the server fell behind).
	release := make(chan struct{})
	var offered atomic.Int64
	go func() {
		for offered.Load() < 5 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second) // the remaining 45 are offered within ~5ms at 10000/s
		close(release)
	}()
	r := OpenLoop(context.Background(), "t", 10000, 50, 5, http.StatusOK, func(ctx context.Context, i int) (int, error) {
		offered.Add(1)
		if i < 5 {
			<-release
		}
		return http.StatusOK, nil
	})
	if r.Sent != 50 || r.Statuses[200] != 5 || r.Errors != 45 {
		t.Fatalf("%+v", r)
	}
}

func TestClosedLoopStopsAtN(t *testing.T) {
	var calls atomic.Int64
	r := ClosedLoop(context.Background(), "t", 4, time.Minute, 40, http.StatusOK, func(ctx context.Context, i int) (int, error) {
		calls.Add(1)
		return http.StatusOK, nil
	})
	if calls.Load() != 40 || r.Sent != 40 || r.Workers != 4 {
		t.Fatalf("%+v (calls %d)", r, calls.Load())
	}
}
