package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
)

// denyKey is an entry's key in the denylist bucket: its kind, NUL, its id (ids are printable,
// so the NUL keeps "org_id"+"x" apart from any other kind's ids). Keys sort by kind then id,
// which is the order DenyList answers in.
func denyKey(kind dcr.DenyKind, id string) []byte {
	return []byte(string(kind) + "\x00" + id)
}

// AddDenial stores e unless its key exists, counting the bucket (bounded by limit) in the
// same transaction.
func (s *Store) AddDenial(ctx context.Context, e dcr.DenyEntry, limit int) (bool, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("bolt: encoding a deny list entry: %w", err)
	}
	key := denyKey(e.Kind, e.ID)
	added := false
	err = s.db.commit.do(func(tx *bbolt.Tx) (error, error) {
		added = false
		b := tx.Bucket(bucketDenyList)
		if b.Get(key) != nil {
			return nil, nil
		}
		if b.Stats().KeyN >= limit {
			return dcr.ErrDenyListFull, nil
		}
		if err := b.Put(key, data); err != nil {
			return nil, fmt.Errorf("bolt: storing a deny list entry: %w", err)
		}
		added = true
		return nil, nil
	})
	return added && err == nil, err
}

// Denials reads the org's and the software's keys.
func (s *Store) Denials(ctx context.Context, orgID, softwareID string) ([]dcr.DenyEntry, error) {
	var out []dcr.DenyEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDenyList)
		for _, k := range []struct {
			kind dcr.DenyKind
			id   string
		}{{dcr.DenyOrg, orgID}, {dcr.DenySoftware, softwareID}} {
			if k.id == "" {
				continue
			}
			if v := b.Get(denyKey(k.kind, k.id)); v != nil {
				e, err := decodeDenyEntry(v)
				if err != nil {
					return err
				}
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// DenyList reads the bucket in key order.
func (s *Store) DenyList(ctx context.Context) ([]dcr.DenyEntry, error) {
	var out []dcr.DenyEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDenyList).ForEach(func(_, v []byte) error {
			e, err := decodeDenyEntry(v)
			if err == nil {
				out = append(out, e)
			}
			return err
		})
	})
	return out, err
}

// LiftDenial deletes the key.
func (s *Store) LiftDenial(ctx context.Context, kind dcr.DenyKind, id string) (bool, error) {
	key := denyKey(kind, id)
	lifted := false
	err := s.db.commit.do(func(tx *bbolt.Tx) (error, error) {
		b := tx.Bucket(bucketDenyList)
		lifted = b.Get(key) != nil
		if !lifted {
			return nil, nil
		}
		return nil, b.Delete(bytes.Clone(key))
	})
	return lifted && err == nil, err
}

func decodeDenyEntry(v []byte) (dcr.DenyEntry, error) {
	var e dcr.DenyEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("bolt: decoding a deny list entry: %w", err)
	}
	return e, nil
}
