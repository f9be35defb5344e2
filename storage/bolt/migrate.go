package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
)

// What the migration command and the consistency check use: whole-file operations that no
// request path calls.

// ImportOutcome says what Import did with one record.
type ImportOutcome int

const (
	// Imported: the file had no record of that client_id.
	Imported ImportOutcome = iota
	// Unchanged: the file has the record at the same version; it was left as it is.
	Unchanged
	// Replaced: the file had an older version; the imported one replaced it.
	Replaced
	// KeptNewer: the file has a newer version (written since an earlier migration); kept.
	KeptNewer
)

// Import writes records as they are (version and tombstones included) with their index
// entries, all in one transaction, and says what it did with each. Running it twice with the
// same records changes nothing the second time.
func (s *Store) Import(recs []*dcr.Registration) ([]ImportOutcome, error) {
	encoded := make([][]byte, len(recs))
	for i, rec := range recs {
		if rec == nil || rec.ClientID == "" {
			return nil, fmt.Errorf("bolt: Import of a record without client_id (#%d)", i)
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("bolt: encoding registration %s: %w", rec.ClientID, err)
		}
		encoded[i] = data
	}
	outcomes := make([]ImportOutcome, len(recs))
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for i, rec := range recs {
			key := []byte(rec.ClientID)
			old, err := loadRecord(tx, key)
			switch {
			case err == nil && old.Version == rec.Version:
				outcomes[i] = Unchanged
				continue
			case err == nil && old.Version > rec.Version:
				outcomes[i] = KeptNewer
				continue
			case err == nil:
				outcomes[i] = Replaced
			case errors.Is(err, dcr.ErrNotFound):
				outcomes[i], old = Imported, nil
			default:
				return err
			}
			if err := putRecord(tx, key, encoded[i], old, rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return outcomes, nil
}

// ImportOnce records the one-time key whose SHA-256 is keyHash until expires, unless the
// file already holds it until then or later; it reports whether it wrote.
func (s *Store) ImportOnce(keyHash [32]byte, expires time.Time) (bool, error) {
	wrote := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		wrote = false
		cur, ok, err := loadOnce(tx, keyHash[:])
		if err != nil || (ok && !cur.Before(expires)) {
			return err
		}
		wrote = true
		return putOnce(tx, keyHash[:], expires)
	})
	return wrote, err
}

// MigrationInfo is the note a completed migration leaves in the file; its presence is what
// lets the implicit default start while the old registry is still in Caddy storage.
type MigrationInfo struct {
	From          string    `json:"from"`
	At            time.Time `json:"at"`
	Registrations int       `json:"registrations"`
	OnceKeys      int       `json:"once_keys"`
}

// MarkMigrated records a completed migration.
func (s *Store) MarkMigrated(info MigrationInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaMigratedFrom, data)
	})
}

// Migrated returns the note of the last migration into this file, nil if there was none.
func (s *Store) Migrated() (*MigrationInfo, error) {
	var info *MigrationInfo
	err := s.db.View(func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketMeta).Get(metaMigratedFrom)
		if data == nil {
			return nil
		}
		info = new(MigrationInfo)
		return json.Unmarshal(data, info)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: reading the migration note: %w", err)
	}
	return info, nil
}

// Stats describes the whole file, as Check found it.
type Stats struct {
	Registrations int // records, live and tombstones
	Live          int
	Tombstones    int
	// BySoftware counts the index entries of each software_id (the live records of it).
	BySoftware map[string]int
	OnceKeys   int
	// Problems lists every inconsistency found: an index entry without a live record of its
	// id, a live record without its entries, a record that does not decode, a one-time key
	// out of step with the TTL order. Empty for a sound file.
	Problems []string
}

// Check reads the whole file in one read transaction and cross-checks records, indexes and
// one-time keys.
func (s *Store) Check() (*Stats, error) {
	st := &Stats{BySoftware: map[string]int{}}
	err := s.db.View(func(tx *bbolt.Tx) error {
		live := map[string]*dcr.Registration{}
		referenced := 0
		err := tx.Bucket(bucketRegistrations).ForEach(func(k, v []byte) error {
			st.Registrations++
			var rec dcr.Registration
			data, err := recordData(tx, k, v)
			if err == nil {
				if _, ok := recordRef(v); ok {
					referenced++
				}
				err = json.Unmarshal(data, &rec)
			}
			if err != nil {
				st.Problems = append(st.Problems, fmt.Sprintf("record %q does not decode: %v", k, err))
				return nil
			}
			if rec.ClientID != string(k) {
				st.Problems = append(st.Problems, fmt.Sprintf("record %q holds client_id %q", k, rec.ClientID))
			}
			if rec.Deleted() {
				st.Tombstones++
				return nil
			}
			st.Live++
			live[rec.ClientID] = &rec
			return nil
		})
		if err != nil {
			return err
		}
		if n := tx.Bucket(bucketRecords).Stats().KeyN; n != referenced {
			st.Problems = append(st.Problems, fmt.Sprintf("%d records for %d references to them", n, referenced))
		}
		for _, ix := range []struct {
			bucket []byte
			id     func(*dcr.Registration) string
		}{
			{bucketSoftware, func(r *dcr.Registration) string { return r.SoftwareID }},
			{bucketOrg, func(r *dcr.Registration) string { return r.OrgID }},
		} {
			entries := map[string]bool{}
			err := tx.Bucket(ix.bucket).ForEach(func(k, _ []byte) error {
				if len(k) <= indexPrefixLen {
					st.Problems = append(st.Problems, fmt.Sprintf("%s index entry %x is too short", ix.bucket, k))
					return nil
				}
				clientID := string(k[indexPrefixLen:])
				rec := live[clientID]
				if rec == nil || !bytes.Equal(indexKey(ix.id(rec), rec), k) {
					st.Problems = append(st.Problems, fmt.Sprintf("orphan %s index entry of %q", ix.bucket, clientID))
					return nil
				}
				entries[clientID] = true
				if bytes.Equal(ix.bucket, bucketSoftware) {
					st.BySoftware[rec.SoftwareID]++
				}
				return nil
			})
			if err != nil {
				return err
			}
			for id, rec := range live {
				if ix.id(rec) != "" && !entries[id] {
					st.Problems = append(st.Problems, fmt.Sprintf("live record %q has no %s index entry", id, ix.bucket))
				}
			}
		}
		byExpiry := tx.Bucket(bucketOnceExpiry)
		err = tx.Bucket(bucketOnce).ForEach(func(h, exp []byte) error {
			st.OnceKeys++
			// A cursor rather than Get: the entries have empty values, which Get may not
			// tell from absent ones.
			want := expiryKey(exp, h)
			if k, _ := byExpiry.Cursor().Seek(want); !bytes.Equal(k, want) {
				st.Problems = append(st.Problems, fmt.Sprintf("one-time key %x has no TTL entry", h))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n := byExpiry.Stats().KeyN; n != st.OnceKeys {
			st.Problems = append(st.Problems, fmt.Sprintf("%d TTL entries for %d one-time keys", n, st.OnceKeys))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: checking %s: %w", s.Path, err)
	}
	return st, nil
}

// Lookup returns the stored record of clientID, tombstone or not (Get hides tombstones);
// dcr.ErrNotFound if there is none.
func (s *Store) Lookup(clientID string) (*dcr.Registration, error) {
	var rec *dcr.Registration
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = loadRecord(tx, []byte(clientID))
		return err
	})
	return rec, err
}
