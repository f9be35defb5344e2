package accesstoken

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// Introspection configures RFC 7662 token introspection.
type Introspection struct {
	// Endpoint is the https introspection endpoint.
	Endpoint string `json:"endpoint"`
	// CacheTTL is the longest an answer is reused, default 1m; an active answer is never
	// reused past the token's exp.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`
}

const (
	defaultIntrospectionCacheTTL = time.Minute
	maxCachedIntrospections      = 10000
)

// introspectionVerifier accepts the tokens the authorization server says are active.
type introspectionVerifier struct {
	as       *authServer
	issuer   string
	audience []string
	leeway   time.Duration
}

// Verify introspects the token (or reuses a cached answer) and applies the same time and
// audience rules as to a JWT; iss is checked when the answer carries one.
func (v *introspectionVerifier) Verify(ctx context.Context, token string, now time.Time) (map[string]any, *dcr.Error) {
	claims, err := v.as.introspect(ctx, token, now)
	if err != nil {
		return nil, dcr.Unavailable(err, "the access token cannot be verified right now")
	}
	if active, _ := claims["active"].(bool); !active {
		return nil, badToken("the authorization server reports the token inactive")
	}
	if v.issuer != "" {
		if iss, ok, err := jose.StringClaim(claims, "iss"); err != nil || (ok && iss != v.issuer) {
			return nil, badToken("iss is not the configured issuer")
		}
	}
	if derr := checkTimes(claims, now, v.leeway, false); derr != nil {
		return nil, derr
	}
	if derr := checkAudience(claims, v.audience); derr != nil {
		return nil, derr
	}
	return claims, nil
}

// introspect asks the endpoint about token, through the cache; concurrent questions about one
// token share one call.
func (s *authServer) introspect(ctx context.Context, token string, now time.Time) (map[string]any, error) {
	key := sha256.Sum256([]byte(token))
	if claims, ok := s.cache.get(key, now); ok {
		return claims, nil
	}
	v, err, _ := s.flights.Do(string(key[:]), func() (any, error) {
		// The call is shared, so one caller that gives up must not fail the others; the
		// client timeout bounds it.
		status, body, err := s.post(context.WithoutCancel(ctx), s.introspection, url.Values{"token": {token}, "token_type_hint": {"access_token"}})
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("%w: introspection answered %d", ErrUnavailable, status)
		}
		claims, err := decodeIntrospection(body)
		if err != nil {
			return nil, err
		}
		s.cache.put(key, claims, s.cacheUntil(claims, now))
		return claims, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// cacheUntil bounds how long an answer is reused: cache_ttl, and for an active token no
// longer than its exp.
func (s *authServer) cacheUntil(claims map[string]any, now time.Time) time.Time {
	until := now.Add(s.cacheTTL)
	if active, _ := claims["active"].(bool); active {
		exp, ok, err := jose.NumericDate(claims, "exp")
		if err != nil {
			return now // a malformed exp is refused by Verify; nothing worth caching
		}
		if ok && exp.Before(until) {
			until = exp
		}
	}
	return until
}

// decodeIntrospection parses an RFC 7662 answer: a JSON object whose active is a boolean.
func decodeIntrospection(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil || dec.More() {
		return nil, fmt.Errorf("%w: the introspection answer is not a JSON object", ErrUnavailable)
	}
	if _, ok := claims["active"].(bool); !ok {
		return nil, fmt.Errorf("%w: the introspection answer has no boolean active", ErrUnavailable)
	}
	return claims, nil
}

// introspectionCache holds answers by the token's SHA-256, never the token itself.
type introspectionCache struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]cachedAnswer
}

type cachedAnswer struct {
	claims map[string]any
	until  time.Time
}

func newIntrospectionCache(max int) *introspectionCache {
	return &introspectionCache{max: max, entries: make(map[[32]byte]cachedAnswer)}
}

func (c *introspectionCache) get(key [32]byte, now time.Time) (map[string]any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		delete(c.entries, key)
		return nil, false
	}
	return e.claims, true
}

func (c *introspectionCache) put(key [32]byte, claims map[string]any, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop what has expired; if the cache is still full, drop arbitrary entries: a miss
		// costs one introspection call, an unbounded cache costs the process.
		now := time.Now()
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cachedAnswer{claims: claims, until: until}
}

// forget drops the answer about a token (after it was revoked).
func (c *introspectionCache) forget(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}
