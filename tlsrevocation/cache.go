package tlsrevocation

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// cacheConfig bounds what the cache keeps and how often it asks a source again.
type cacheConfig struct {
	maxEntries int
	// ttl is the lifetime of an answer without a nextUpdate.
	ttl time.Duration
	// maxAge caps the time until an answer is fetched again (0 = its nextUpdate). The answer
	// stays usable until its nextUpdate if that refetch fails.
	maxAge time.Duration
	// retry is the least time between two fetches of a source that failed.
	retry time.Duration
	// timeout bounds one fetch.
	timeout time.Duration
}

// loadFunc fetches and verifies one answer and says until when it may be used (zero: no
// nextUpdate).
type loadFunc func(ctx context.Context) (value any, validUntil time.Time, err error)

// cache holds CRLs and OCSP responses by source key, least recently fetched evicted first.
// Concurrent lookups of a key that is due share one fetch.
type cache struct {
	cfg   cacheConfig
	now   func() time.Time
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]*cacheEntry
	order   *list.List // of *cacheEntry, least recently fetched first
}

type cacheEntry struct {
	key        string
	value      any       // the last good answer, nil if none
	validUntil time.Time // value is usable until then
	refreshAt  time.Time // fetch again from then on
	err        error     // the last fetch's error, nil after a success
	elem       *list.Element
}

// errExpired is the answer of an entry whose value passed its nextUpdate and could not be
// fetched again.
var errExpired = errors.New("the cached answer has passed its nextUpdate")

func newCache(cfg cacheConfig) *cache {
	return &cache{cfg: cfg, now: time.Now, entries: make(map[string]*cacheEntry), order: list.New()}
}

// get returns the answer for key, fetching it with load when there is none or it is due.
func (c *cache) get(ctx context.Context, key string, load loadFunc) (any, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e != nil && c.now().Before(e.refreshAt) {
		v, err := e.usable(c.now())
		c.mu.Unlock()
		return v, err
	}
	c.mu.Unlock()

	ch := c.group.DoChan(key, func() (any, error) {
		// A lookup that found the entry due may reach the group just after another lookup's
		// fetch stored a fresh answer and left it: that answer is used, not fetched again.
		if c.fresh(key) {
			return nil, nil
		}
		// Detached from the caller that started it, so one handshake giving up does not fail
		// the others waiting for the same source; bounded by the fetch timeout.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.timeout)
		defer cancel()
		v, validUntil, err := load(fctx)
		c.store(key, v, validUntil, err)
		return nil, nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the answer: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		return e.usable(c.now())
	}
	return nil, errors.New("no answer") // evicted right away: a cache far too small
}

// fresh reports whether key has an entry that is not due.
func (c *cache) fresh(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	return e != nil && c.now().Before(e.refreshAt)
}

func (c *cache) store(key string, v any, validUntil time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	e := c.entries[key]
	if e == nil {
		e = &cacheEntry{key: key}
		c.entries[key] = e
		e.elem = c.order.PushBack(e)
	} else {
		c.order.MoveToBack(e.elem)
	}
	if err != nil {
		// Keep a still valid answer; ask the source again no sooner than the retry interval,
		// so a source that is down costs one fetch per interval, not one per handshake.
		e.err = err
		e.refreshAt = now.Add(c.cfg.retry)
		if e.value != nil && e.validUntil.Before(e.refreshAt) {
			e.refreshAt = e.validUntil
		}
	} else {
		if validUntil.IsZero() {
			validUntil = now.Add(c.cfg.ttl)
		}
		e.value, e.validUntil, e.err = v, validUntil, nil
		e.refreshAt = validUntil
		if c.cfg.maxAge > 0 && now.Add(c.cfg.maxAge).Before(e.refreshAt) {
			e.refreshAt = now.Add(c.cfg.maxAge)
		}
	}
	for c.order.Len() > c.cfg.maxEntries {
		oldest := c.order.Remove(c.order.Front()).(*cacheEntry)
		delete(c.entries, oldest.key)
	}
}

func (e *cacheEntry) usable(now time.Time) (any, error) {
	if e.value != nil && now.Before(e.validUntil) {
		return e.value, nil
	}
	if e.err != nil {
		return nil, e.err
	}
	return nil, errExpired
}

// len is the number of cached sources (for tests).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
