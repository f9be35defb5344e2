package caddystorage

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dcrgate/dcrgate/dcr"
)

// The deny list is one value, <prefix>/denylist.json, a JSON array sorted by kind and id,
// rewritten whole under its lock: it is bounded (dcr.MaxDenyListEntries), and strike-offs are
// rare, so the rewrite is cheap and every read is one Load.

func (s *Store) denyListKey() (key, keyHash string) {
	return s.Prefix + "/denylist.json", hashID("denylist")
}

// AddDenial adds e under the list's lock.
func (s *Store) AddDenial(ctx context.Context, e dcr.DenyEntry, limit int) (bool, error) {
	added := false
	err := s.changeDenyList(ctx, func(entries []dcr.DenyEntry) ([]dcr.DenyEntry, bool, error) {
		var err error
		entries, added, err = dcr.AddDenial(entries, e, limit)
		return entries, added, err
	})
	return added, err
}

// LiftDenial removes an entry under the list's lock.
func (s *Store) LiftDenial(ctx context.Context, kind dcr.DenyKind, id string) (bool, error) {
	lifted := false
	err := s.changeDenyList(ctx, func(entries []dcr.DenyEntry) ([]dcr.DenyEntry, bool, error) {
		entries, lifted = dcr.LiftDenial(entries, kind, id)
		return entries, lifted, nil
	})
	return lifted, err
}

// changeDenyList loads the list, applies change and stores the result if change says it
// changed, all under the list's lock.
func (s *Store) changeDenyList(ctx context.Context, change func([]dcr.DenyEntry) ([]dcr.DenyEntry, bool, error)) error {
	key, keyHash := s.denyListKey()
	unlock, err := s.locks.lock(ctx, key, keyHash)
	if err != nil {
		return err
	}
	defer s.unlock(unlock, key)
	entries, err := s.loadDenyList(ctx)
	if err != nil {
		return err
	}
	entries, changed, err := change(entries)
	if err != nil || !changed {
		return err
	}
	data, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("caddystorage: encoding the deny list: %w", err)
	}
	if err := s.storage.Store(ctx, key, data); err != nil {
		return fmt.Errorf("caddystorage: storing the deny list: %w", err)
	}
	return nil
}

// Denials reads the list once.
func (s *Store) Denials(ctx context.Context, orgID, softwareID string) ([]dcr.DenyEntry, error) {
	entries, err := s.loadDenyList(ctx)
	if err != nil {
		return nil, err
	}
	return dcr.MatchDenials(entries, orgID, softwareID), nil
}

// DenyList reads the list.
func (s *Store) DenyList(ctx context.Context) ([]dcr.DenyEntry, error) {
	return s.loadDenyList(ctx)
}

func (s *Store) loadDenyList(ctx context.Context) ([]dcr.DenyEntry, error) {
	key, _ := s.denyListKey()
	return loadJSON[[]dcr.DenyEntry](ctx, s, key)
}
