package redis

import (
	"context"
	"fmt"
	"time"
)

// Claim records key for ttl with SET NX PX: of concurrent claims, on any node, exactly one
// wins. (A registration's keys are claimed in its own script instead; Claim is for what
// cannot be, see dcr.OnceStore.) A ttl that is not positive is an error rather than a claim that lapses at once,
// which would silently turn replay protection off.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("redis store: Claim with a ttl of %v; it must be positive", ttl)
	}
	// Redis keeps milliseconds; round up so a key never lapses before its ttl.
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	if legacy, err := s.seenLegacy(ctx, key); err != nil || legacy {
		return false, err
	}
	ok, err := s.client.SetNX(ctx, s.onceKey(key), "1", ttl).Result()
	if err != nil {
		return false, storeErr("claim", err)
	}
	return ok, nil
}

// Seen reports whether key is claimed and unexpired (Redis drops expired keys itself).
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	n, err := s.client.Exists(ctx, s.onceKey(key)).Result()
	if err != nil {
		return false, storeErr("seen", err)
	}
	if n == 1 {
		return true, nil
	}
	return s.seenLegacy(ctx, key)
}

// seenLegacy reports whether key is recorded where an earlier release kept it. Nothing writes
// there, so reading it outside a write's script races with nothing.
func (s *Store) seenLegacy(ctx context.Context, key string) (bool, error) {
	n, err := s.client.Exists(ctx, s.legacyOnceKey(key)).Result()
	if err != nil {
		return false, storeErr("seen", err)
	}
	return n == 1, nil
}

// Release forgets key.
func (s *Store) Release(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.onceKey(key)).Err(); err != nil {
		return storeErr("release", err)
	}
	if err := s.client.Del(ctx, s.legacyOnceKey(key)).Err(); err != nil {
		return storeErr("release", err)
	}
	return nil
}
