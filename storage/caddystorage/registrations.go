package caddystorage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// Every write below relies on certmagic.Storage.Store replacing a value all-or-nothing:
// FileStorage.Store writes a temporary file in the target directory, syncs it and renames it
// over the key (certmagic/internal/atomicfile), so a reader sees the old value or the new one,
// never a torn one. That is why Get, Seen and List read without taking any lock.

// index kinds, which are also the directory names under <prefix>/index.
const (
	indexSoftware = "software"
	indexOrg      = "org"
)

// hashID names an id in storage. Ids from SSAs are arbitrary strings; their SHA-256 in hex is
// path-safe, fixed-length and case-insensitive-file-system safe.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// isHash reports whether a storage key's last segment is one of our names, so that listings
// skip anything else in the directory (FileStorage's in-flight temporary files, stray files).
func isHash(name string) bool {
	if len(name) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Store) recordKey(clientHash string) string {
	return s.Prefix + "/registrations/" + clientHash + ".json"
}

func (s *Store) indexDir(kind, id string) string {
	return s.Prefix + "/index/" + kind + "/" + hashID(id)
}

// Create stores rec if its client_id was never used and none of the commits' keys is used;
// rec.Version becomes 1. Under the locks of the record and the keys, the keys are written
// first (see commit.go), then the index entries, then the record, so a crash in between leaves
// only keys used by an unanswered call or an index entry without a record, which List skips.
func (s *Store) Create(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	if rec == nil {
		return errors.New("caddystorage: Create of a nil registration")
	}
	if rec.ClientID == "" {
		return errors.New("caddystorage: Create of a registration without client_id")
	}
	if rec.Deleted() {
		return errors.New("caddystorage: Create of a deleted registration")
	}
	c, err := s.prepareCommit(with)
	if err != nil {
		return err
	}
	if err := s.refusedBefore(ctx, c); err != nil {
		return err
	}
	if err := s.create(ctx, rec, c); err != nil {
		return err
	}
	rec.Version = 1
	s.appendEvent(ctx, c, rec.ClientID)
	return nil
}

func (s *Store) create(ctx context.Context, rec *dcr.Registration, c *storeCommit) error {
	clientHash := hashID(rec.ClientID)
	key := s.recordKey(clientHash)
	unlock, err := s.locks.lockAll(ctx, c.lockTargets(key, clientHash))
	if err != nil {
		return err
	}
	defer s.unlock(unlock, key)

	if err := s.checkOnce(ctx, c); err != nil {
		return err
	}
	switch _, err := s.loadRecord(ctx, key); {
	case err == nil:
		return dcr.ErrExists // live or tombstone: a client_id is never reused
	case !errors.Is(err, dcr.ErrNotFound):
		return err
	}

	next := rec.Clone()
	next.Version = 1
	data, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("caddystorage: encoding registration %s: %w", rec.ClientID, err)
	}
	if err := s.writeOnce(ctx, c); err != nil {
		return err
	}
	if err := s.writeIndexEntries(ctx, next, clientHash); err != nil {
		s.releaseOnce(ctx, c.once)
		return err
	}
	if err := s.storage.Store(ctx, key, data); err != nil {
		s.releaseOnce(ctx, c.once)
		return fmt.Errorf("caddystorage: storing registration %s: %w", rec.ClientID, err)
	}
	return nil
}

// Get returns the live record of clientID.
func (s *Store) Get(ctx context.Context, clientID string) (*dcr.Registration, error) {
	rec, err := s.loadRecord(ctx, s.recordKey(hashID(clientID)))
	if err != nil {
		return nil, err
	}
	if rec.Deleted() {
		return nil, dcr.ErrNotFound
	}
	return rec, nil
}

// Update replaces the live record whose stored version is rec.Version and bumps rec.Version.
// Only Delete makes a tombstone (it also drops the index entries), so a DeletedAt set on rec
// is not stored. When the software_id or org_id changes, the new index entries are written
// before the record and the old ones removed after it. The commits are written as for Create.
func (s *Store) Update(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	if rec == nil {
		return errors.New("caddystorage: Update of a nil registration")
	}
	c, err := s.prepareCommit(with)
	if err != nil {
		return err
	}
	if err := s.refusedBefore(ctx, c); err != nil {
		return err
	}
	if err := s.update(ctx, rec, c); err != nil {
		return err
	}
	s.appendEvent(ctx, c, rec.ClientID)
	return nil
}

