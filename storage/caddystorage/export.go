package caddystorage

import (
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// These read the whole store, for `caddy dcr store migrate`: they are not part of dcr.Store
// and no request path calls them.

// EachRegistration calls fn with every stored record, live or tombstone, in no particular
// order. It stops at the first error, fn's included.
func (s *Store) EachRegistration(ctx context.Context, fn func(*dcr.Registration) error) error {
	keys, err := s.listKeys(ctx, s.Prefix+"/registrations")
	if err != nil {
		return err
	}
	for _, key := range keys {
		name := path.Base(key)
		if len(name) != len(".json")+64 || !isHash(name[:64]) || path.Ext(name) != ".json" {
			continue // not one of ours (an in-flight temporary file, a stray file)
		}
		rec, err := s.loadRecord(ctx, key)
		if errors.Is(err, dcr.ErrNotFound) {
			continue // removed while we listed
		}
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// EachOnceKey calls fn with the SHA-256 of every one-time key that is still unexpired, and
// its expiry. The keys themselves were never stored.
func (s *Store) EachOnceKey(ctx context.Context, fn func(keyHash [32]byte, expires time.Time) error) error {
	keys, err := s.listKeys(ctx, s.onceDir())
	if err != nil {
		return err
	}
	now := s.now()
	for _, key := range keys {
		name := path.Base(key)
		if !isHash(name) {
			continue
		}
		expires, err := s.loadOnce(ctx, key)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		if !now.Before(expires) {
			continue
		}
		var h [32]byte
		if _, err := hex.Decode(h[:], []byte(name)); err != nil {
			continue
		}
		if err := fn(h, expires); err != nil {
			return err
		}
	}
	return nil
}
