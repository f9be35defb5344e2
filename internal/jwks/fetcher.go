package jwks

import (
	"container/list"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/internal/jose"
)

// FetcherConfig configures a Fetcher. Zero (or negative) fields take the defaults shown.
type FetcherConfig struct {
	Timeout                     time.Duration  // whole request, default 5s
	MaxBytes                    int64          // response size limit, default 256 KiB; larger bodies are an error, never truncated and parsed
	DefaultTTL                  time.Duration  // cache lifetime when the response has no cache headers, default 1h
	MinTTL, MaxTTL              time.Duration  // clamp for Cache-Control max-age / Expires, defaults 1m and 24h
	RefreshOnUnknownKIDInterval time.Duration  // refetch on an unknown kid, or retry a failing origin, at most once per this, default 1m
	RootCAs                     *x509.CertPool // nil = system roots; ignored when TLS is set
	TLS                         *tls.Config    // the whole TLS client configuration (cloned); nil = TLS 1.2+ with RootCAs
	MaxEntries                  int            // bound on cached URLs, default 10000 (the least recently refreshed is evicted)
}

const (
	defaultTimeout    = 5 * time.Second
	defaultMaxBytes   = 256 << 10
	defaultTTL        = time.Hour
	defaultMinTTL     = time.Minute
	defaultMaxTTL     = 24 * time.Hour
	defaultUnknownKID = time.Minute
	defaultMaxEntries = 10000

	// errBodyPrefix bounds how much of an error response is quoted in an error.
	errBodyPrefix = 64
)

func (c FetcherConfig) withDefaults() FetcherConfig {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&c.Timeout, defaultTimeout)
	setDur(&c.DefaultTTL, defaultTTL)
	setDur(&c.MinTTL, defaultMinTTL)
	setDur(&c.MaxTTL, defaultMaxTTL)
	setDur(&c.RefreshOnUnknownKIDInterval, defaultUnknownKID)
	if c.MaxTTL < c.MinTTL {
		c.MaxTTL = c.MinTTL
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = defaultMaxBytes
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = defaultMaxEntries
	}
	return c
}

// Fetcher downloads key sets from https URLs and caches them per URL.
//
//   - Only https is fetched, redirects are never followed, and responses other than 200
//     or larger than MaxBytes are failures.
//   - The cache lifetime comes from Cache-Control max-age (less Age) or Expires, else
//     DefaultTTL, always clamped to [MinTTL, MaxTTL]. no-cache and no-store count as a
//     lifetime of zero, so they are clamped to MinTTL: the floor exists so that no origin
//     can make every token verification cost a fetch.
//   - An unknown kid in a fresh set triggers a refetch (key rotation) at most once per
//     RefreshOnUnknownKIDInterval per URL.
//   - When a refresh fails and an earlier set is cached, that set keeps being served,
//     however old, and the origin is retried at most once per RefreshOnUnknownKIDInterval.
//   - Concurrent requests for one URL share a single fetch.
//
// The HTTP client ignores proxy environment variables: key set fetching goes straight to
// the allow-listed origins, so a proxy setting meant for other traffic can neither see
// nor redirect it. It requires TLS 1.2 or later.
type Fetcher struct {
	cfg    FetcherConfig
	client *http.Client
	now    func() time.Time // injectable clock for tests

	mu      sync.Mutex
	entries map[setKey]*entry
	order   *list.List // of *entry, least recently refreshed first
	flights map[setKey]*flight
}

// setKey names one cached set: the set of verification keys at url, or the revoked key set
// at url (see RevokedSet). The two are cached apart because they are read by different
// rules: an empty key set is a failed refresh, an empty revoked set is the usual answer.
type setKey struct {
	url     string
	revoked bool
}

// entry is the cache state of one set. It exists once a fetch has succeeded.
type entry struct {
	key         setKey
	keys        map[string]jwk.Key
	listed      []Listed  // the keys of a revoked set, as published (revoked sets only)
	expires     time.Time // end of freshness
	refreshAt   time.Time // next time a plain lookup refetches: expires, or later after a failure
	lastAttempt time.Time // start of the latest fetch, which rate-limits unknown-kid refetches
	elem        *list.Element
}

// flight is one fetch shared by all callers that wait for it.
type flight struct {
	done    chan struct{}
	err     error
	waiters int
	cancel  context.CancelFunc
	// abandoned is set when every waiter gave up; the fetch then does not count as a
	// failed attempt.
	abandoned   bool
	started     time.Time // what this fetch wrote to entry.lastAttempt
	prevAttempt time.Time // entry.lastAttempt before this fetch, restored if abandoned
}

