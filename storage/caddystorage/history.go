package caddystorage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// A history is one value, <prefix>/history/<kind>/<sha256(id)>.json, a JSON array oldest
// first, rewritten whole under the key's lock: it is bounded by the retention, so the rewrite
// is too.

func (s *Store) historyKey(kind dcr.HistoryKind, id string) (key, idHash string) {
	idHash = hashID(string(kind) + "\x00" + id)
	return s.Prefix + "/history/" + string(kind) + "/" + idHash + ".json", idHash
}

// AppendHistory adds ev to the history and trims it.
func (s *Store) AppendHistory(ctx context.Context, kind dcr.HistoryKind, id string, ev dcr.HistoryEvent, keep dcr.HistoryRetention) error {
	key, idHash := s.historyKey(kind, id)
	unlock, err := s.locks.lock(ctx, key, idHash)
	if err != nil {
		return err
	}
	defer s.unlock(unlock, key)
	events, err := s.loadHistory(ctx, key)
	if err != nil {
		return err
	}
	data, err := json.Marshal(dcr.TrimHistory(append(events, ev), keep, ev.Time))
	if err != nil {
		return fmt.Errorf("caddystorage: encoding a history: %w", err)
	}
	if err := s.storage.Store(ctx, key, data); err != nil {
		return fmt.Errorf("caddystorage: storing a history: %w", err)
	}
	return nil
}

// History returns the events at or after since, oldest first.
func (s *Store) History(ctx context.Context, kind dcr.HistoryKind, id string, since time.Time) ([]dcr.HistoryEvent, error) {
	key, _ := s.historyKey(kind, id)
	events, err := s.loadHistory(ctx, key)
	if err != nil {
		return nil, err
	}
	return dcr.Since(events, since), nil
}

func (s *Store) loadHistory(ctx context.Context, key string) ([]dcr.HistoryEvent, error) {
	data, err := s.storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("caddystorage: loading %s: %w", key, err)
	}
	var events []dcr.HistoryEvent
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("caddystorage: decoding %s: %w", key, err)
	}
	return events, nil
}
