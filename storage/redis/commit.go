package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// scriptCommit is a dcr.Commit as the extra KEYS and ARGV of a write's script (see
// withCommit), and what to answer for a key the script finds taken.
type scriptCommit struct {
	keys   []string
	args   []any
	claims []dcr.OnceClaim
	entry  string // the history entry, "" for none
}

// prepareCommit readies the commits of a write of clientID. No commit, no extras: the
// script then only writes the record.
func (s *Store) prepareCommit(with []dcr.Commit, clientID string) (*scriptCommit, error) {
	c := dcr.JoinCommits(with)
	sc := &scriptCommit{claims: c.Once}
	if len(c.Once) == 0 && c.Event == nil {
		return sc, nil
	}
	keep := c.Retention.WithDefaults()
	var at time.Time
	if c.Event != nil {
		ev := c.ClientEvent(clientID)
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("redis store: encoding a history event: %w", err)
		}
		at = ev.Time
		sc.entry = historyStamp(at) + "|" + string(data)
	}
	sc.keys = append(sc.keys, s.historyKey(dcr.HistoryOfClient, clientID))
	sc.args = append(sc.args, sc.entry, keep.MaxEvents, historyStamp(at.Add(-keep.MaxAge)),
		strconv.FormatInt(keep.MaxAge.Milliseconds(), 10))
	for _, k := range c.Once {
		if k.TTL <= 0 {
			return nil, fmt.Errorf("redis store: a one-time key with a ttl of %v; it must be positive", k.TTL)
		}
		// Redis keeps milliseconds; round up so a key never lapses before its ttl.
		ms := (k.TTL + time.Millisecond - 1) / time.Millisecond
		sc.keys = append(sc.keys, s.onceKey(k.Key))
		sc.args = append(sc.args, strconv.FormatInt(int64(ms), 10))
	}
	return sc, nil
}

// check refuses the write before the script runs when a key is named twice or is recorded
// where an earlier release kept one-time keys (legacyOnceKey), which the script cannot read
// (another Cluster slot) and nothing writes any more.
func (s *Store) checkCommit(ctx context.Context, c *scriptCommit) error {
	for i, k := range c.claims {
		for _, prev := range c.claims[:i] {
			if prev.Key == k.Key {
				return &dcr.OnceUsedError{Claim: k}
			}
		}
		legacy, err := s.seenLegacy(ctx, k.Key)
		if err != nil {
			return err
		}
		if legacy {
			return &dcr.OnceUsedError{Claim: k}
		}
	}
	return nil
}

// used is the error of a script's answer n that says a one-time key was taken, else nil.
func (c *scriptCommit) used(n int64) error {
	i := int(scriptOnceUsed - n) // 1-based
	if i < 1 || i > len(c.claims) {
		return nil
	}
	return &dcr.OnceUsedError{Claim: c.claims[i-1]}
}
