package bolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	bbolt "go.etcd.io/bbolt"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
)

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "registry.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dcr.Store { return newStore(t) })
}

// Everything written is in the file: a store reopened on it reads the same registry.
func TestReopenReadsWhatWasWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	ctx := t.Context()
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Create(ctx, storetest.NewRegistration(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "client-1", 1); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(ctx, "jti-1", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, "client-2"); err != nil {
		t.Errorf("Get after reopen: %v", err)
	}
	if err := s.Create(ctx, storetest.NewRegistration(1)); !errors.Is(err, dcr.ErrExists) {
		t.Errorf("the tombstone did not survive a reopen: Create = %v", err)
	}
	if ok, err := s.Claim(ctx, "jti-1", time.Hour); ok || err != nil {
		t.Errorf("a claimed jti was forgotten by a reopen: Claim = %v, %v", ok, err)
	}
	st, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	if st.Registrations != 3 || st.Live != 2 || st.Tombstones != 1 || st.OnceKeys != 1 || len(st.Problems) != 0 {
		t.Errorf("Check = %+v", st)
	}
}

// One *bbolt.DB per file per process, whatever the spelling of the path; the file is closed
// (and unlocked) when the last store on it is cleaned up, not before.
func TestPoolSharesOneDBPerFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.db")
	a, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(filepath.Join(dir, "sub", "..", "registry.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.db != b.db {
		t.Fatal("two stores on one file hold different databases")
	}
	if err := a.Create(t.Context(), storetest.NewRegistration(1)); err != nil {
		t.Fatal(err)
	}
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := a.Cleanup(); err != nil { // idempotent: must not release b's reference
		t.Fatal(err)
	}
	if _, err := b.Get(t.Context(), "client-1"); err != nil {
		t.Fatalf("the other store lost the file when the first was cleaned up: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed for real: a direct open (outside the pool) gets the lock at once.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("the file is still locked after the last store was cleaned up: %v", err)
	}
	_ = db.Close()
	if err := b.Create(t.Context(), storetest.NewRegistration(2)); !errors.Is(err, errClosed) {
		t.Errorf("Create on a cleaned-up store = %v, want errClosed", err)
	}
}

// A second opener of a file that is in use (bbolt's flock; on Linux flock conflicts between
// two open files of one process as between two processes) fails fast, naming the file.
func TestSecondOpenerFailsWithClearMessage(t *testing.T) {
	s := newStore(t)
	_, err := openDB(s.Path, 100*time.Millisecond)
	if !errors.Is(err, errAnotherProcess) {
		t.Fatalf("second open = %v, want errAnotherProcess", err)
	}
	for _, want := range []string{s.Path, "another Caddy process", "storage bolt { path <file> }"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
}

func TestOpenRefusesAForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a foreign file = %v, want an error naming it", err)
	}
}

// Writers that arrive while a commit is in progress share the next transaction.
func TestConcurrentWritersAreGroupCommitted(t *testing.T) {
	s := newStore(t)
	c := s.db.commit
	release := make(chan struct{})
	blocked := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = c.do(func(tx *bbolt.Tx) (error, error) {
			close(blocked)
			<-release
			return nil, nil
		})
	})
	<-blocked
	before := c.commits.Load()
	const writers = 50
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() { errs[i] = s.Create(t.Context(), storetest.NewRegistration(i)) })
	}
	for c.queued.Load() != writers {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Create #%d: %v", i, err)
		}
	}
	// All 50 were waiting when the blocking commit ended: they form one batch (a writer that
	// had counted itself but not yet reached the channel may make a second).
	if n := c.commits.Load() - before; n > 2 {
		t.Errorf("%d writers waiting together took %d commits, want 1 (or 2)", writers, n)
	}
	st, err := s.Check()
	if err != nil || st.Live != writers || len(st.Problems) != 0 {
		t.Fatalf("Check = %+v, %v", st, err)
	}
}

