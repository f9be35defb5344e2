package caddymodule

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcrgate/dcrgate/dcr"
)

// TestAdmission: max_concurrent calls are admitted, the next one waits the queue timeout and
// is refused with a 503 and Retry-After, a released slot admits again, and a client that goes
// away stops waiting. The refusals are counted and logged once per interval.
func TestAdmission(t *testing.T) {
	m := createDCRMetrics()
	core, logs := observer.New(zap.WarnLevel)
	a := newAdmission(2, 20*time.Millisecond, m, zap.New(core))
	ctx := context.Background()

	r1, w1, e1 := a.admit(ctx)
	r2, w2, e2 := a.admit(ctx)
	if e1 != nil || e2 != nil || w1 || w2 {
		t.Fatalf("within the bound: %v %v, waited %v %v", e1, e2, w1, w2)
	}
	for range 3 {
		release, _, refusal := a.admit(ctx)
		if release != nil || refusal == nil {
			t.Fatal("a third call was admitted with max_concurrent 2")
		}
		if refusal.Status != http.StatusServiceUnavailable || refusal.Code != dcr.CodeTemporarilyUnavailable || refusal.Header.Get("Retry-After") != "1" {
			t.Fatalf("refusal %d %s, Retry-After %q", refusal.Status, refusal.Code, refusal.Header.Get("Retry-After"))
		}
	}
	r1()
	r3, _, e3 := a.admit(ctx)
	if e3 != nil {
		t.Fatalf("a released slot did not admit: %v", e3)
	}
	// A waiting call gets the slot as soon as it is given back.
	got := make(chan *dcr.Error, 1)
	slow := newAdmission(1, time.Hour, m, zap.NewNop())
	rs, _, _ := slow.admit(ctx)
	waiting := make(chan struct{})
	slow.startsWaiting = func() { close(waiting) }
	waited := make(chan bool, 1)
	go func() { _, w, e := slow.admit(ctx); waited <- w; got <- e }()
	<-waiting // give the slot back only once the second call waits for it
	rs()
	if e := <-got; e != nil || !<-waited {
		t.Fatalf("the waiting call was refused (%v) or did not wait", e)
	}
	// A client that went away stops waiting.
	slow.startsWaiting = nil
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, e := slow.admit(gone); e == nil {
		t.Fatal("a cancelled call was admitted to a full bound")
	}
	r2()
	r3()

	if n := counterValue(t, m.admission.WithLabelValues("admitted")); n != 5 {
		t.Fatalf("admitted %v, want 5", n)
	}
	if n := counterValue(t, m.admission.WithLabelValues("refused")); n != 4 {
		t.Fatalf("refused %v, want 4", n)
	}
	if n := logs.FilterMessageSnippet("admission slot").Len(); n != 1 {
		t.Fatalf("%d log lines for 3 refusals within the interval, want 1", n)
	}
}

// TestAdmissionDefaults: the bound derives from GOMAXPROCS and the Retry-After from the
// queue timeout, rounded up to whole seconds.
func TestAdmissionDefaults(t *testing.T) {
	h := &Handler{metrics: createDCRMetrics(), logger: zap.NewNop()}
	h.provisionAdmission()
	if h.MaxConcurrent != DefaultMaxConcurrent() || cap(h.admission.slots) != DefaultMaxConcurrent() || DefaultMaxConcurrent() < 2 {
		t.Fatalf("max_concurrent %d, slots %d", h.MaxConcurrent, cap(h.admission.slots))
	}
	if time.Duration(h.QueueTimeout) != DefaultQueueTimeout {
		t.Fatalf("queue_timeout %v", h.QueueTimeout)
	}
	if a := newAdmission(1, 2500*time.Millisecond, h.metrics, zap.NewNop()); a.retryAfter != "3" {
		t.Fatalf("Retry-After %q for 2.5s, want 3", a.retryAfter)
	}
	for _, bad := range []*Handler{{MaxConcurrent: -1}, {QueueTimeout: -1}} {
		if err := bad.validateAdmission(); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