// NewFetcher returns a Fetcher with its own HTTP client built from cfg.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	cfg = cfg.withDefaults()
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.RootCAs}
	if cfg.TLS != nil {
		tlsConfig = cfg.TLS.Clone()
	}
	transport := &http.Transport{
		Proxy: nil, // see the Fetcher doc: no proxy from the environment
		DialContext: (&net.Dialer{
			Timeout:   cfg.Timeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		// Returning the 3xx response itself makes it a non-200 failure: a redirect could
		// lead off the allow-listed host or down to http.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Fetcher{
		cfg:     cfg,
		client:  client,
		now:     time.Now,
		entries: make(map[setKey]*entry),
		order:   list.New(),
		flights: make(map[setKey]*flight),
	}
}

// Source checks url against allowedHosts now (see CheckURL) and returns a KeySource that
// looks keys up in the set at url.
func (f *Fetcher) Source(url string, allowedHosts []string) (jose.KeySource, error) {
	if err := CheckURL(url, allowedHosts); err != nil {
		return nil, err
	}
	return urlSource{f: f, url: url}, nil
}

type urlSource struct {
	f   *Fetcher
	url string
}

func (s urlSource) Key(ctx context.Context, kid string) (jwk.Key, error) {
	return s.f.Key(ctx, s.url, kid)
}

// Key returns the key with kid from the set at url, fetching or refreshing the set as the
// cache rules require. It does not check a host allow-list (Source does), but refuses
// non-https and malformed URLs.
//
// Errors wrap jose.ErrUnknownKID when the set was obtained but lacks kid; ErrFetch and
// jose.ErrKeyUnavailable when no set could be obtained; ctx's error and
// jose.ErrKeyUnavailable when ctx ended first.
func (f *Fetcher) Key(ctx context.Context, url, kid string) (jwk.Key, error) {
	if _, err := checkURLShape(url); err != nil {
		return nil, err
	}
	kidq, urlq := clip(kid), clip(url) // for messages only

	k := setKey{url: url}
	fetched, fetchErr := f.fetchIfDue(ctx, k, func(e *entry, now time.Time) bool {
		return e == nil || !now.Before(e.refreshAt)
	})
	if fetched && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: waiting for key set %s: %w", jose.ErrKeyUnavailable, urlq, ctx.Err())
	}
	key, have := f.lookup(url, kid)
	if !have {
		// No set at all: the fetch failed, or was never started because ctx had ended.
		if fetchErr == nil && ctx.Err() != nil {
			return nil, fmt.Errorf("%w: waiting for key set %s: %w", jose.ErrKeyUnavailable, urlq, ctx.Err())
		}
		if fetchErr == nil {
			fetchErr = fmt.Errorf("%w: %w: no key set for %s", ErrFetch, jose.ErrKeyUnavailable, urlq)
		}
		return nil, fetchErr
	}
	if key != nil {
		if !fetched {
			stats.cacheHits.Add(1)
		}
		return key, nil
	}

	// The kid is unknown. The signer may have rotated keys since the set was cached, so
	// refetch, but rate-limited: otherwise every token with a made-up kid costs a fetch.
	if !fetched && kid != "" {
		refetched, err := f.fetchIfDue(ctx, k, func(e *entry, now time.Time) bool {
			return e == nil || !now.Before(e.lastAttempt.Add(f.cfg.RefreshOnUnknownKIDInterval))
		})
		if refetched && ctx.Err() != nil {
			return nil, fmt.Errorf("%w: waiting for key set %s: %w", jose.ErrKeyUnavailable, urlq, ctx.Err())
		}
		if key, _ = f.lookup(url, kid); key != nil {
			return key, nil
		}
		fetchErr = err
	}
	if fetchErr != nil {
		// The cached set is all there is until the origin answers again.
		return nil, fmt.Errorf("%w: kid %q is not in the cached key set at %s (refresh failed: %v)", jose.ErrUnknownKID, kidq, urlq, fetchErr)
	}
	return nil, fmt.Errorf("%w: kid %q is not in the key set at %s", jose.ErrUnknownKID, kidq, urlq)
}

// lookup returns the cached key for kid (nil if absent) and whether any set is cached.
func (f *Fetcher) lookup(url, kid string) (jwk.Key, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entries[setKey{url: url}]
	if e == nil {
		return nil, false
	}
	if kid == "" {
		return nil, true
	}
	return e.keys[kid], true
}

// fetchIfDue joins the fetch in flight for url, or starts one when due says the cache
// entry needs it. It reports whether this call waited for a fetch, and that fetch's error.
// The fetch runs detached from ctx (bounded by cfg.Timeout) so that one caller giving up
// does not fail the others; it is cancelled only when every waiter has given up.
func (f *Fetcher) fetchIfDue(ctx context.Context, k setKey, due func(e *entry, now time.Time) bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, nil // a caller that already gave up neither starts nor joins a fetch
	}
	f.mu.Lock()
	fl := f.flights[k]
	if fl == nil || fl.abandoned { // an abandoned fetch is being cancelled: do not join it
		e := f.entries[k]
		now := f.now()
		if !due(e, now) {
			f.mu.Unlock()
			return false, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
		fl = &flight{done: make(chan struct{}), cancel: cancel, started: now}
		if e != nil {
			fl.prevAttempt = e.lastAttempt
			e.lastAttempt = now
		}
		f.flights[k] = fl
		go f.run(fctx, k, fl)
	}
	fl.waiters++
	f.mu.Unlock()

	select {
	case <-fl.done:
		return true, fl.err
	case <-ctx.Done():
		f.mu.Lock()
		fl.waiters--
		if fl.waiters == 0 {
			fl.abandoned = true
			fl.cancel()
		}
		f.mu.Unlock()
		return true, ctx.Err()
	}
}

