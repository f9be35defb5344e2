package bolt

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// sweepChunk bounds how many expired keys one sweep transaction removes, so a sweep after a
// long pause never holds the writer for long.
const sweepChunk = 1000

// onceHash names a one-time key in the file: its SHA-256, never the key itself.
func onceHash(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

func encodeExpiry(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

func decodeExpiry(v []byte) (time.Time, error) {
	if len(v) != 8 {
		return time.Time{}, fmt.Errorf("bolt: a one-time key's expiry has %d bytes, want 8", len(v))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), nil
}

// expiryKey orders the TTL bucket by expiry first, so the expired keys are a prefix range.
func expiryKey(expiry []byte, h []byte) []byte {
	return append(append(make([]byte, 0, len(expiry)+len(h)), expiry...), h...)
}

// Claim records key for ttl unless it is recorded and unexpired, and reports whether it did.
// A key already recorded is answered from a read-only transaction, without a write; the
// claim itself is a write, serialised with every other write by the committer, so of
// concurrent claims exactly one wins. A ttl that is not positive is an error rather than a
// claim that lapses at once, which would silently turn replay protection off.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("bolt: Claim with a ttl of %v; it must be positive", ttl)
	}
	h := onceHash(key)
	if seen, err := s.seen(h[:]); err != nil || seen {
		return false, err
	}
	var won bool
	err := s.db.commit.do(func(tx *bbolt.Tx) (error, error) {
		won = false
		now := s.now()
		expires, ok, err := loadOnce(tx, h[:])
		if err != nil {
			return nil, err
		}
		if ok && now.Before(expires) {
			return nil, nil
		}
		if err := putOnce(tx, h[:], now.Add(ttl)); err != nil {
			return nil, err
		}
		won = true
		return nil, nil
	})
	return won, err
}

// putOnce records h until expires, replacing (and un-indexing) an older expiry.
func putOnce(tx *bbolt.Tx, h []byte, expires time.Time) error {
	if err := deleteOnce(tx, h); err != nil {
		return err
	}
	exp := encodeExpiry(expires)
	if err := tx.Bucket(bucketOnce).Put(h, exp); err != nil {
		return fmt.Errorf("bolt: storing a one-time key: %w", err)
	}
	if err := tx.Bucket(bucketOnceExpiry).Put(expiryKey(exp, h), nil); err != nil {
		return fmt.Errorf("bolt: storing a one-time key's expiry: %w", err)
	}
	return nil
}

// deleteOnce forgets h and its TTL entry, if any.
func deleteOnce(tx *bbolt.Tx, h []byte) error {
	once := tx.Bucket(bucketOnce)
	old := once.Get(h)
	if old == nil {
		return nil
	}
	if err := tx.Bucket(bucketOnceExpiry).Delete(expiryKey(old, h)); err != nil {
		return fmt.Errorf("bolt: removing a one-time key's expiry: %w", err)
	}
	if err := once.Delete(h); err != nil {
		return fmt.Errorf("bolt: removing a one-time key: %w", err)
	}
	return nil
}

// loadOnce returns the expiry of h and whether it is recorded. A value that does not decode
// is an error: a replay check that cannot read its record must not let the key pass.
func loadOnce(tx *bbolt.Tx, h []byte) (time.Time, bool, error) {
	v := tx.Bucket(bucketOnce).Get(h)
	if v == nil {
		return time.Time{}, false, nil
	}
	t, err := decodeExpiry(v)
	return t, true, err
}

// Seen reports whether key is recorded and unexpired.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	h := onceHash(key)
	return s.seen(h[:])
}

func (s *Store) seen(h []byte) (bool, error) {
	var seen bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		expires, ok, err := loadOnce(tx, h)
		seen = ok && s.now().Before(expires)
		return err
	})
	return seen, err
}

// Release forgets key.
func (s *Store) Release(ctx context.Context, key string) error {
	h := onceHash(key)
	return s.db.commit.do(func(tx *bbolt.Tx) (error, error) {
		return nil, deleteOnce(tx, h[:])
	})
}

// Sweep removes the one-time keys that have expired and returns how many it removed. It
// reads the TTL-ordered bucket from its start up to now, so its cost is the number of
// expired keys, not the number of keys; it removes them in chunks of sweepChunk, each its
// own transaction.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	removed := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var n int
		limit := encodeExpiry(s.now())
		err := s.db.commit.do(func(tx *bbolt.Tx) (error, error) {
			n = 0
			byExpiry := tx.Bucket(bucketOnceExpiry)
			var expired [][]byte
			c := byExpiry.Cursor()
			for k, _ := c.First(); k != nil && len(expired) < sweepChunk; k, _ = c.Next() {
				if len(k) < 8 || string(k[:8]) >= string(limit) {
					break
				}
				expired = append(expired, append([]byte(nil), k...)) // a copy: the deletes below change the pages
			}
			once := tx.Bucket(bucketOnce)
			for _, k := range expired {
				h := k[8:]
				// The key's current expiry is this entry's unless it was re-claimed; the
				// entries are kept in step, so this only guards against a foreign file.
				if cur := once.Get(h); cur != nil && string(cur) == string(k[:8]) {
					if err := once.Delete(h); err != nil {
						return nil, fmt.Errorf("bolt: removing an expired one-time key: %w", err)
					}
				}
				if err := byExpiry.Delete(k); err != nil {
					return nil, fmt.Errorf("bolt: removing an expired one-time key's expiry: %w", err)
				}
			}
			n = len(expired)
			return nil, nil
		})
		removed += n
		if err != nil || n < sweepChunk {
			return removed, err
		}
	}
}
