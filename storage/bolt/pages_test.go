package bolt

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
)

// pagesPrefill is how many registrations the file holds before BenchmarkCommitPages starts:
// a registry of some size, so that random keys land on pages of their own, as they do in
// production, rather than on the few pages of an empty file.
const pagesPrefill = 20000

// pagesRegistration is a registration as the gateway stores it: a random client_id
// (registrars/local uses UUIDs), one of a few TPPs' software and org ids, and a software
// statement of a realistic length (an RS/PS256-signed SSA is 1.5 to 3 KB).
func pagesRegistration(i int) *dcr.Registration {
	rec := storetest.NewRegistration(i)
	rec.ClientID = uuid.NewString()
	tppN := i % 4
	rec.SoftwareID, rec.OrgID = fmt.Sprintf("software-%d", tppN), fmt.Sprintf("org-%d", tppN)
	rec.SoftwareStatement = "eyJhbGciOiJQUzI1NiJ9." + strings.Repeat("x", 1400) + "." + strings.Repeat("s", 342)
	return rec
}

// pagesCommit is the dcr.Commit of a registration: its request's jti and its history event.
func pagesCommit() dcr.Commit {
	return dcr.Commit{
		Once:  []dcr.OnceClaim{{Key: "https://tpp.example|" + uuid.NewString(), TTL: time.Hour}},
		Event: &dcr.HistoryEvent{Time: time.Now().UTC(), Event: dcr.EventRegistered, Operation: "register", Status: 201},
	}
}

// BenchmarkCommitPages is what the file is asked to write per registration and per group
// commit, from bbolt's own counters (DB.Stats): pages allocated for dirty nodes (each one
// written and fdatasynced; their count is what a commit costs on a disk), the pwrite calls,
// the bytes, and node spills and splits. The registrations are Creates with their commit,
// 32 in flight, into a file that already holds pagesPrefill of them:
//
//	go test -run '^$' -bench CommitPages -benchtime 5000x ./storage/bolt/
//
// The sub-benchmarks take parts away, to see what each part of a registration costs.
func BenchmarkCommitPages(b *testing.B) {
	for _, v := range []struct {
		name      string
		withIndex bool
		withOnce  bool
		withEvent bool
	}{
		{"all", true, true, true},
		{"record+index", true, false, false},
		{"record+jti", false, true, false},
		{"record+event", false, false, true},
		{"record", false, false, false},
	} {
		b.Run(v.name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "registry.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			var ids atomic.Int64
			make := func() (*dcr.Registration, []dcr.Commit) {
				i := int(ids.Add(1))
				rec := pagesRegistration(i)
				if !v.withIndex {
					rec.SoftwareID, rec.OrgID = "", ""
				}
				c := pagesCommit()
				if !v.withOnce {
					c.Once = nil
				}
				if !v.withEvent {
					c.Event = nil
				}
				return rec, []dcr.Commit{c}
			}
			prefill(b, s, pagesPrefill, make)

			before, commits := s.db.Stats(), s.db.commit.commits.Load()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec, with := make()
					if err := s.Create(b.Context(), rec, with...); err != nil {
						b.Errorf("Create: %v", err)
						return
					}
				}
			})
			b.StopTimer()
			reportPages(b, s, before, s.db.commit.commits.Load()-commits)
		})
	}
}

// prefill writes n registrations, 500 to a transaction, through the same code as Create.
func prefill(b testing.TB, s *Store, n int, make func() (*dcr.Registration, []dcr.Commit)) {
	b.Helper()
	for done := 0; done < n; {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			for j := 0; j < 500 && done < n; j, done = j+1, done+1 {
				rec, with := make()
				rec.Version = 1
				if err := createTx(tx, rec, with, time.Now()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// createTx is Create's write, for prefill.
func createTx(tx *bbolt.Tx, rec *dcr.Registration, with []dcr.Commit, now time.Time) error {
	data, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	c, err := prepareCommit(with, rec.ClientID)
	if err != nil {
		return err
	}
	if err := putRecord(tx, []byte(rec.ClientID), data, nil, rec); err != nil {
		return err
	}
	return c.write(tx, now)
}

// reportPages reports bbolt's write counters since before, per registration and per commit.
func reportPages(b *testing.B, s *Store, before bbolt.Stats, commits int64) {
	b.Helper()
	after := s.db.Stats()
	d := after.Sub(&before)
	n, pageSize := float64(b.N), float64(s.db.Info().PageSize)
	b.ReportMetric(float64(d.TxStats.GetPageAlloc())/pageSize/n, "pages/reg")
	b.ReportMetric(float64(d.TxStats.GetPageAlloc())/n, "bytes/reg")
	b.ReportMetric(float64(d.TxStats.GetWrite())/n, "writes/reg")
	if commits > 0 {
		c := float64(commits)
		b.ReportMetric(n/c, "regs/commit")
		b.ReportMetric(float64(d.TxStats.GetPageAlloc())/pageSize/c, "pages/commit")
		b.ReportMetric(float64(d.TxStats.GetSpill())/c, "spills/commit")
		b.ReportMetric(float64(d.TxStats.GetSplit())/c, "splits/commit")
	}
}

// A batch of registrations writes about half the pages it did with schema 1's layout: the
// records and their registered events appended together, the index entries of one software
// together. Counted by bbolt (pages allocated for dirty nodes), not timed: 16 registrations
// of 4 TPPs in each of 20 transactions, on a file of 5,000. Schema 1's layout took 10.5
// pages per registration here, this one 5.4; the bound catches a change that scatters them
// again.
func TestBatchOfRegistrationsSharesPages(t *testing.T) {
	s := newStore(t)
	var ids atomic.Int64
	make := func() (*dcr.Registration, []dcr.Commit) {
		return pagesRegistration(int(ids.Add(1))), []dcr.Commit{pagesCommit()}
	}
	prefill(t, s, 5000, make)
	before := s.db.Stats()
	const batches, batch = 20, 16
	for range batches {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			for range batch {
				rec, with := make()
				rec.Version = 1
				if err := createTx(tx, rec, with, time.Now()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	after := s.db.Stats()
	d := after.Sub(&before)
	perReg := float64(d.TxStats.GetPageAlloc()) / float64(s.db.Info().PageSize) / (batches * batch)
	t.Logf("%.2f pages per registration", perReg)
	if perReg > 8.5 {
		t.Errorf("a batch wrote %.2f pages per registration; this layout writes about 5.4 (schema 1's, 10.5)", perReg)
	}
}
