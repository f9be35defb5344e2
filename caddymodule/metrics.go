package caddymodule

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcrgate/dcrgate/internal/jwks"
)

// dcrMetrics are the handler's Prometheus metrics, on Caddy's registry (the admin endpoint's
// /metrics). No label carries an unbounded value: operations, outcomes, RFC 7591 error codes
// and pipeline stages are small fixed sets; client, software and org ids are never labels.
type dcrMetrics struct {
	requests    *prometheus.CounterVec   // operation, outcome, error
	stage       *prometheus.HistogramVec // stage
	replays     prometheus.Counter
	storeErrors prometheus.Counter
}

// Outcomes of a DCR call.
const (
	outcomeSuccess  = "success"
	outcomeRejected = "rejected" // a 4xx: the caller's request was refused
	outcomeError    = "error"    // a 5xx: a store, key source or backend failed
)

func newDCRMetrics(reg prometheus.Registerer) *dcrMetrics {
	const ns, sub = "caddy", "dcr"
	m := &dcrMetrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "DCR calls by operation, outcome and RFC 7591 error code.",
		}, []string{"operation", "outcome", "error"})),
		stage: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "stage_duration_seconds",
			Help:    "Time spent in each pipeline stage (protections, profile rules, store, registrar).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"stage"})),
		replays: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "replays_rejected_total",
			Help: "Requests refused because a one-time key (request jti, single-use token) was already used.",
		})),
		storeErrors: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "store_errors_total",
			Help: "Store operations that failed (each answered 503).",
		})),
	}
	register(reg, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "jwks_fetches_total",
		Help: "JWKS documents fetched from their origin (process-wide).",
	}, func() float64 { return float64(jwks.Stats().Fetches) }))
	register(reg, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "jwks_fetch_failures_total",
		Help: "JWKS fetches that failed (process-wide).",
	}, func() float64 { return float64(jwks.Stats().Failures) }))
	register(reg, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "jwks_cache_hits_total",
		Help: "Key lookups answered from the JWKS cache (process-wide).",
	}, func() float64 { return float64(jwks.Stats().CacheHits) }))
	return m
}

// register adds c to reg, or returns the collector already registered under its name: several
// dcr handlers in one config share one set of metrics.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *dcrMetrics) observeStage(stage string, since time.Time) {
	m.stage.WithLabelValues(stage).Observe(time.Since(since).Seconds())
}
