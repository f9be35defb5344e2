package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
)

// indexKey is the entry of rec under id (its software_id or org_id): the id's SHA-256
// (fixed length, so one id's entries are a prefix range no other id can reach into), the
// time the client was issued (Unix ns, big-endian), then the client_id. The time keeps one
// id's new entries together at the end of its range: the registrations of a batch that share
// a software or org id dirty one index page between them, where entries ordered by their
// random client_ids (schema 1, see migrateIndexes) took a page each.
func indexKey(id string, rec *dcr.Registration) []byte {
	sum := sha256.Sum256([]byte(id))
	key := binary.BigEndian.AppendUint64(sum[:], issuedNanos(rec))
	return append(key, rec.ClientID...)
}

// indexPrefixLen is the length of an index key before its client_id.
const indexPrefixLen = sha256.Size + 8

// indexPrefix is the key range of id's entries.
func indexPrefix(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

// issuedNanos is rec.IssuedAt in Unix ns, 0 for a time before 1970 (or unset), so that the
// key is defined for every record.
func issuedNanos(rec *dcr.Registration) uint64 {
	if rec.IssuedAt.Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(rec.IssuedAt.UnixNano())
}

// Create stores rec if its client_id was never used (live or tombstone) and none of the
// commits' keys is used; rec.Version becomes 1. The record, both index entries, the keys and
// the event are written in one transaction.
func (s *Store) Create(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	switch {
	case rec == nil:
		return errors.New("bolt: Create of a nil registration")
	case rec.ClientID == "":
		return errors.New("bolt: Create of a registration without client_id")
	case rec.Deleted():
		return errors.New("bolt: Create of a deleted registration")
	}
	// What is stored is the encoding: a copy of the fields is enough (the maps are only read).
	next := *rec
	next.Version = 1
	data, err := encodeRecord(&next)
	if err != nil {
		return err
	}
	c, err := prepareCommit(with, rec.ClientID)
	if err != nil {
		return err
	}
	if err := s.refusedBefore(c); err != nil {
		return err
	}
	key := []byte(rec.ClientID)
	err = s.db.commit.do(func(tx *bbolt.Tx) (error, error) {
		now := s.now()
		if outcome, err := c.check(tx, now); outcome != nil || err != nil {
			return outcome, err
		}
		if tx.Bucket(bucketRegistrations).Get(key) != nil {
			return dcr.ErrExists, nil
		}
		if err := putRecord(tx, key, data, nil, &next); err != nil {
			return nil, err
		}
		return nil, c.write(tx, now)
	})
	if err != nil {
		return err
	}
	rec.Version = 1
	return nil
}

// putRecord writes the record and moves its index entries from the ids of old (nil when
// there was no record) to those of rec (none for a tombstone). Empty ids are not indexed.
func putRecord(tx *bbolt.Tx, key, data []byte, old, rec *dcr.Registration) error {
	if err := putRecordData(tx, key, data); err != nil {
		return fmt.Errorf("bolt: storing registration %s: %w", rec.ClientID, err)
	}
	if old != nil && !old.Deleted() {
		for _, e := range indexEntries(old) {
			if err := tx.Bucket(e.bucket).Delete(indexKey(e.id, old)); err != nil {
				return fmt.Errorf("bolt: removing the %s index entry of %s: %w", e.bucket, rec.ClientID, err)
			}
		}
	}
	if rec.Deleted() {
		return nil
	}
	for _, e := range indexEntries(rec) {
		if err := tx.Bucket(e.bucket).Put(indexKey(e.id, rec), nil); err != nil {
			return fmt.Errorf("bolt: storing the %s index entry of %s: %w", e.bucket, rec.ClientID, err)
		}
	}
	return nil
}

// A record is stored in the records bucket under a sequence number taken when it was first
// written, and the registrations bucket maps its client_id to that number (recordRefTag and
// the number, big-endian). New records thus append at the end of records, together, and
// the random client_ids only place small references: a registration inserted among other
// records of 3 KB rewrote their whole leaf (bbolt keeps up to four entries on a leaf however
// large, so two to three pages), and now rewrites a leaf of references. Records of schema 1
// sit in registrations themselves (their JSON); they are read as they are and moved to
// records when they are next written.
const recordRefTag = 0x00

// recordRefLen is the length of a reference: the tag and a uint64.
const recordRefLen = 9

// recordRef returns the sequence number a registrations value refers to, if it is a
// reference (JSON starts with '{', never with the tag).
func recordRef(v []byte) ([]byte, bool) {
	if len(v) == recordRefLen && v[0] == recordRefTag {
		return v[1:], true
	}
	return nil, false
}

// recordData returns the record a registrations value stands for: the record it refers to,
// or the value itself (a record of schema 1). A reference to no record is an error.
func recordData(tx *bbolt.Tx, key, v []byte) ([]byte, error) {
	seq, ok := recordRef(v)
	if !ok {
		return v, nil
	}
	data := tx.Bucket(bucketRecords).Get(seq)
	if data == nil {
		return nil, fmt.Errorf("bolt: registration %q refers to record %x, which is missing", key, seq)
	}
	return data, nil
}

// putRecordData stores data as the record of key: in place of the record it refers to, or,
// for a new record (or one of schema 1), under the records bucket's next sequence number.
func putRecordData(tx *bbolt.Tx, key, data []byte) error {
	records := tx.Bucket(bucketRecords)
	if seq, ok := recordRef(tx.Bucket(bucketRegistrations).Get(key)); ok {
		return records.Put(bytes.Clone(seq), data)
	}
	// Appends only: full leaves, not the half-full ones of a split in the middle.
	records.FillPercent = 1.0
	n, err := records.NextSequence()
	if err != nil {
		return err
	}
	ref := binary.BigEndian.AppendUint64([]byte{recordRefTag}, n)
	if err := records.Put(ref[1:], data); err != nil {
		return err
	}
	return tx.Bucket(bucketRegistrations).Put(key, ref)
}

type indexEntry struct {
	bucket []byte
	id     string
}

func indexEntries(rec *dcr.Registration) []indexEntry {
	entries := make([]indexEntry, 0, 2)
	if rec.SoftwareID != "" {
		entries = append(entries, indexEntry{bucketSoftware, rec.SoftwareID})
	}
	if rec.OrgID != "" {
		entries = append(entries, indexEntry{bucketOrg, rec.OrgID})
	}
	return entries
}

// Get returns the live record of clientID.
func (s *Store) Get(ctx context.Context, clientID string) (*dcr.Registration, error) {
	var rec *dcr.Registration
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = loadRecord(tx, []byte(clientID))
		return err
	})
	if err != nil {
		return nil, err
	}
	if rec.Deleted() {
		return nil, dcr.ErrNotFound
	}
	return rec, nil
}

