package bolt

import (
	"context"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
)

// List answers q in one read transaction. With a software_id or org_id it reads that id's
// index range (keys only; its entries are in issue order, so their client_ids are sorted)
// and then the records after q.After; otherwise it walks the registrations bucket, keyed by
// client_id, from a seek to the cursor.
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
		bucket, id := bucketSoftware, q.SoftwareID
		if id == "" {
			bucket, id = bucketOrg, q.OrgID
		}
		if id == "" {
			c := tx.Bucket(bucketRegistrations).Cursor()
			for k, v := c.Seek([]byte(q.After)); k != nil; k, v = c.Next() {
				if !yield(decodeStored(tx, k, v)) {
					return
				}
			}
			return
		}
		ids := indexedClients(tx, bucket, id)
		i, _ := slices.BinarySearch(ids, q.After)
		for _, clientID := range ids[i:] {
			if !yield(loadRecord(tx, []byte(clientID))) {
				return
			}
		}
	}
}