func (s *Store) update(ctx context.Context, rec *dcr.Registration, c *storeCommit) error {
	clientHash := hashID(rec.ClientID)
	key := s.recordKey(clientHash)
	stored, unlock, err := s.lockLive(ctx, key, clientHash, rec.Version, c)
	if err != nil {
		return err
	}
	defer unlock()

	next := rec.Clone()
	next.Version = stored.Version + 1
	next.DeletedAt = nil
	data, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("caddystorage: encoding registration %s: %w", rec.ClientID, err)
	}
	moved := next.SoftwareID != stored.SoftwareID || next.OrgID != stored.OrgID
	if err := s.writeOnce(ctx, c); err != nil {
		return err
	}
	if moved {
		if err := s.writeIndexEntries(ctx, next, clientHash); err != nil {
			s.releaseOnce(ctx, c.once)
			return err
		}
	}
	if err := s.storage.Store(ctx, key, data); err != nil {
		s.releaseOnce(ctx, c.once)
		return fmt.Errorf("caddystorage: storing registration %s: %w", rec.ClientID, err)
	}
	rec.Version = next.Version
	if moved {
		// The record no longer names the old ids, so List already skips these entries;
		// removing them only keeps the index small, and a failure does not undo the update.
		old := &dcr.Registration{
			SoftwareID: changedOrEmpty(stored.SoftwareID, next.SoftwareID),
			OrgID:      changedOrEmpty(stored.OrgID, next.OrgID),
		}
		s.removeIndexEntries(ctx, old, clientHash)
	}
	return nil
}

func changedOrEmpty(old, current string) string {
	if old == current {
		return ""
	}
	return old
}

// Delete turns the live record of clientID at version into a tombstone (version+1, DeletedAt
// set, content kept) and then removes its index entries: the tombstone is written first so
// that a crash in between leaves entries List skips, never a live record missing from List.
// The commits are written as for Create.
func (s *Store) Delete(ctx context.Context, clientID string, version int64, with ...dcr.Commit) error {
	c, err := s.prepareCommit(with)
	if err != nil {
		return err
	}
	if err := s.refusedBefore(ctx, c); err != nil {
		return err
	}
	if err := s.delete(ctx, clientID, version, c); err != nil {
		return err
	}
	s.appendEvent(ctx, c, clientID)
	return nil
}

func (s *Store) delete(ctx context.Context, clientID string, version int64, c *storeCommit) error {
	clientHash := hashID(clientID)
	key := s.recordKey(clientHash)
	stored, unlock, err := s.lockLive(ctx, key, clientHash, version, c)
	if err != nil {
		return err
	}
	defer unlock()
	deletedAt := s.now().UTC()
	stored.DeletedAt = &deletedAt
	stored.Version++
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("caddystorage: encoding tombstone %s: %w", clientID, err)
	}
	if err := s.writeOnce(ctx, c); err != nil {
		return err
	}
	if err := s.storage.Store(ctx, key, data); err != nil {
		s.releaseOnce(ctx, c.once)
		return fmt.Errorf("caddystorage: storing tombstone %s: %w", clientID, err)
	}
	s.removeIndexEntries(ctx, stored, clientHash)
	return nil
}

