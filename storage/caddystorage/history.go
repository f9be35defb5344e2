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
	return loadJSON[[]dcr.HistoryEvent](ctx, s, key)
}

// loadJSON reads the JSON value of key; a missing key is the zero value.
func loadJSON[T any](ctx context.Context, s *Store, key string) (T, error) {
	var v T
	data, err := s.storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("caddystorage: loading %s: %w", key, err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("caddystorage: decoding %s: %w", key, err)
	}
	return v, nil
}
