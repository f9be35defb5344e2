package caddystorage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// What a write with a dcr.Commit guarantees here. Caddy's storage has no transactions, so a
// registration and its one-time keys are as atomic as ordering under locks can make them:
//
//   - every key and the record are locked together (keyLocks.lockAll), so concurrent writes
//     that share a key (in this process or another on the same storage) are serialised and
//     exactly one wins;
//   - every key is checked before anything is written: a used one refuses the write with
//     nothing written;
//   - the keys are written before the record, so a crash in between leaves a key used by a
//     call that was never answered 201 (the client signs a new request), never an answered
//     registration whose jti could be replayed; a write that fails (rather than crashes)
//     after the keys gives them back;
//   - the event is appended to the client's history after the record, under its own lock: a
//     crash in between loses the event, never the registration; a failure is logged.
//
// dcr.storage.bolt writes all of it in one transaction.

// storeCommit is a dcr.Commit made ready: the keys' storage names.
type storeCommit struct {
	dcr.Commit
	once []onceTarget
}

type onceTarget struct {
	hash, key string
	claim     dcr.OnceClaim
}

func (s *Store) prepareCommit(with []dcr.Commit) (*storeCommit, error) {
	c := &storeCommit{Commit: dcr.JoinCommits(with)}
	for _, k := range c.Once {
		if k.TTL <= 0 {
			return nil, fmt.Errorf("caddystorage: a one-time key with a ttl of %v; it must be positive", k.TTL)
		}
		h := hashID(k.Key)
		c.once = append(c.once, onceTarget{hash: h, key: s.onceKey(h), claim: k})
	}
	return c, nil
}

// lockTargets are the locks of a write of the record at key with c: the record's and every
// key's.
func (c *storeCommit) lockTargets(key, clientHash string) []lockTarget {
	targets := make([]lockTarget, 0, len(c.once)+1)
	targets = append(targets, lockTarget{key, clientHash})
	for _, o := range c.once {
		targets = append(targets, lockTarget{o.key, o.hash})
	}
	return targets
}

// checkOnce refuses the write (a *dcr.OnceUsedError) when a key is recorded and unexpired or
// named twice. The caller holds the keys' locks.
func (s *Store) checkOnce(ctx context.Context, c *storeCommit) error {
	now := s.now()
	for i, o := range c.once {
		expires, err := s.loadOnce(ctx, o.key)
		switch {
		case err == nil && now.Before(expires):
			return &dcr.OnceUsedError{Claim: o.claim}
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return err
		}
		for _, prev := range c.once[:i] {
			if prev.hash == o.hash {
				return &dcr.OnceUsedError{Claim: o.claim}
			}
		}
	}
	return nil
}

// refusedBefore is checkOnce without the locks, before the write takes them: a key already
// recorded refuses the write at once, so a replay costs reads, not lock files (reads are
// safe without a lock, every write is atomic). A key free here is checked again under the
// locks, which stays the one atomic claim.
func (s *Store) refusedBefore(ctx context.Context, c *storeCommit) error {
	if len(c.once) == 0 {
		return nil
	}
	var used *dcr.OnceUsedError
	if err := s.checkOnce(ctx, c); errors.As(err, &used) {
		return err
	}
	return nil
}

// writeOnce records the keys, before the record; on a failure it gives back those it wrote.
func (s *Store) writeOnce(ctx context.Context, c *storeCommit) error {
	now := s.now()
	for i, o := range c.once {
		data, err := json.Marshal(onceValue{Expires: now.Add(o.claim.TTL).UTC()})
		if err == nil {
			err = s.storage.Store(ctx, o.key, data)
		}
		if err != nil {
			s.releaseOnce(ctx, c.once[:i])
			return fmt.Errorf("caddystorage: storing one-time key %s: %w", o.key, err)
		}
	}
	return nil
}

// releaseOnce gives back the keys of a write whose record could not be stored.
func (s *Store) releaseOnce(ctx context.Context, keys []onceTarget) {
	ctx = context.WithoutCancel(ctx)
	for _, o := range keys {
		if err := s.storage.Delete(ctx, o.key); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.logger.Warn("giving back a one-time key of a failed write", zap.String("key", o.key), zap.Error(err))
		}
	}
}

// appendEvent adds the commit's event to the client's history once the record is stored and
// its locks released (the history's lock may share a stripe with them). A failure is logged:
// the registration itself is stored.
func (s *Store) appendEvent(ctx context.Context, c *storeCommit, clientID string) {
	if c.Event == nil {
		return
	}
	if err := s.AppendHistory(context.WithoutCancel(ctx), dcr.HistoryOfClient, clientID, c.ClientEvent(clientID), c.Retention); err != nil {
		s.logger.Warn("recording a history event", zap.String("client_id", clientID), zap.Error(err))
	}
}