// lockLive locks the record at key and the keys of c and loads the record; no key of c may
// be used (else a *dcr.OnceUsedError) and the record must be live and at version (else
// ErrNotFound / ErrConflict), with the locks released. The caller calls unlock when done.
func (s *Store) lockLive(ctx context.Context, key, clientHash string, version int64, c *storeCommit) (*dcr.Registration, func(), error) {
	release, err := s.locks.lockAll(ctx, c.lockTargets(key, clientHash))
	if err != nil {
		return nil, nil, err
	}
	unlock := func() { s.unlock(release, key) }
	if err := s.checkOnce(ctx, c); err != nil {
		unlock()
		return nil, nil, err
	}
	stored, err := s.loadRecord(ctx, key)
	switch {
	case err != nil:
	case stored.Deleted():
		err = dcr.ErrNotFound
	case stored.Version != version:
		err = dcr.ErrConflict
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return stored, unlock, nil
}

// ListBySoftware returns the client_ids of the live registrations of softwareID, sorted.
func (s *Store) ListBySoftware(ctx context.Context, softwareID string) ([]string, error) {
	return s.list(ctx, indexSoftware, softwareID, func(r *dcr.Registration) string { return r.SoftwareID })
}

// ListByOrg returns the client_ids of the live registrations of orgID, sorted.
func (s *Store) ListByOrg(ctx context.Context, orgID string) ([]string, error) {
	return s.list(ctx, indexOrg, orgID, func(r *dcr.Registration) string { return r.OrgID })
}

// list reads the index and then each record it names: the record is the source of truth, so
// entries whose record is missing (a crashed Create), a tombstone (a crashed Delete) or now
// names another id (a crashed Update) are skipped.
func (s *Store) list(ctx context.Context, kind, id string, field func(*dcr.Registration) string) ([]string, error) {
	if id == "" {
		return nil, nil // empty ids are not indexed
	}
	keys, err := s.listKeys(ctx, s.indexDir(kind, id))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, entry := range keys {
		clientHash := path.Base(entry)
		if !isHash(clientHash) {
			continue
		}
		rec, err := s.loadRecord(ctx, s.recordKey(clientHash))
		if errors.Is(err, dcr.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if rec.Deleted() || field(rec) != id {
			continue
		}
		ids = append(ids, rec.ClientID)
	}
	slices.Sort(ids)
	return ids, nil
}

// listKeys lists dir, with no keys for a directory that does not exist. FileStorage.List
// fails with fs.ErrNotExist also when a file vanishes while it walks the directory (another
// writer's temporary file renamed into place, an index entry removed), so a listing of a
// directory that does exist is retried.
func (s *Store) listKeys(ctx context.Context, dir string) ([]string, error) {
	const attempts = 10 // backing off 1ms, 2ms, ...: at most ~55ms on a very busy directory
	var err error
	for attempt := range attempts {
		var keys []string
		keys, err = s.storage.List(ctx, dir, false)
		if err == nil {
			return keys, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
		if !s.storage.Exists(ctx, dir) {
			return nil, nil
		}
		select {
		case <-time.After(time.Duration(attempt+1) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("caddystorage: listing %s: %w", dir, err)
}

// loadRecord returns the record at key, tombstone or not; dcr.ErrNotFound if there is none.
func (s *Store) loadRecord(ctx context.Context, key string) (*dcr.Registration, error) {
	data, err := s.storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, dcr.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("caddystorage: loading %s: %w", key, err)
	}
	var rec dcr.Registration
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("caddystorage: decoding %s: %w", key, err)
	}
	return &rec, nil
}

// writeIndexEntries adds rec to the indexes of its non-empty software_id and org_id. An entry
// holds the client_id only for people reading the storage; List goes by its name.
func (s *Store) writeIndexEntries(ctx context.Context, rec *dcr.Registration, clientHash string) error {
	for _, e := range indexEntries(rec) {
		key := s.indexDir(e.kind, e.id) + "/" + clientHash
		if err := s.storage.Store(ctx, key, []byte(rec.ClientID)); err != nil {
			return fmt.Errorf("caddystorage: storing %s index entry of %s: %w", e.kind, rec.ClientID, err)
		}
	}
	return nil
}

// removeIndexEntries drops rec's index entries after the record stopped needing them, even if
// the request was cancelled meanwhile. It only logs failures: List skips such entries, so they
// cost space, not correctness.
func (s *Store) removeIndexEntries(ctx context.Context, rec *dcr.Registration, clientHash string) {
	ctx = context.WithoutCancel(ctx)
	for _, e := range indexEntries(rec) {
		key := s.indexDir(e.kind, e.id) + "/" + clientHash
		if err := s.storage.Delete(ctx, key); err != nil {
			s.logger.Warn("removing a stale index entry; List skips it",
				zap.String("index", e.kind), zap.String("client_id", rec.ClientID), zap.String("key", key), zap.Error(err))
		}
	}
}

type indexEntry struct{ kind, id string }

func indexEntries(rec *dcr.Registration) []indexEntry {
	var entries []indexEntry
	if rec.SoftwareID != "" {
		entries = append(entries, indexEntry{indexSoftware, rec.SoftwareID})
	}
	if rec.OrgID != "" {
		entries = append(entries, indexEntry{indexOrg, rec.OrgID})
	}
	return entries
}

// unlock releases a key lock taken by an operation. A failure is logged, not returned: the
// operation itself completed, and reporting it as failed would make a client retry a write
// that happened.
func (s *Store) unlock(unlock func() error, key string) {
	if err := unlock(); err != nil {
		s.logger.Error("releasing a storage lock; it blocks the key until it is considered stale",
			zap.String("key", key), zap.Error(err))
	}
}
