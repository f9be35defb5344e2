package jwks

import "sync/atomic"

// stats are process-wide counters of every Fetcher, read by the metrics collectors: fetchers
// outlive a config reload while metrics registries do not, so the counters live here.
var stats struct {
	fetches, failures, cacheHits atomic.Uint64
}

// Counters is a snapshot of the fetch statistics.
type Counters struct {
	// Fetches counts requests to JWKS origins; Failures those that failed; CacheHits key
	// lookups answered from a cached set without a fetch.
	Fetches, Failures, CacheHits uint64
}

// Stats returns the process-wide fetch statistics.
func Stats() Counters {
	return Counters{Fetches: stats.fetches.Load(), Failures: stats.failures.Load(), CacheHits: stats.cacheHits.Load()}
}
