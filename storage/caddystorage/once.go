package caddystorage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"go.uber.org/zap"
)

// onceValue is what a one-time key stores. The key itself is only in the name, hashed: keys
// can be consumed tokens, which must not sit in storage in the clear.
type onceValue struct {
	Expires time.Time `json:"expires"`
}

func (s *Store) onceDir() string { return s.Prefix + "/once" }

func (s *Store) onceKey(keyHash string) string { return s.onceDir() + "/" + keyHash }

// Claim records key for ttl unless it is recorded and unexpired, and reports whether it did.
// The check and the write run under the key's lock, so of concurrent claims (in this process
// or another one on the same storage) exactly one wins.
// A ttl that is not positive is an error rather than a claim that lapses at once, which would
// silently turn replay protection off.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("caddystorage: Claim with a ttl of %v; it must be positive", ttl)
	}
	keyHash := hashID(key)
	storageKey := s.onceKey(keyHash)
	unlock, err := s.locks.lock(ctx, storageKey, keyHash)
	if err != nil {
		return false, err
	}
	defer s.unlock(unlock, storageKey)

	now := s.now()
	expires, err := s.loadOnce(ctx, storageKey)
	switch {
	case err == nil && now.Before(expires):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	data, err := json.Marshal(onceValue{Expires: now.Add(ttl).UTC()})
	if err != nil {
		return false, fmt.Errorf("caddystorage: encoding one-time key: %w", err)
	}
	if err := s.storage.Store(ctx, storageKey, data); err != nil {
		return false, fmt.Errorf("caddystorage: storing one-time key %s: %w", storageKey, err)
	}
	return true, nil
}

// Seen reports whether key is recorded and unexpired. It takes no lock: writes are atomic.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	expires, err := s.loadOnce(ctx, s.onceKey(hashID(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return s.now().Before(expires), nil
}

// Release forgets key. It takes no lock: a delete racing a Claim is ordered either before it
// (the claim wins) or after it (the claim is forgotten), both of which Release allows.
func (s *Store) Release(ctx context.Context, key string) error {
	storageKey := s.onceKey(hashID(key))
	if err := s.storage.Delete(ctx, storageKey); err != nil {
		return fmt.Errorf("caddystorage: deleting one-time key %s: %w", storageKey, err)
	}
	return nil
}

// Sweep removes the one-time keys that have expired and returns how many it removed. Expired
// keys already read as absent; sweeping reclaims their space. Each removal rechecks the
// expiry under the key's lock, so a key re-claimed meanwhile is kept. It continues past
// per-key errors and returns the first.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	keys, err := s.listKeys(ctx, s.onceDir())
	if err != nil {
		return 0, err
	}
	removed := 0
	var firstErr error
	for _, storageKey := range keys {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		keyHash := path.Base(storageKey)
		if !isHash(keyHash) {
			continue
		}
		ok, err := s.sweepKey(ctx, storageKey, keyHash)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok {
			removed++
		}
	}
	return removed, firstErr
}

func (s *Store) sweepKey(ctx context.Context, storageKey, keyHash string) (bool, error) {
	// Read without the lock first: most keys are unexpired, and the lock costs a file.
	expires, err := s.loadOnce(ctx, storageKey)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		s.logger.Warn("skipping an unreadable one-time key", zap.String("key", storageKey), zap.Error(err))
		return false, err
	}
	if s.now().Before(expires) {
		return false, nil
	}

	unlock, err := s.locks.lock(ctx, storageKey, keyHash)
	if err != nil {
		return false, err
	}
	defer s.unlock(unlock, storageKey)
	expires, err = s.loadOnce(ctx, storageKey)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil || s.now().Before(expires) {
		return false, err
	}
	if err := s.storage.Delete(ctx, storageKey); err != nil {
		return false, fmt.Errorf("caddystorage: deleting expired one-time key %s: %w", storageKey, err)
	}
	return true, nil
}

// loadOnce returns the expiry stored at storageKey, or an error wrapping fs.ErrNotExist.
func (s *Store) loadOnce(ctx context.Context, storageKey string) (time.Time, error) {
	data, err := s.storage.Load(ctx, storageKey)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return time.Time{}, err
		}
		return time.Time{}, fmt.Errorf("caddystorage: loading one-time key %s: %w", storageKey, err)
	}
	var v onceValue
	if err := json.Unmarshal(data, &v); err != nil {
		// Fail closed: a replay check that cannot read its record must not let the key pass.
		return time.Time{}, fmt.Errorf("caddystorage: decoding one-time key %s: %w", storageKey, err)
	}
	return v.Expires, nil
}
