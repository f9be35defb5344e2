package caddymodule

import (
	"errors"
	"maps"
	"sync"
	"time"
)

// registryCounts is the timeline of DCR outcomes the console and GET /dcr/counts show. It is a
// package variable, like the process-wide metrics collectors (see dcrMetrics): it lives as long
// as the process and goes on across reloads. It is process-local: each gateway node counts
// the calls it answered itself, and a restart starts it again.
//
// Why not the stores' histories: they are kept per client_id and per software_id, so counts for
// the whole registry over time would read every history (a full scan of the store on every
// look at the page), which the list API refuses to do for the same reason.
var registryCounts = newOutcomeTimeline()

// Outcomes the timeline counts; a read (GET of a registration) is no outcome.
var countedOutcomes = map[string]string{
	EventRegistered: "registered",
	EventUpdated:    "updated",
	EventDeleted:    "deleted",
	EventRejected:   "rejected",
}

// Timeline sizes: hourly buckets for the last day, daily buckets for the last month.
const (
	countHours = 24
	countDays  = 30
	// maxCountedErrorCodes bounds the error codes of one bucket. The codes are RFC 7591's and
	// the gateway's own, a small set, but a custom protection or policy names its own: past
	// this many, a bucket counts further codes as "other".
	maxCountedErrorCodes = 32
	otherErrorCode       = "other"
)

// countRanges are the ranges GET /dcr/counts answers: ?range=24h (default) or 30d.
var countRanges = map[string]struct {
	bucket time.Duration
	n      int
}{
	"24h": {time.Hour, countHours},
	"30d": {24 * time.Hour, countDays},
}

// outcomeBucket is one time bucket: the outcomes counted from Start for one bucket width.
type outcomeBucket struct {
	Start      time.Time        `json:"start"`
	Registered int64            `json:"registered"`
	Updated    int64            `json:"updated"`
	Deleted    int64            `json:"deleted"`
	Rejected   int64            `json:"rejected"`
	Errors     map[string]int64 `json:"errors"`
}

func (b *outcomeBucket) add(outcome, errCode string) {
	switch outcome {
	case "registered":
		b.Registered++
	case "updated":
		b.Updated++
	case "deleted":
		b.Deleted++
	case "rejected":
		b.Rejected++
		if errCode == "" {
			return
		}
		if _, known := b.Errors[errCode]; !known && len(b.Errors) >= maxCountedErrorCodes {
			errCode = otherErrorCode
		}
		b.Errors[errCode]++
	}
}

func (b *outcomeBucket) merge(o *outcomeBucket) {
	b.Registered += o.Registered
	b.Updated += o.Updated
	b.Deleted += o.Deleted
	b.Rejected += o.Rejected
	for code, n := range o.Errors {
		b.Errors[code] += n
	}
}

// outcomeTimeline keeps the buckets of both ranges; old buckets are dropped as new ones start,
// so it holds at most countHours+1 hourly and countDays+1 daily buckets.
type outcomeTimeline struct {
	mu    sync.Mutex
	since time.Time
	hours map[int64]*outcomeBucket // by Start (Unix seconds)
	days  map[int64]*outcomeBucket
}

func newOutcomeTimeline() *outcomeTimeline {
	return &outcomeTimeline{since: time.Now().UTC(), hours: map[int64]*outcomeBucket{}, days: map[int64]*outcomeBucket{}}
}

// count records one audited event (an Event* name) at now; other events are ignored.
func (t *outcomeTimeline) count(now time.Time, event, errCode string) {
	outcome, ok := countedOutcomes[event]
	if !ok {
		return
	}
	now = now.UTC()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ring := range []struct {
		buckets map[int64]*outcomeBucket
		width   time.Duration
		n       int
	}{{t.hours, time.Hour, countHours}, {t.days, 24 * time.Hour, countDays}} {
		start := now.Truncate(ring.width)
		b := ring.buckets[start.Unix()]
		if b == nil {
			b = &outcomeBucket{Start: start, Errors: map[string]int64{}}
			ring.buckets[start.Unix()] = b
			oldest := start.Add(-time.Duration(ring.n) * ring.width).Unix()
			maps.DeleteFunc(ring.buckets, func(k int64, _ *outcomeBucket) bool { return k <= oldest })
		}
		b.add(outcome, errCode)
	}
}

// outcomeCounts is the answer of GET /dcr/counts.
type outcomeCounts struct {
	// Scope says what is counted: this process's calls, since it started.
	Scope   string          `json:"scope"`
	Since   time.Time       `json:"counting_since"`
	Range   string          `json:"range"`
	Bucket  string          `json:"bucket"`
	Totals  *outcomeBucket  `json:"totals"`
	Buckets []outcomeBucket `json:"buckets"`
	Note    string          `json:"note"`
}

var errUnknownRange = errors.New(`range must be "24h" or "30d"`)

// window returns the buckets of a range ending with the one now is in, oldest first, with
// empty buckets filled in, and their totals.
func (t *outcomeTimeline) window(now time.Time, rangeName string) (outcomeCounts, error) {
	r, ok := countRanges[rangeName]
	if !ok {
		return outcomeCounts{}, errUnknownRange
	}
	buckets := t.hours
	if r.bucket != time.Hour {
		buckets = t.days
	}
	now = now.UTC()
	last := now.Truncate(r.bucket)
	out := outcomeCounts{Scope: "process", Range: rangeName, Bucket: r.bucket.String(),
		Totals: &outcomeBucket{Start: last.Add(-time.Duration(r.n-1) * r.bucket), Errors: map[string]int64{}},
		Note:   "counted by this gateway process since it started (each node counts its own; a reload keeps the counts, a restart does not)"}
	t.mu.Lock()
	defer t.mu.Unlock()
	out.Since = t.since
	for i := r.n - 1; i >= 0; i-- {
		start := last.Add(-time.Duration(i) * r.bucket)
		b := outcomeBucket{Start: start, Errors: map[string]int64{}}
		if have := buckets[start.Unix()]; have != nil {
			b.merge(have)
		}
		out.Totals.merge(&b)
		out.Buckets = append(out.Buckets, b)
	}
	return out, nil
}
