package bolt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
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
	// prefix, at and keep place the event in its history (see AppendHistory).
	prefix []byte
	at     time.Time
	keep   dcr.HistoryRetention
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
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("bolt: encoding a history event: %w", err)
		}
		p.event, p.prefix, p.at, p.keep = data, historyPrefix(dcr.HistoryOfClient, clientID), ev.Time, c.Retention.WithDefaults()
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
	return appendHistoryTx(tx, p.prefix, p.at, p.event, p.keep)
}

// appendHistoryTx stores an encoded event at its time in the history of prefix and trims it.
func appendHistoryTx(tx *bbolt.Tx, prefix []byte, at time.Time, data []byte, keep dcr.HistoryRetention) error {
	b := tx.Bucket(bucketHistory)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(at.UnixNano())), seq)
	if err := b.Put(key, data); err != nil {
		return fmt.Errorf("bolt: storing a history event: %w", err)
	}
	return trimHistory(b, prefix, keep, at)
}