// run performs the fetch of fl and records its outcome in the cache.
func (f *Fetcher) run(ctx context.Context, k setKey, fl *flight) {
	set, ttl, err := f.fetch(ctx, k)
	fl.cancel()

	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	e := f.entries[k]
	switch {
	case err == nil:
		if e == nil {
			e = &entry{key: k, lastAttempt: now}
			f.entries[k] = e
			e.elem = f.order.PushBack(e)
		} else {
			f.order.MoveToBack(e.elem)
		}
		e.keys, e.listed = set.index, set.listed
		e.expires = now.Add(ttl)
		e.refreshAt = e.expires
		f.evict()
	case e != nil && fl.abandoned:
		// Nobody saw this attempt finish, so it must not use up the unknown-kid budget.
		if e.lastAttempt.Equal(fl.started) {
			e.lastAttempt = fl.prevAttempt
		}
	case e != nil:
		// Keep serving the cached set; retry the origin no sooner than the interval.
		e.refreshAt = later(e.refreshAt, now.Add(f.cfg.RefreshOnUnknownKIDInterval))
	}
	fl.err = err
	if f.flights[k] == fl { // a newer flight may have replaced an abandoned one
		delete(f.flights, k)
	}
	close(fl.done)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// evict drops the least recently refreshed entries beyond MaxEntries. Callers hold f.mu.
func (f *Fetcher) evict() {
	for f.order.Len() > f.cfg.MaxEntries {
		oldest := f.order.Front()
		e := f.order.Remove(oldest).(*entry)
		delete(f.entries, e.key)
	}
}

// fetchedSet is a parsed response: the kid index, and for a revoked set the keys as listed.
type fetchedSet struct {
	index  map[string]jwk.Key
	listed []Listed
}

// fetch downloads and parses the set k names and computes its cache lifetime.
func (f *Fetcher) fetch(ctx context.Context, k setKey) (fetchedSet, time.Duration, error) {
	url := k.url
	stats.fetches.Add(1)
	fail := func(format string, args ...any) (fetchedSet, time.Duration, error) {
		stats.failures.Add(1)
		return fetchedSet{}, 0, fmt.Errorf("%w: %w: GET %s: %s", ErrFetch, jose.ErrKeyUnavailable, clip(url), fmt.Sprintf(format, args...))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail("%v", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return fail("status %d: redirects are not followed", resp.StatusCode)
		}
		prefix, _ := io.ReadAll(io.LimitReader(resp.Body, errBodyPrefix))
		return fail("status %d, body starts %q", resp.StatusCode, prefix)
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return fail("response is %d bytes, limit is %d", resp.ContentLength, f.cfg.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return fail("reading body: %v", err)
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		return fail("response is larger than %d bytes", f.cfg.MaxBytes)
	}
	if k.revoked {
		listed, err := parseRevoked(body)
		if err != nil {
			return fail("%v", err)
		}
		return fetchedSet{listed: listed}, f.ttl(resp.Header), nil
	}
	_, keys, err := parseAndIndex(body)
	if err != nil {
		return fail("%v", err)
	}
	return fetchedSet{index: keys}, f.ttl(resp.Header), nil
}

// ttl derives the cache lifetime from response headers (RFC 9111 §4.2.1), clamped to
// [MinTTL, MaxTTL].
func (f *Fetcher) ttl(h http.Header) time.Duration {
	ttl, ok := cacheControlTTL(h)
	if !ok {
		ttl, ok = expiresTTL(h, f.now())
	}
	if !ok {
		ttl = f.cfg.DefaultTTL
	}
	return min(max(ttl, f.cfg.MinTTL), f.cfg.MaxTTL)
}

// cacheControlTTL reads no-store, no-cache and max-age (less the Age header).
func cacheControlTTL(h http.Header) (time.Duration, bool) {
	var ttl time.Duration
	found := false
	for _, line := range h.Values("Cache-Control") {
		for directive := range strings.SplitSeq(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
				if err != nil && errors.Is(err, strconv.ErrRange) && secs > 0 {
					secs = 1 << 31 // RFC 9111 §1.2.2: an overflowing delta-seconds means "very long"
				} else if err != nil || secs < 0 {
					return 0, true // an invalid max-age makes the response stale
				}
				d := time.Duration(min(secs, 1<<31)) * time.Second
				if !found || d < ttl { // conflicting directives: the shorter lifetime wins
					ttl = d
				}
				found = true
			}
		}
	}
	if !found {
		return 0, false
	}
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		ttl -= time.Duration(min(age, 1<<31)) * time.Second
	}
	return ttl, true
}

// expiresTTL reads Expires relative to Date (or now without Date). An unparseable
// Expires means already expired (RFC 9111 §5.3).
func expiresTTL(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Expires")
	if v == "" {
		return 0, false
	}
	exp, err := http.ParseTime(v)
	if err != nil {
		return 0, true
	}
	base := now
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		base = d
	}
	return exp.Sub(base), true
}
