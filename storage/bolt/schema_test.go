package bolt

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
)

// writeSchema1File writes a registry the way the previous release did (schema 1: index keys
// sha256(id) || client_id), with the records of recs, one of them a tombstone.
func writeSchema1File(t *testing.T, path string, recs []*dcr.Registration) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"registrations", "software", "org", "once", "once_expiry", "meta", "history", "denylist"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(metaSchema, []byte("1")); err != nil {
			return err
		}
		for _, rec := range recs {
			data, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketRegistrations).Put([]byte(rec.ClientID), data); err != nil {
				return err
			}
			if rec.Deleted() {
				continue
			}
			for _, e := range []struct {
				bucket []byte
				id     string
			}{{bucketSoftware, rec.SoftwareID}, {bucketOrg, rec.OrgID}} {
				sum := sha256.Sum256([]byte(e.id))
				if err := tx.Bucket(e.bucket).Put(append(sum[:], rec.ClientID...), nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A file of the previous release (schema 1) is migrated at open: its index entries are
// rebuilt in the new layout, so listing by software and org finds what it found before, and
// the file says schema 2 (a second open does not migrate again). Its records, in the
// registrations bucket itself, are read where they are and moved to the records bucket when
// next written.
func TestOpenMigratesSchema1Indexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	var recs []*dcr.Registration
	for i := range 5 {
		rec := storetest.NewRegistration(i)
		rec.SoftwareID, rec.OrgID = "software-shared", "org-shared"
		rec.Version = 1
		// Issue order opposite to client_id order, so that an index read in key order
		// would come out wrong.
		rec.IssuedAt = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Duration(i) * time.Hour)
		recs = append(recs, rec)
	}
	deletedAt := time.Now().UTC()
	recs[2].DeletedAt = &deletedAt
	writeSchema1File(t, path, recs)

	for pass := range 2 {
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		want := []string{"client-0", "client-1", "client-3", "client-4"}
		if ids, err := s.ListBySoftware(ctx, "software-shared"); err != nil || !slices.Equal(ids, want) {
			t.Errorf("ListBySoftware = %v, %v; want %v", ids, err, want)
		}
		if ids, err := s.ListByOrg(ctx, "org-shared"); err != nil || !slices.Equal(ids, want) {
			t.Errorf("ListByOrg = %v, %v; want %v", ids, err, want)
		}
		page, err := s.List(ctx, dcr.ListQuery{SoftwareID: "software-shared", After: "client-0", Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page.Registrations {
			got = append(got, r.ClientID)
		}
		if !slices.Equal(got, []string{"client-1", "client-3"}) || page.Next != "client-3" {
			t.Errorf("List after client-0 = %v next %q", got, page.Next)
		}
		st, err := s.Check()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Problems) != 0 || st.Live != 4 || st.Tombstones != 1 {
			t.Errorf("Check after migration = %+v", st)
		}
		var schema string
		_ = s.db.View(func(tx *bbolt.Tx) error {
			schema = string(tx.Bucket(bucketMeta).Get(metaSchema))
			return nil
		})
		if schema != string(currentSchema) {
			t.Errorf("schema after open = %q, want %q", schema, currentSchema)
		}
		if rec, err := s.Get(ctx, "client-3"); err != nil || rec.ClientID != "client-3" || rec.SoftwareStatement != recs[3].SoftwareStatement {
			t.Errorf("Get of a schema 1 record = %+v, %v", rec, err)
		}
		if pass == 0 {
			rec, err := s.Get(ctx, "client-1")
			if err != nil {
				t.Fatal(err)
			}
			rec.Metadata["client_name"] = "renamed"
			if err := s.Update(ctx, rec); err != nil {
				t.Fatal(err)
			}
			var moved bool
			_ = s.db.View(func(tx *bbolt.Tx) error {
				_, moved = recordRef(tx.Bucket(bucketRegistrations).Get([]byte("client-1")))
				return nil
			})
			if !moved {
				t.Error("an updated schema 1 record was not moved to the records bucket")
			}
		}
		if rec, err := s.Get(ctx, "client-1"); err != nil || rec.Metadata["client_name"] != "renamed" || rec.Version != 2 {
			t.Errorf("Get of the updated record = %+v, %v", rec, err)
		}
		if pass == 1 {
			// A write after the migration removes the entries it wrote.
			if err := s.Delete(ctx, "client-4", 1); err != nil {
				t.Fatal(err)
			}
			if ids, _ := s.ListBySoftware(ctx, "software-shared"); !slices.Equal(ids, want[:3]) {
				t.Errorf("after a Delete, ListBySoftware = %v", ids)
			}
			if st, _ := s.Check(); st == nil || len(st.Problems) != 0 {
				t.Errorf("Check after a Delete = %+v", st)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A file of a schema this version does not know is refused, not rewritten.
func TestOpenRefusesAnUnknownSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	writeSchema1File(t, path, nil)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaSchema, []byte("99")) }); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	if s, err := Open(path, nil); err == nil {
		_ = s.Close()
		t.Fatal("Open of a schema 99 file succeeded")
	}
}

// A client's history in a schema 1 file (in the history bucket under sha256(kind, id)) reads
// after the upgrade, and moves with the client's next event to client_history, where the
// retention counts the old events with the new.
func TestSchema1HistoryMovesWithTheNextEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	rec := storetest.NewRegistration(1)
	rec.Version = 1
	writeSchema1File(t, path, []*dcr.Registration{rec})
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		for i := range 3 {
			ev := dcr.HistoryEvent{Time: t0.Add(time.Duration(i) * time.Minute), Event: dcr.EventRegistered, ClientID: "client-1", Reason: fmt.Sprint("old", i)}
			data, _ := json.Marshal(ev)
			if err := putHistory(b, historyPrefix(dcr.HistoryOfClient, "client-1"), ev.Time, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	reasons := func() []string {
		t.Helper()
		evs, err := s.History(ctx, dcr.HistoryOfClient, "client-1", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range evs {
			out = append(out, ev.Reason)
		}
		return out
	}
	if got := reasons(); !slices.Equal(got, []string{"old0", "old1", "old2"}) {
		t.Fatalf("History of a schema 1 client = %v", got)
	}
	// An update moves the record to records and, with its event, the history; keep 3.
	ev := dcr.HistoryEvent{Time: t0.Add(time.Hour), Event: "updated", Reason: "new"}
	keep := dcr.HistoryRetention{MaxEvents: 3, MaxAge: 10 * 365 * 24 * time.Hour}
	if err := s.Update(ctx, rec, dcr.Commit{Event: &ev, Retention: keep}); err != nil {
		t.Fatal(err)
	}
	if got := reasons(); !slices.Equal(got, []string{"old1", "old2", "new"}) {
		t.Errorf("History after the update = %v, want the 3 newest", got)
	}
	var left int
	_ = s.db.View(func(tx *bbolt.Tx) error {
		left = tx.Bucket(bucketHistory).Stats().KeyN
		return nil
	})
	if left != 0 {
		t.Errorf("%d events left in the history bucket after the move", left)
	}
	// AppendHistory goes to the same place.
	ev2 := dcr.HistoryEvent{Time: t0.Add(2 * time.Hour), Event: "rejected", Reason: "newer"}
	if err := s.AppendHistory(ctx, dcr.HistoryOfClient, "client-1", ev2, keep); err != nil {
		t.Fatal(err)
	}
	if got := reasons(); !slices.Equal(got, []string{"old2", "new", "newer"}) {
		t.Errorf("History after AppendHistory = %v", got)
	}
}
