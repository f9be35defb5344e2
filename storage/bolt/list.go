package bolt

import (
	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
)

// List answers q in one read transaction. With a software_id or org_id it walks that id's
// index range, whose keys end in the client_id and so come in client_id order; otherwise it
// walks the registrations bucket, keyed by client_id. Both seek straight to the cursor.
func (s *Store) List(ctx context.Context, q dcr.ListQuery) (dcr.ListPage, error) {
	if err := q.Validate(); err != nil {
		return dcr.ListPage{}, err
	}
	var page dcr.ListPage
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		page, err = dcr.CollectPage(q, candidates(tx, q))
		return err
	})
	if err != nil {
		return dcr.ListPage{}, fmt.Errorf("bolt: listing registrations: %w", err)
	}
	return page, nil
}

// candidates yields the records q may select, in client_id order, from q.After on.
func candidates(tx *bbolt.Tx, q dcr.ListQuery) func(func(*dcr.Registration, error) bool) {
	return func(yield func(*dcr.Registration, error) bool) {
		bucket, id := bucketRegistrations, ""
		switch {
		case q.SoftwareID != "":
			bucket, id = bucketSoftware, q.SoftwareID
		case q.OrgID != "":
			bucket, id = bucketOrg, q.OrgID
		}
		var prefix []byte
		if id != "" {
			prefix = indexKey(id, "")
		}
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(append(bytes.Clone(prefix), q.After...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var rec *dcr.Registration
			var err error
			if prefix == nil {
				rec, err = decodeRecord(k, v)
			} else {
				rec, err = loadRecord(tx, k[len(prefix):])
			}
			if !yield(rec, err) {
				return
			}
		}
	}
}