// loadRecord decodes the stored record at key (live or tombstone), ErrNotFound if none. The
// bytes bbolt hands out are only valid during the transaction; decoding copies them.
func loadRecord(tx *bbolt.Tx, key []byte) (*dcr.Registration, error) {
	if len(key) == 0 || len(key) > bbolt.MaxKeySize {
		return nil, dcr.ErrNotFound
	}
	v := tx.Bucket(bucketRegistrations).Get(key)
	if v == nil {
		return nil, dcr.ErrNotFound
	}
	return decodeStored(tx, key, v)
}

// encodeRecord is the stored form of rec: json.Marshal's bytes (appendRecord). Most of a
// record is its software statement and the SSA claims decoded from it; the first guess of its
// size leaves room for both, so that the buffer is rarely grown.
func encodeRecord(rec *dcr.Registration) ([]byte, error) {
	data, err := appendRecord(make([]byte, 0, 1024+2*len(rec.SoftwareStatement)), rec)
	if err != nil {
		return nil, fmt.Errorf("bolt: encoding registration %s: %w", rec.ClientID, err)
	}
	return data, nil
}

// decodeStored decodes the record that the registrations value v at key stands for.
func decodeStored(tx *bbolt.Tx, key, v []byte) (*dcr.Registration, error) {
	data, err := recordData(tx, key, v)
	if err != nil {
		return nil, err
	}
	return decodeRecord(key, data)
}

// decodeRecord decodes the stored record data at key.
func decodeRecord(key, data []byte) (*dcr.Registration, error) {
	var rec dcr.Registration
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("bolt: decoding registration %q: %w", key, err)
	}
	return &rec, nil
}

