package caddymodule

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcrgate/dcrgate/internal/jwks"
)

func init() {
	caddy.RegisterModule(metricsRegistrar{})
}

// dcrMetrics are the handler's Prometheus metrics, served by the admin endpoint's /metrics. No
// label carries an unbounded value: operations, outcomes, RFC 7591 error codes and pipeline
// stages are small fixed sets; client, software and org ids are never labels.
//
// Caddy gives each config its own registry, and /metrics serves the registry of the config that
// was loaded last, even one that was then rejected. One set of collectors therefore lives for the
// whole process, like Caddy's own admin and config-reload metrics, and is registered on every
// config's registry: the counters go on across a successful reload instead of starting again at
// zero, and a rejected reload's registry shows the same values the running handlers increment.
type dcrMetrics struct {
	requests    *prometheus.CounterVec   // operation, outcome, error
	stage       *prometheus.HistogramVec // stage
	replays     prometheus.Counter
	storeErrors prometheus.Counter
	admission   *prometheus.CounterVec // outcome: admitted, refused

	jwksFetches, jwksFailures, jwksCacheHits prometheus.CounterFunc
}

// Outcomes of a DCR call.
const (
	outcomeSuccess  = "success"
	outcomeRejected = "rejected" // a 4xx: the caller's request was refused
	outcomeError    = "error"    // a 5xx: a store, key source or backend failed
)

var (
	processMetricsOnce sync.Once
	// processMetrics is set once a dcr handler has been provisioned in this process; before
	// that the metrics are on no registry (a Caddy without a dcr handler shows none).
	processMetrics atomic.Pointer[dcrMetrics]
)

// newDCRMetrics returns the process's dcr metrics, created on the first call, and registers
// them on reg (a config's registry) if they are not on it yet.
func newDCRMetrics(reg *prometheus.Registry) *dcrMetrics {
	processMetricsOnce.Do(func() { processMetrics.Store(createDCRMetrics()) })
	m := processMetrics.Load()
	m.registerOn(reg)
	return m
}

func createDCRMetrics() *dcrMetrics {
	const ns, sub = "caddy", "dcr"
	return &dcrMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "DCR calls by operation, outcome and RFC 7591 error code.",
		}, []string{"operation", "outcome", "error"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "stage_duration_seconds",
			Help:    "Time spent in each pipeline stage (protections, profile rules, store, registrar).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"stage"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "replays_rejected_total",
			Help: "Requests refused because a one-time key (request jti, single-use token) was already used.",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "store_errors_total",
			Help: "Store operations that failed (each answered 503).",
		}),
		admission: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "admission_total",
			Help: "Registrations and updates admitted to the pipeline, or refused 503 because every slot (max_concurrent) stayed busy for queue_timeout.",
		}, []string{"outcome"}),
		jwksFetches: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "jwks_fetches_total",
			Help: "JWKS documents fetched from their origin (process-wide).",
		}, func() float64 { return float64(jwks.Stats().Fetches) }),
		jwksFailures: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "jwks_fetch_failures_total",
			Help: "JWKS fetches that failed (process-wide).",
		}, func() float64 { return float64(jwks.Stats().Failures) }),
		jwksCacheHits: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "jwks_cache_hits_total",
			Help: "Key lookups answered from the JWKS cache (process-wide).",
		}, func() float64 { return float64(jwks.Stats().CacheHits) }),
	}
}

// registerOn adds the collectors to reg. A registry that already has them (several dcr handlers
// in one config, or the metricsRegistrar and a handler) is left as it is: each collector is on a
// registry once, so nothing is counted twice.
func (m *dcrMetrics) registerOn(reg *prometheus.Registry) {
	if reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{m.requests, m.stage, m.replays, m.storeErrors, m.admission,
		m.jwksFetches, m.jwksFailures, m.jwksCacheHits} {
		// An error means reg has a collector of that name already: this one (AlreadyRegisteredError),
		// as the names are the dcr module's.
		_ = reg.Register(c)
	}
}

func (m *dcrMetrics) observeStage(stage string, since time.Time) {
	m.stage.WithLabelValues(stage).Observe(time.Since(since).Seconds())
}

// metricsRegistrar puts the dcr metrics on each config's registry as the config is loaded. Caddy
// provisions every admin.api module with the new config's context when it starts that config's
// admin endpoint, before it provisions any app; so the registry /metrics serves has the dcr
// metrics even when the config is then rejected before a dcr handler is provisioned (a bad
// certificate file, a bad option in another site).
type metricsRegistrar struct{}

// CaddyModule returns the Caddy module information.
func (metricsRegistrar) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.dcr_metrics",
		New: func() caddy.Module { return new(metricsRegistrar) },
	}
}

// Provision registers the dcr metrics on ctx's registry once a dcr handler has created them.
func (*metricsRegistrar) Provision(ctx caddy.Context) error {
	if m := processMetrics.Load(); m != nil {
		m.registerOn(ctx.GetMetricsRegistry())
	}
	return nil
}

// Routes adds none: /metrics is Caddy's (admin.api.metrics).
func (*metricsRegistrar) Routes() []caddy.AdminRoute { return nil }

// Interface guards
var (
	_ caddy.Provisioner = (*metricsRegistrar)(nil)
	_ caddy.AdminRouter = (*metricsRegistrar)(nil)
)
