package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// historyPrefix is the key range of one history: the SHA-256 of its kind and id (fixed
// length, so one history's range cannot reach into another's). An event's key continues with
// its time (Unix ns, big-endian) and the bucket's next sequence number, so keys sort by time
// and two events of the same nanosecond stay two.
func historyPrefix(kind dcr.HistoryKind, id string) []byte {
	sum := sha256.Sum256([]byte(string(kind) + "\x00" + id))
	return sum[:]
}

// historyPlace is where the history of (kind, id) is appended: for a client whose record is
// in the records bucket, the client_history bucket under the record's sequence number, so
// that the registered events of a batch of new clients, whose sequence numbers follow each
// other, share their pages (under sha256(kind, id) each took a page of its own); otherwise
// the history bucket under historyPrefix.
func historyPlace(tx *bbolt.Tx, kind dcr.HistoryKind, id string) (*bbolt.Bucket, []byte) {
	if kind == dcr.HistoryOfClient && id != "" && len(id) <= bbolt.MaxKeySize {
		if seq, ok := recordRef(tx.Bucket(bucketRegistrations).Get([]byte(id))); ok {
			return tx.Bucket(bucketClientHistory), bytes.Clone(seq)
		}
	}
	return tx.Bucket(bucketHistory), historyPrefix(kind, id)
}

// AppendHistory stores ev and trims the history, in one transaction, without waiting for its
// commit (committer.doLater): a rejection's event must not cost the request an fsync (a flood
// of replays would otherwise be a flood of commits it waits for). History sees every event
// appended before it; a crash may lose the events of the last moments, never a registration
// (whose lifecycle event is written in its own transaction, see txcommit.go).
func (s *Store) AppendHistory(ctx context.Context, kind dcr.HistoryKind, id string, ev dcr.HistoryEvent, keep dcr.HistoryRetention) error {
	keep = keep.WithDefaults()
	data, err := encodeEvent(&ev)
	if err != nil {
		return err
	}
	return s.db.commit.doLater(func(tx *bbolt.Tx) (error, error) {
		return nil, appendHistoryTx(tx, kind, id, ev.Time, data, keep)
	}, func(err error) {
		s.logger.Warn("recording a history event", zap.String("history", string(kind)), zap.Error(err))
	})
}

// readHistory appends the events under prefix in b, in key (time) order.
func readHistory(b *bbolt.Bucket, prefix []byte, events *[]dcr.HistoryEvent) error {
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var ev dcr.HistoryEvent
		if err := json.Unmarshal(v, &ev); err != nil {
			return fmt.Errorf("bolt: decoding a history event: %w", err)
		}
		*events = append(*events, ev)
	}
	return nil
}

// trimHistory deletes the events of prefix older than keep.MaxAge before now and those
// beyond the newest keep.MaxEvents. A history holds at most MaxEvents+1 events here, so
// walking it is bounded.
func trimHistory(b *bbolt.Bucket, prefix []byte, keep dcr.HistoryRetention, now time.Time) error {
	cutoff := uint64(now.Add(-keep.MaxAge).UnixNano())
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	drop := max(len(keys)-keep.MaxEvents, 0)
	for i, k := range keys {
		if i >= drop && binary.BigEndian.Uint64(k[len(prefix):]) >= cutoff {
			continue
		}
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("bolt: trimming a history: %w", err)
		}
	}
	return nil
}

// History returns the events of (kind, id) at or after since, oldest first, the ones
// AppendHistory queued included.
func (s *Store) History(ctx context.Context, kind dcr.HistoryKind, id string, since time.Time) ([]dcr.HistoryEvent, error) {
	if err := s.db.commit.flush(); err != nil {
		return nil, err
	}
	var events []dcr.HistoryEvent
	err := s.db.View(func(tx *bbolt.Tx) error {
		// Events of a client written before its record moved (schema 1) are still in the
		// history bucket until its next event moves them: both are read.
		legacy := historyPrefix(kind, id)
		if err := readHistory(tx.Bucket(bucketHistory), legacy, &events); err != nil {
			return err
		}
		if b, prefix := historyPlace(tx, kind, id); !bytes.Equal(prefix, legacy) {
			return readHistory(b, prefix, &events)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(events, func(a, b dcr.HistoryEvent) int { return a.Time.Compare(b.Time) })
	return dcr.Since(events, since), nil
}