// Update replaces the live record whose stored version is rec.Version and bumps rec.Version.
// Only Delete makes a tombstone, so a DeletedAt set on rec is not stored. Index entries move
// with the software_id and org_id, and the commits are written, in the same transaction.
func (s *Store) Update(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	if rec == nil {
		return errors.New("bolt: Update of a nil registration")
	}
	next := *rec // only read, as in Create
	next.Version = rec.Version + 1
	next.DeletedAt = nil
	data, err := encodeRecord(&next)
	if err != nil {
		return err
	}
	c, err := prepareCommit(with, rec.ClientID)
	if err != nil {
		return err
	}
	if err := s.refusedBefore(c); err != nil {
		return err
	}
	key := []byte(rec.ClientID)
	err = s.db.commit.do(func(tx *bbolt.Tx) (error, error) {
		now := s.now()
		if outcome, err := c.check(tx, now); outcome != nil || err != nil {
			return outcome, err
		}
		stored, outcome, err := loadLive(tx, key, rec.Version)
		if outcome != nil || err != nil {
			return outcome, err
		}
		if err := putRecord(tx, key, data, stored, &next); err != nil {
			return nil, err
		}
		return nil, c.write(tx, now)
	})
	if err != nil {
		return err
	}
	rec.Version = next.Version
	return nil
}

// Delete turns the live record of clientID at version into a tombstone (version+1, DeletedAt
// set, content kept so the client_id is never reused) and removes its index entries, all in
// one transaction with the commits.
func (s *Store) Delete(ctx context.Context, clientID string, version int64, with ...dcr.Commit) error {
	key := []byte(clientID)
	deletedAt := s.now().UTC()
	c, err := prepareCommit(with, clientID)
	if err != nil {
		return err
	}
	if err := s.refusedBefore(c); err != nil {
		return err
	}
	return s.db.commit.do(func(tx *bbolt.Tx) (error, error) {
		now := s.now()
		if outcome, err := c.check(tx, now); outcome != nil || err != nil {
			return outcome, err
		}
		stored, outcome, err := loadLive(tx, key, version)
		if outcome != nil || err != nil {
			return outcome, err
		}
		tomb := stored.Clone()
		tomb.DeletedAt = &deletedAt
		tomb.Version++
		data, err := encodeRecord(tomb)
		if err != nil {
			return nil, err
		}
		if err := putRecord(tx, key, data, stored, tomb); err != nil {
			return nil, err
		}
		return nil, c.write(tx, now)
	})
}

// loadLive reads the record at key for a write: it must be live (else the outcome is
// ErrNotFound) and at version (else ErrConflict).
func loadLive(tx *bbolt.Tx, key []byte, version int64) (rec *dcr.Registration, outcome, failure error) {
	stored, err := loadRecord(tx, key)
	switch {
	case errors.Is(err, dcr.ErrNotFound):
		return nil, dcr.ErrNotFound, nil
	case err != nil:
		return nil, nil, err
	case stored.Deleted():
		return nil, dcr.ErrNotFound, nil
	case stored.Version != version:
		return nil, dcr.ErrConflict, nil
	}
	return stored, nil, nil
}

// ListBySoftware returns the client_ids of the live registrations of softwareID, sorted.
func (s *Store) ListBySoftware(ctx context.Context, softwareID string) ([]string, error) {
	return s.list(bucketSoftware, softwareID)
}

// ListByOrg returns the client_ids of the live registrations of orgID, sorted.
func (s *Store) ListByOrg(ctx context.Context, orgID string) ([]string, error) {
	return s.list(bucketOrg, orgID)
}

// list scans the index range of id. Entries and records change in the same transactions,
// so every entry names a live record of that id.
func (s *Store) list(bucket []byte, id string) ([]string, error) {
	if id == "" {
		return nil, nil // empty ids are not indexed
	}
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		ids = indexedClients(tx, bucket, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: listing %s: %w", bucket, err)
	}
	return ids, nil
}

// indexedClients returns the client_ids of id's entries in bucket, sorted (the entries are in
// issue order).
func indexedClients(tx *bbolt.Tx, bucket []byte, id string) []string {
	prefix := indexPrefix(id)
	var ids []string
	c := tx.Bucket(bucket).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) > indexPrefixLen {
			ids = append(ids, string(k[indexPrefixLen:]))
		}
	}
	slices.Sort(ids)
	return ids
}
