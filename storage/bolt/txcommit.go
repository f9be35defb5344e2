package bolt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
)

// txCommit is a dcr.Commit made ready for the writer: the keys hashed and the event encoded
// before the write joins a batch, so the shared transaction only looks up and puts.
type txCommit struct {
	once  []txOnce
	event []byte // nil: no event
	// clientID, at and keep place the event in its client's history (see AppendHistory).
	clientID string
	at       time.Time
	keep     dcr.HistoryRetention
}

type txOnce struct {
	hash  [sha256.Size]byte
	ttl   time.Duration
	claim dcr.OnceClaim
}

// prepareCommit readies the commits of a write of clientID.
func prepareCommit(with []dcr.Commit, clientID string) (*txCommit, error) {
	c := dcr.JoinCommits(with)
	p := &txCommit{once: make([]txOnce, 0, len(c.Once))}
	for _, k := range c.Once {
		if k.TTL <= 0 {
			return nil, fmt.Errorf("bolt: a one-time key with a ttl of %v; it must be positive", k.TTL)
		}
		p.once = append(p.once, txOnce{hash: onceHash(k.Key), ttl: k.TTL, claim: k})
	}
	if c.Event != nil {
		ev := c.ClientEvent(clientID)
		data, err := encodeEvent(&ev)
		if err != nil {
			return nil, err
		}
		p.event, p.clientID, p.at, p.keep = data, clientID, ev.Time, c.Retention.WithDefaults()
	}
	return p, nil
}

// check refuses the write, before it writes anything, when one of its keys is recorded and
// unexpired or named twice: the outcome is a *dcr.OnceUsedError for that key.
func (p *txCommit) check(tx *bbolt.Tx, now time.Time) (outcome, failure error) {
	for i, k := range p.once {
		expires, ok, err := loadOnce(tx, k.hash[:])
		if err != nil {
			return nil, err
		}
		if ok && now.Before(expires) {
			return &dcr.OnceUsedError{Claim: k.claim}, nil
		}
		for _, prev := range p.once[:i] {
			if prev.hash == k.hash {
				return &dcr.OnceUsedError{Claim: k.claim}, nil
			}
		}
	}
	return nil, nil
}

// refusedBefore is check in a read-only transaction, before the write joins a batch: a key
// already committed as used refuses the write at once, without waiting for a commit (a
// replay costs a look-up, not an fsync). A key free here is checked again in the write's own
// transaction, which stays the one atomic claim.
func (s *Store) refusedBefore(p *txCommit) error {
	if len(p.once) == 0 {
		return nil
	}
	var outcome error
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		outcome, err = p.check(tx, s.now())
		return err
	})
	if err != nil {
		return err
	}
	return outcome
}

// write records the keys and appends the event, in the transaction of the record.
func (p *txCommit) write(tx *bbolt.Tx, now time.Time) error {
	for _, k := range p.once {
		if err := putOnce(tx, k.hash[:], now.Add(k.ttl)); err != nil {
			return err
		}
	}
	if p.event == nil {
		return nil
	}
	return appendHistoryTx(tx, dcr.HistoryOfClient, p.clientID, p.at, p.event, p.keep)
}

// appendHistoryTx stores an encoded event at its time in the history of (kind, id) and trims
// it. A client's history moves to the client_history bucket once its record is in records
// (see historyPlace), events already in the history bucket with it.
func appendHistoryTx(tx *bbolt.Tx, kind dcr.HistoryKind, id string, at time.Time, data []byte, keep dcr.HistoryRetention) error {
	b, prefix := historyPlace(tx, kind, id)
	if legacy := historyPrefix(kind, id); !bytes.Equal(prefix, legacy) {
		if err := moveHistory(tx.Bucket(bucketHistory), legacy, b, prefix); err != nil {
			return err
		}
	}
	if err := putHistory(b, prefix, at, data); err != nil {
		return err
	}
	return trimHistory(b, prefix, keep, at)
}

// putHistory stores data under prefix || at || the bucket's next sequence number.
func putHistory(b *bbolt.Bucket, prefix []byte, at time.Time, data []byte) error {
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(at.UnixNano())), seq)
	if err := b.Put(key, data); err != nil {
		return fmt.Errorf("bolt: storing a history event: %w", err)
	}
	return nil
}

// moveHistory moves the events under prefix in from to toPrefix in to, keeping their times
// and order: a client's events written before its record had a sequence number (a file of
// schema 1).
func moveHistory(from *bbolt.Bucket, prefix []byte, to *bbolt.Bucket, toPrefix []byte) error {
	type event struct{ key, data []byte }
	var events []event
	c := from.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		events = append(events, event{bytes.Clone(k), bytes.Clone(v)})
	}
	for _, ev := range events {
		if len(ev.key) < len(prefix)+8 {
			continue // not an event key; dropped with the history
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(ev.key[len(prefix):])))
		if err := putHistory(to, toPrefix, at, ev.data); err != nil {
			return err
		}
		if err := from.Delete(ev.key); err != nil {
			return fmt.Errorf("bolt: moving a history: %w", err)
		}
	}
	return nil
}

// encodeEvent is the stored form of a history event: json.Marshal's bytes (appendEvent).
func encodeEvent(ev *dcr.HistoryEvent) ([]byte, error) {
	data, err := appendEvent(make([]byte, 0, 256), ev)
	if err != nil {
		return nil, fmt.Errorf("bolt: encoding a history event: %w", err)
	}
	return data, nil
}
