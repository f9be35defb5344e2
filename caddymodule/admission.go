package caddymodule

import (
	"context"
	"errors"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// Defaults of the admission control (Handler.MaxConcurrent, Handler.QueueTimeout).
const (
	// admissionPerCore is how many expensive calls run at once per GOMAXPROCS by default:
	// their phases are mostly CPU (two signature verifications, the policy) with short waits
	// for the store and, on a cache miss, a JWKS fetch, so a little more than one per core
	// keeps the cores busy without letting a burst queue up inside the cryptography.
	admissionPerCore = 2
	// DefaultQueueTimeout is how long a call waits for a slot before it is answered 503.
	DefaultQueueTimeout = time.Second
	// admissionLogInterval spaces the log lines about refused calls.
	admissionLogInterval = 10 * time.Second
)

// DefaultMaxConcurrent is the default bound on expensive DCR calls running at once.
func DefaultMaxConcurrent() int { return admissionPerCore * runtime.GOMAXPROCS(0) }

// admission bounds the registrations and updates that run the phases at once, so that an
// overload is answered by an explicit 503 temporarily_unavailable with Retry-After before any
// cryptography, rather than by every call slowing down until timeouts fire part-way (a policy
// that "did not decide in time", a client that gave up on a call that then commits).
//
// A call takes a slot after the screen (the cheap refusals: a replayed jti costs a look-up and
// never a slot), is screened again if it had to wait (the copy of a request that committed
// meanwhile is then refused without its cryptography), and gives the slot back when the
// phases are done: the commit waits on the store's
// I/O, not on the CPU, and the store batches concurrent commits. Reads and deletes do not
// take a slot: they verify no software statement and no signed request, their cost is the
// authenticate phase's, and a TPP should be able to read or delete its registration (which
// lowers the load) while registrations are being refused.
type admission struct {
	slots   chan struct{}
	timeout time.Duration
	// retryAfter is the Retry-After of a refusal, in seconds (the queue timeout rounded up).
	retryAfter string
	metrics    *dcrMetrics
	logger     *zap.Logger

	mu      sync.Mutex
	lastLog time.Time
	refused int // since lastLog

	// startsWaiting, when set (by tests), is called when a call finds every slot busy.
	startsWaiting func()
}

func newAdmission(maxConcurrent int, timeout time.Duration, metrics *dcrMetrics, logger *zap.Logger) *admission {
	return &admission{
		slots:      make(chan struct{}, maxConcurrent),
		timeout:    timeout,
		retryAfter: strconv.Itoa(int(math.Ceil(max(timeout, time.Second).Seconds()))),
		metrics:    metrics,
		logger:     logger,
	}
}

// errOverloaded is the logged cause of a refusal.
var errOverloaded = errors.New("every admission slot stayed busy for the whole queue timeout")

// admit waits up to the queue timeout for a slot and returns the function that gives it back
// and whether the call had to wait for it, or the 503 to answer when none came free in time
// (or the client went away meanwhile).
func (a *admission) admit(ctx context.Context) (release func(), waited bool, refusal *dcr.Error) {
	select {
	case a.slots <- struct{}{}:
		return a.admitted(), false, nil
	default:
	}
	if a.startsWaiting != nil {
		a.startsWaiting()
	}
	timer := time.NewTimer(a.timeout)
	defer timer.Stop()
	select {
	case a.slots <- struct{}{}:
		return a.admitted(), true, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	a.metrics.admission.WithLabelValues("refused").Inc()
	a.logRefusal()
	e := dcr.Unavailable(errOverloaded, "the registration endpoint is at capacity; retry after %s seconds", a.retryAfter)
	e.Header = http.Header{"Retry-After": {a.retryAfter}}
	return nil, false, e
}

func (a *admission) admitted() func() {
	a.metrics.admission.WithLabelValues("admitted").Inc()
	return func() { <-a.slots }
}

// logRefusal writes at most one line per admissionLogInterval, with the refusals since the
// previous line: a burst is one line, not one per refused call.
func (a *admission) logRefusal() {
	a.mu.Lock()
	a.refused++
	now := time.Now()
	if now.Sub(a.lastLog) < admissionLogInterval {
		a.mu.Unlock()
		return
	}
	n := a.refused
	a.refused, a.lastLog = 0, now
	a.mu.Unlock()
	a.logger.Warn("DCR calls refused: every admission slot is busy (raise max_concurrent or add capacity)",
		zap.Int("refused", n),
		zap.Duration("since_last_report", admissionLogInterval),
		zap.Int("max_concurrent", cap(a.slots)),
		zap.Duration("queue_timeout", a.timeout))
}

// takesSlot reports whether a call of op is bounded by the admission control.
func takesSlot(op dcr.Operation) bool { return op == dcr.OpRegister || op == dcr.OpUpdate }

// provisionAdmission applies the defaults and builds the admission control.
func (h *Handler) provisionAdmission() {
	if h.MaxConcurrent == 0 {
		h.MaxConcurrent = DefaultMaxConcurrent()
	}
	if h.QueueTimeout == 0 {
		h.QueueTimeout = caddy.Duration(DefaultQueueTimeout)
	}
	h.admission = newAdmission(h.MaxConcurrent, time.Duration(h.QueueTimeout), h.metrics, h.logger)
}

// validateAdmission refuses bounds that could not work.
func (h *Handler) validateAdmission() error {
	if h.MaxConcurrent < 0 {
		return errors.New("dcr: max_concurrent must not be negative (0 = the default, 2 × GOMAXPROCS)")
	}
	if h.QueueTimeout < 0 {
		return errors.New("dcr: queue_timeout must not be negative")
	}
	return nil
}