// A write that fails inside a shared transaction fails alone: the others of its batch are
// retried one by one and commit.
func TestFailedWriteDoesNotFailItsBatch(t *testing.T) {
	s := newStore(t)
	c := s.db.commit
	release := make(chan struct{})
	blocked := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = c.do(func(tx *bbolt.Tx) (error, error) {
			close(blocked)
			<-release
			return nil, nil
		})
	})
	<-blocked
	bad := storetest.NewRegistration(99)
	bad.ClientID = strings.Repeat("x", bbolt.MaxKeySize+1) // Put fails: key too large
	var badErr error
	errs := make([]error, 10)
	wg.Go(func() { badErr = s.Create(t.Context(), bad) })
	for i := range errs {
		wg.Go(func() { errs[i] = s.Create(t.Context(), storetest.NewRegistration(i)) })
	}
	for c.queued.Load() != int64(len(errs)+1) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if badErr == nil || errors.Is(badErr, dcr.ErrExists) {
		t.Errorf("Create with an oversized key = %v, want a failure", badErr)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("Create #%d sharing a batch with a failed write: %v", i, err)
		}
	}
	if st, _ := s.Check(); st.Live != len(errs) || len(st.Problems) != 0 {
		t.Errorf("Check = %+v", st)
	}
}

func TestSweepRemovesOnlyExpiredKeys(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now()
	s.now = func() time.Time { return now }
	for i := range 5 {
		if ok, err := s.Claim(ctx, fmt.Sprintf("short-%d", i), time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if ok, err := s.Claim(ctx, "long", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if removed, err := s.Sweep(ctx); removed != 0 || err != nil {
		t.Fatalf("Sweep before expiry = %d, %v", removed, err)
	}
	now = now.Add(2 * time.Minute)
	// Re-claimed after expiry: its new expiry is in the future, its old TTL entry is gone.
	if ok, err := s.Claim(ctx, "short-0", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if removed, err := s.Sweep(ctx); removed != 4 || err != nil {
		t.Fatalf("Sweep = %d, %v; want 4", removed, err)
	}
	st, err := s.Check()
	if err != nil || st.OnceKeys != 2 || len(st.Problems) != 0 {
		t.Fatalf("after Sweep: %+v, %v", st, err)
	}
	for key, want := range map[string]bool{"short-0": true, "short-1": false, "long": true} {
		if seen, _ := s.Seen(ctx, key); seen != want {
			t.Errorf("Seen(%s) = %v, want %v", key, seen, want)
		}
	}
}

// More expired keys than one sweep transaction takes: Sweep goes on chunk by chunk.
func TestSweepInChunks(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now()
	s.now = func() time.Time { return now }
	n := sweepChunk*2 + 7
	for i := range n {
		if _, err := s.Claim(ctx, fmt.Sprint(i), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Minute)
	if removed, err := s.Sweep(ctx); removed != n || err != nil {
		t.Fatalf("Sweep = %d, %v; want %d", removed, err, n)
	}
	if st, _ := s.Check(); st.OnceKeys != 0 || len(st.Problems) != 0 {
		t.Errorf("Check = %+v", st)
	}
}

func TestOneTimeKeysAreStoredHashed(t *testing.T) {
	s := newStore(t)
	if _, err := s.Claim(t.Context(), "secret-token-value-6f1c", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "secret-token-value") {
		t.Error("a one-time key is in the file in the clear")
	}
	info, err := os.Stat(s.Path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

// Check finds what a non-transactional store could leave behind.
func TestCheckFindsOrphans(t *testing.T) {
	s := newStore(t)
	if err := s.Create(t.Context(), storetest.NewRegistration(1)); err != nil {
		t.Fatal(err)
	}
	ghost := storetest.NewRegistration(1)
	ghost.ClientID = "client-ghost"
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketSoftware).Put(indexKey("software-1", ghost), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketOrg).Delete(indexKey("org-1", storetest.NewRegistration(1)))
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(st.Problems, "\n")
	for _, want := range []string{`orphan software index entry of "client-ghost"`, `live record "client-1" has no org index entry`} {
		if !strings.Contains(joined, want) {
			t.Errorf("Check did not report %q; problems:\n%s", want, joined)
		}
	}
}

func TestImportIsIdempotent(t *testing.T) {
	s := newStore(t)
	live := storetest.NewRegistration(1)
	live.Version = 3
	tomb := storetest.NewRegistration(2)
	tomb.Version = 2
	deleted := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	tomb.DeletedAt = &deleted
	recs := []*dcr.Registration{live, tomb}

	got, err := s.Import(recs)
	if err != nil || got[0] != Imported || got[1] != Imported {
		t.Fatalf("first Import = %v, %v", got, err)
	}
	got, err = s.Import(recs)
	if err != nil || got[0] != Unchanged || got[1] != Unchanged {
		t.Fatalf("second Import = %v, %v; want both unchanged", got, err)
	}
	// The gateway updated the record since; an import of the older copy keeps the newer.
	cur, _ := s.Get(t.Context(), "client-1")
	cur.Metadata["client_name"] = "updated after migration"
	if err := s.Update(t.Context(), cur); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.Import(recs); got[0] != KeptNewer {
		t.Errorf("Import over a newer record = %v, want KeptNewer", got[0])
	}
	newer := live.Clone()
	newer.Version = 9
	newer.SoftwareID = "software-moved"
	if got, _ = s.Import([]*dcr.Registration{newer}); got[0] != Replaced {
		t.Errorf("Import of a newer record = %v, want Replaced", got[0])
	}
	if ids, _ := s.ListBySoftware(t.Context(), "software-moved"); len(ids) != 1 {
		t.Errorf("the replaced record is not indexed under its new software_id: %v", ids)
	}
	if err := s.Create(t.Context(), storetest.NewRegistration(2)); !errors.Is(err, dcr.ErrExists) {
		t.Errorf("an imported tombstone does not reserve its client_id: %v", err)
	}
	st, err := s.Check()
	if err != nil || st.Live != 1 || st.Tombstones != 1 || len(st.Problems) != 0 || st.BySoftware["software-1"] != 0 {
		t.Errorf("Check = %+v, %v", st, err)
	}

	h := onceHash("jti")
	exp := time.Now().Add(time.Hour)
	if wrote, err := s.ImportOnce(h, exp); !wrote || err != nil {
		t.Fatalf("ImportOnce = %v, %v", wrote, err)
	}
	if wrote, _ := s.ImportOnce(h, exp); wrote {
		t.Error("a second ImportOnce of the same key wrote")
	}
	if ok, _ := s.Claim(t.Context(), "jti", time.Minute); ok {
		t.Error("an imported one-time key can be claimed again")
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		input    string
		path     string
		interval time.Duration
		wantErr  string
	}{
		{input: `bolt`},
		{input: "bolt {\npath /var/lib/dcr/registry.db\nsweep_interval 90s\n}", path: "/var/lib/dcr/registry.db", interval: 90 * time.Second},
		{input: `bolt extra`, wantErr: "wrong argument count"},
		{input: "bolt {\npath\n}", wantErr: "wrong argument count"},
		{input: "bolt {\npath a b\n}", wantErr: "wrong argument count"},
		{input: "bolt {\nsweep_interval soon\n}", wantErr: "sweep_interval"},
		{input: "bolt {\nsweep_interval -1s\n}", wantErr: "positive"},
		{input: "bolt {\nbogus 1\n}", wantErr: "unrecognized"},
	} {
		var s Store
		err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err = %v, want one containing %q", tc.input, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.input, err)
			continue
		}
		if s.Path != tc.path || time.Duration(s.SweepInterval) != tc.interval {
			t.Errorf("%q: path %q interval %v", tc.input, s.Path, time.Duration(s.SweepInterval))
		}
	}
}

func TestModuleInfo(t *testing.T) {
	mod, err := caddy.GetModule("dcr.storage.bolt")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mod.New().(dcr.Store); !ok {
		t.Errorf("the registered module is a %T, not a dcr.Store", mod.New())
	}
	var s Store
	if err := json.Unmarshal([]byte(`{"path":"/x.db","sweep_interval":"5m","check_caddy_storage":true}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Path != "/x.db" || time.Duration(s.SweepInterval) != 5*time.Minute || !s.CheckCaddyStorage {
		t.Errorf("decoded %+v", s)
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data")
	for _, tc := range []struct {
		root, path, want string
	}{
		{caddy.AppDataDir(), DefaultPath(), "caddy dcr store migrate --from caddy --to bolt"},
		{"/srv/caddy data", DefaultPath(), "caddy dcr store migrate --from caddy --to bolt --storage-root '/srv/caddy data'"},
		{caddy.AppDataDir(), "/var/lib/dcr.db", "caddy dcr store migrate --from caddy --to bolt --path /var/lib/dcr.db"},
	} {
		if got := MigrateCommand(&certmagic.FileStorage{Path: tc.root}, tc.path); got != tc.want {
			t.Errorf("MigrateCommand(%q, %q) = %q, want %q", tc.root, tc.path, got, tc.want)
		}
	}
}

// A history event does not wait for its commit: with the writer busy, AppendHistory returns;
// History then waits for it, and a Close commits what is still queued.
func TestHistoryAppendDoesNotWaitForItsCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(s)
	ev := dcr.HistoryEvent{Time: time.Now().UTC(), Event: dcr.EventRejected, Reason: "r1"}
	if err := s.AppendHistory(t.Context(), dcr.HistoryOfSoftware, "sw", ev, dcr.HistoryRetention{}); err != nil {
		t.Fatal(err)
	}
	// The append returned while the writer was held: it did not wait for a commit.
	if err := release(); err != nil {
		t.Fatal(err)
	}
	events, err := s.History(t.Context(), dcr.HistoryOfSoftware, "sw", time.Time{})
	if err != nil || len(events) != 1 || events[0].Reason != "r1" {
		t.Fatalf("History after the append: %+v %v", events, err)
	}

	// Queued at Close: committed before the file is closed.
	ev.Reason = "r2"
	if err := s.AppendHistory(t.Context(), dcr.HistoryOfSoftware, "sw", ev, dcr.HistoryRetention{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendHistory(t.Context(), dcr.HistoryOfSoftware, "sw", ev, dcr.HistoryRetention{}); !errors.Is(err, errClosed) {
		t.Fatalf("append after Close: %v, want errClosed", err)
	}
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events, err = s.History(t.Context(), dcr.HistoryOfSoftware, "sw", time.Time{})
	if err != nil || len(events) != 2 || events[1].Reason != "r2" {
		t.Fatalf("History after a reopen: %+v %v", events, err)
	}
}

// A write whose key is already used is refused by a read-only look-up, without waiting for
// the writer (a replay costs no commit); a free key still goes through the writer.
func TestUsedKeyIsRefusedWithoutTheWriter(t *testing.T) {
	s := newStore(t)
	used := dcr.OnceClaim{Key: "jti-1", TTL: time.Hour}
	if err := s.Create(t.Context(), storetest.NewRegistration(1), dcr.Commit{Once: []dcr.OnceClaim{used}}); err != nil {
		t.Fatal(err)
	}
	release := holdWriter(s)
	err := s.Create(t.Context(), storetest.NewRegistration(2), dcr.Commit{Once: []dcr.OnceClaim{used}})
	if rerr := release(); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, dcr.ErrOnceUsed) {
		t.Fatalf("create with a used key while the writer was busy: %v, want ErrOnceUsed", err)
	}
	if _, err := s.Get(t.Context(), "client-2"); !errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("the refused create stored its record: %v", err)
	}
}

// holdWriter keeps the store's writer busy in a transaction of its own until the returned
// function is called, which returns that transaction's outcome.
func holdWriter(s *Store) func() error {
	busy, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.db.commit.do(func(*bbolt.Tx) (error, error) {
			close(busy)
			<-release
			return nil, nil
		})
	}()
	<-busy
	return func() error {
		close(release)
		return <-held
	}
}
