package caddystorage

import (
	"context"
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
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
	"github.com/caddyserver/certmagic"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
	"github.com/dcrgate/dcrgate/internal/sweeper"
)

func newFileStore(t testing.TB) (*Store, string) {
	dir := t.TempDir()
	return New(&certmagic.FileStorage{Path: dir}, ""), dir
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dcr.Store {
		s, _ := newFileStore(t)
		return s
	})
}

func TestConformanceWithNestedPrefix(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dcr.Store {
		return New(&certmagic.FileStorage{Path: t.TempDir()}, "tenants/a/dcr")
	})
}

// Two Stores on one directory with their own in-process stripes behave like two Caddy
// processes on one data dir: only the storage lock keeps them consistent.
func TestTwoStoresOnOneDirectory(t *testing.T) {
	dir := t.TempDir()
	a := New(&certmagic.FileStorage{Path: dir}, "")
	b := New(&certmagic.FileStorage{Path: dir}, "")
	b.locks.stripes = newStripeSet() // as if in another process
	ctx := t.Context()

	rec := storetest.NewRegistration(1)
	if err := a.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, rec.ClientID)
	if err != nil {
		t.Fatalf("b does not see a's Create: %v", err)
	}
	got.Metadata["client_name"] = "updated by b"
	if err := b.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	stale := rec.Clone()
	if err := a.Update(ctx, stale); !errors.Is(err, dcr.ErrConflict) {
		t.Errorf("a's Update of the version b replaced = %v, want ErrConflict", err)
	}
	if ids, err := a.ListBySoftware(ctx, rec.SoftwareID); err != nil || len(ids) != 1 {
		t.Errorf("a.ListBySoftware = %v, %v", ids, err)
	}
	if ok, err := a.Claim(ctx, "jti", time.Minute); !ok || err != nil {
		t.Fatalf("a.Claim = %v, %v", ok, err)
	}
	if seen, err := b.Seen(ctx, "jti"); !seen || err != nil {
		t.Errorf("b.Seen of a's claim = %v, %v", seen, err)
	}
	if ok, err := b.Claim(ctx, "jti", time.Minute); ok || err != nil {
		t.Errorf("b.Claim of a's claim = %v, %v", ok, err)
	}

	// Concurrent Creates and Claims of one id across both stores: exactly one wins.
	const n = 20
	stores := []*Store{a, b}
	createErrs := make([]error, n)
	claimed := make([]bool, n)
	claimErrs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			s := stores[i%2]
			createErrs[i] = s.Create(ctx, storetest.NewRegistration(2))
			claimed[i], claimErrs[i] = s.Claim(ctx, "contended", time.Minute)
		})
	}
	close(start)
	wg.Wait()
	created, won := 0, 0
	for i := range n {
		switch {
		case createErrs[i] == nil:
			created++
		case !errors.Is(createErrs[i], dcr.ErrExists):
			t.Errorf("Create #%d: %v", i, createErrs[i])
		}
		if claimErrs[i] != nil {
			t.Errorf("Claim #%d: %v", i, claimErrs[i])
		}
		if claimed[i] {
			won++
		}
	}
	if created != 1 || won != 1 {
		t.Errorf("across two stores: %d Creates and %d Claims won, want 1 and 1", created, won)
	}
}

// Stores of one process share their stripes, so two Stores on one storage (a config reload,
// two handlers) serialise in memory rather than on the storage lock's 1s poll.
func TestStoresOfOneProcessShareStripes(t *testing.T) {
	dir := t.TempDir()
	a := New(&certmagic.FileStorage{Path: dir}, "")
	b := New(&certmagic.FileStorage{Path: dir}, "")
	if a.locks.stripes != b.locks.stripes {
		t.Fatal("two Stores of one process have separate stripes")
	}
	const n = 20
	won := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := []*Store{a, b}[i%2]
			ok, err := s.Claim(t.Context(), "shared", time.Minute)
			if err != nil {
				t.Error(err)
			}
			won[i] = ok
		})
	}
	wg.Wait()
	winners := 0
	for _, ok := range won {
		if ok {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d Claims won, want 1", winners)
	}
}

func TestSweepRemovesOnlyExpiredKeys(t *testing.T) {
	s, dir := newFileStore(t)
	ctx := t.Context()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }

	for _, k := range []string{"short-1", "short-2"} {
		if ok, err := s.Claim(ctx, k, time.Minute); !ok || err != nil {
			t.Fatalf("Claim %s = %v, %v", k, ok, err)
		}
	}
	if ok, err := s.Claim(ctx, "long", time.Hour); !ok || err != nil {
		t.Fatalf("Claim long = %v, %v", ok, err)
	}
	// Stray files in the directory (such as FileStorage's in-flight temporary files) are not
	// ours to remove.
	stray := filepath.Join(dir, "dcr", "once", "123456789")
	if err := os.WriteFile(stray, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}

	if removed, err := s.Sweep(ctx); removed != 0 || err != nil {
		t.Fatalf("Sweep before expiry = %d, %v; want 0, nil", removed, err)
	}
	now = now.Add(2 * time.Minute)
	removed, err := s.Sweep(ctx)
	if removed != 2 || err != nil {
		t.Fatalf("Sweep = %d, %v; want 2, nil", removed, err)
	}
	for k, wantFile := range map[string]bool{"short-1": false, "short-2": false, "long": true} {
		_, statErr := os.Stat(filepath.Join(dir, "dcr", "once", hashID(k)))
		if exists := statErr == nil; exists != wantFile {
			t.Errorf("key %s: file exists = %v, want %v", k, exists, wantFile)
		}
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("Sweep removed a file that is not a key: %v", err)
	}
	if ok, _ := s.Claim(ctx, "short-1", time.Minute); !ok {
		t.Error("Claim after sweep = false")
	}
	if ok, _ := s.Claim(ctx, "long", time.Minute); ok {
		t.Error("an unexpired key was swept")
	}
}

func TestSweepOfEmptyStore(t *testing.T) {
	s, _ := newFileStore(t)
	if removed, err := s.Sweep(t.Context()); removed != 0 || err != nil {
		t.Fatalf("Sweep = %d, %v", removed, err)
	}
}

func TestSweeperStopsWithContextAndCleanup(t *testing.T) {
	s, _ := newFileStore(t)
	now := time.Now()
	s.now = func() time.Time { return now }
	if ok, err := s.Claim(t.Context(), "k", time.Millisecond); !ok || err != nil {
		t.Fatal(ok, err)
	}
	now = now.Add(time.Second)

	ctx, cancel := context.WithCancel(t.Context())
	s.sweeper = sweeper.Start(ctx, 10*time.Millisecond, s.logger, s.Sweep)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if seen, _ := s.Seen(t.Context(), "k"); !seen {
			if _, err := os.Stat(filepath.Join(s.storage.(*certmagic.FileStorage).Path, s.onceKey(hashID("k")))); errors.Is(err, os.ErrNotExist) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not remove an expired key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-s.sweeper.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the sweeper did not stop when its context was cancelled")
	}
	if err := s.Cleanup(); err != nil {
		t.Fatal(err)
	}
}

// An index entry whose record never got written (a crash between the two writes of Create)
// or that points at a record of another software_id is filtered out of List.
func TestListSkipsDanglingIndexEntries(t *testing.T) {
	s, _ := newFileStore(t)
	ctx := t.Context()
	live := storetest.NewRegistration(1)
	if err := s.Create(ctx, live); err != nil {
		t.Fatal(err)
	}
	ghost := storetest.NewRegistration(2)
	ghost.SoftwareID, ghost.OrgID = live.SoftwareID, live.OrgID
	if err := s.writeIndexEntries(ctx, ghost, hashID(ghost.ClientID)); err != nil {
		t.Fatal(err)
	}
	// An entry for client-3 under software-1 while its record says software-3: what a crash
	// between the record write and the old entry's removal of an Update leaves.
	moved := storetest.NewRegistration(3)
	if err := s.Create(ctx, moved); err != nil {
		t.Fatal(err)
	}
	stale := moved.Clone()
	stale.SoftwareID, stale.OrgID = live.SoftwareID, live.OrgID
	if err := s.writeIndexEntries(ctx, stale, hashID(moved.ClientID)); err != nil {
		t.Fatal(err)
	}

	for name, list := range map[string]func(context.Context, string) ([]string, error){
		"ListBySoftware": func(ctx context.Context, _ string) ([]string, error) { return s.ListBySoftware(ctx, live.SoftwareID) },
		"ListByOrg":      func(ctx context.Context, _ string) ([]string, error) { return s.ListByOrg(ctx, live.OrgID) },
	} {
		ids, err := list(ctx, "")
		if err != nil || len(ids) != 1 || ids[0] != live.ClientID {
			t.Errorf("%s = %q, %v; want [%s]", name, ids, err, live.ClientID)
		}
	}
	// The dangling entry does not reserve the client_id.
	if err := s.Create(ctx, ghost); err != nil {
		t.Errorf("Create after a dangling index entry: %v", err)
	}
}

// Lists run while other registrations of the same software are being written: FileStorage's
// temporary files appear and vanish in the directory being listed.
func TestListDuringConcurrentWrites(t *testing.T) {
	s, _ := newFileStore(t)
	ctx := t.Context()
	const writers = 40
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			rec := storetest.NewRegistration(i)
			rec.SoftwareID = "busy"
			if err := s.Create(ctx, rec); err != nil {
				t.Errorf("Create: %v", err)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := s.ListBySoftware(ctx, "busy"); err != nil {
					t.Errorf("ListBySoftware during writes: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	ids, err := s.ListBySoftware(ctx, "busy")
	if err != nil || len(ids) != writers {
		t.Errorf("ListBySoftware = %d ids, %v; want %d", len(ids), err, writers)
	}
}

func TestLayoutHidesRawIDs(t *testing.T) {
	s, dir := newFileStore(t)
	ctx := t.Context()
	rec := storetest.NewRegistration(1)
	rec.SoftwareID, rec.OrgID = "../../escape", "ORG/With/Slashes"
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "secret-token-value", time.Minute); err != nil {
		t.Fatal(err)
	}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		paths = append(paths, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(paths, "\n")
	for _, raw := range []string{"escape", "ORG", "Slashes", "secret-token-value", rec.ClientID} {
		if strings.Contains(joined, raw) {
			t.Errorf("a raw id %q appears in the storage paths:\n%s", raw, joined)
		}
	}
	for _, want := range []string{
		"dcr/registrations/" + hashID(rec.ClientID) + ".json",
		"dcr/index/software/" + hashID(rec.SoftwareID) + "/" + hashID(rec.ClientID),
		"dcr/index/org/" + hashID(rec.OrgID) + "/" + hashID(rec.ClientID),
		"dcr/once/" + hashID("secret-token-value"),
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %s in the storage paths:\n%s", want, joined)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "dcr", "once", hashID("secret-token-value")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "secret") {
		t.Errorf("a one-time key's value holds the key: %s", data)
	}
}

func TestDeleteKeepsTombstone(t *testing.T) {
	s, dir := newFileStore(t)
	ctx := t.Context()
	rec := storetest.NewRegistration(1)
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, rec.ClientID, 1); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dcr", "registrations", hashID(rec.ClientID)+".json"))
	if err != nil {
		t.Fatalf("tombstone missing: %v", err)
	}
	var tomb dcr.Registration
	if err := json.Unmarshal(data, &tomb); err != nil {
		t.Fatal(err)
	}
	if !tomb.Deleted() || tomb.Version != 2 || tomb.ClientID != rec.ClientID {
		t.Errorf("tombstone = deleted %v, version %d, client_id %q", tomb.Deleted(), tomb.Version, tomb.ClientID)
	}
	for _, p := range []string{
		filepath.Join(dir, "dcr", "index", "software", hashID(rec.SoftwareID), hashID(rec.ClientID)),
		filepath.Join(dir, "dcr", "index", "org", hashID(rec.OrgID), hashID(rec.ClientID)),
	} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("index entry %s still there after Delete: %v", p, err)
		}
	}
}

// Storage errors other than "not found" surface as errors (the handler answers 503), never as
// ErrNotFound or success.
func TestStorageErrorsAreReturned(t *testing.T) {
	fail := &failingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	s := New(fail, "")
	ctx := t.Context()
	if err := s.Create(ctx, storetest.NewRegistration(1)); err != nil {
		t.Fatal(err)
	}
	fail.err = errors.New("disk on fire")
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, "client-1")
	checks["Create"] = s.Create(ctx, storetest.NewRegistration(2))
	checks["Update"] = s.Update(ctx, storetest.NewRegistration(1))
	checks["Delete"] = s.Delete(ctx, "client-1", 1)
	_, checks["ListBySoftware"] = s.ListBySoftware(ctx, "software-1")
	_, checks["Claim"] = s.Claim(ctx, "k", time.Minute)
	_, checks["Seen"] = s.Seen(ctx, "k")
	for op, err := range checks {
		if !errors.Is(err, fail.err) {
			t.Errorf("%s = %v, want the storage error", op, err)
		}
		if errors.Is(err, dcr.ErrNotFound) || errors.Is(err, dcr.ErrExists) || errors.Is(err, dcr.ErrConflict) {
			t.Errorf("%s turned a storage error into %v", op, err)
		}
	}
}

// failingStorage fails every Load and List with err once it is set; locks still work.
type failingStorage struct {
	certmagic.Storage
	err error
}

func (f *failingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.Storage.Load(ctx, key)
}

func (f *failingStorage) List(ctx context.Context, p string, recursive bool) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.Storage.List(ctx, p, recursive)
}

func TestRejectsCallerBugs(t *testing.T) {
	s, _ := newFileStore(t)
	ctx := t.Context()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if ok, err := s.Claim(ctx, "k", ttl); ok || err == nil {
			t.Errorf("Claim with ttl %v = %v, %v; want an error", ttl, ok, err)
		}
	}
	noID := storetest.NewRegistration(1)
	noID.ClientID = ""
	deleted := storetest.NewRegistration(2)
	now := time.Now()
	deleted.DeletedAt = &now
	for name, rec := range map[string]*dcr.Registration{"nil": nil, "no client_id": noID, "tombstone": deleted} {
		if err := s.Create(ctx, rec); err == nil || errors.Is(err, dcr.ErrExists) {
			t.Errorf("Create(%s) = %v, want a plain error", name, err)
		}
	}
	if err := s.Update(ctx, nil); err == nil {
		t.Error("Update(nil) = nil")
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, ok := range []string{"dcr", "a/b", "dcr-prod", "x.y"} {
		if err := validatePrefix(ok); err != nil {
			t.Errorf("validatePrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/dcr", "dcr/", "../dcr", "a/../b", "a//b", ".", "a/./b", `a\b`, ".."} {
		if err := validatePrefix(bad); err == nil {
			t.Errorf("validatePrefix(%q) = nil", bad)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New with an invalid prefix did not panic")
		}
	}()
	New(&certmagic.FileStorage{Path: t.TempDir()}, "../up")
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		input    string
		prefix   string
		interval time.Duration
		wantErr  string
	}{
		{input: `caddy`},
		{input: `caddy {
			prefix dcr-prod
			sweep_interval 90s
		}`, prefix: "dcr-prod", interval: 90 * time.Second},
		{input: "caddy {\nprefix tenants/a\n}", prefix: "tenants/a"},
		{input: `caddy extra`, wantErr: "wrong argument count"},
		{input: "caddy {\nprefix\n}", wantErr: "wrong argument count"},
		{input: "caddy {\nprefix a b\n}", wantErr: "wrong argument count"},
		{input: "caddy {\nprefix ../up\n}", wantErr: "segment"},
		{input: "caddy {\nsweep_interval soon\n}", wantErr: "sweep_interval"},
		{input: "caddy {\nsweep_interval 0s\n}", wantErr: "positive"},
		{input: "caddy {\nbogus 1\n}", wantErr: "unrecognized"},
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
		if s.Prefix != tc.prefix || time.Duration(s.SweepInterval) != tc.interval {
			t.Errorf("%q: prefix %q interval %v; want %q %v", tc.input, s.Prefix, time.Duration(s.SweepInterval), tc.prefix, tc.interval)
		}
	}
}

func TestModuleInfo(t *testing.T) {
	mod, err := caddy.GetModule("dcr.storage.caddy")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mod.New().(dcr.Store); !ok {
		t.Errorf("the registered module is a %T, not a dcr.Store", mod.New())
	}
	var s Store
	if err := json.Unmarshal([]byte(`{"prefix":"p","sweep_interval":"5m"}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Prefix != "p" || time.Duration(s.SweepInterval) != 5*time.Minute {
		t.Errorf("decoded %+v", s)
	}
}

func TestStripeOf(t *testing.T) {
	for h, want := range map[string]byte{"00": 0, "ff": 255, "a1": 0xa1, "0f": 15, hashID("x"): 0} {
		if h == hashID("x") {
			want = byte(mustHexByte(t, h[:2]))
		}
		if got := stripeOf(h); got != want {
			t.Errorf("stripeOf(%q) = %d, want %d", h, got, want)
		}
	}
}

func mustHexByte(t *testing.T, s string) int {
	var b int
	if _, err := fmt.Sscanf(s, "%02x", &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkCreate(b *testing.B) {
	s, _ := newFileStore(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		rec := storetest.NewRegistration(i)
		i++
		if err := s.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClaim(b *testing.B) {
	s, _ := newFileStore(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		i++
		if ok, err := s.Claim(ctx, fmt.Sprintf("jti-%d", i), time.Minute); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkClaimParallel(b *testing.B) {
	s, _ := newFileStore(b)
	ctx := b.Context()
	var mu sync.Mutex
	next := 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			next++
			key := fmt.Sprintf("jti-%d", next)
			mu.Unlock()
			if ok, err := s.Claim(ctx, key, time.Minute); !ok || err != nil {
				b.Error(ok, err)
				return
			}
		}
	})
}

// Provision inside a running Caddy config: the store uses the config's storage, and its
// sweeper runs until the config stops.
func TestProvisionInCaddyConfig(t *testing.T) {
	dir := t.TempDir()
	// persist false: a test must not autosave its config into the user's Caddy config dir.
	cfg := fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},"storage":{"module":"file_system","root":%q}}`, dir)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = caddy.Stop()
		}
	})
	mod, err := caddy.ActiveContext().LoadModuleByID("dcr.storage.caddy", json.RawMessage(`{"prefix":"provisioned","sweep_interval":"20ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	s := mod.(*Store)
	if ok, err := s.Claim(t.Context(), "k", time.Millisecond); !ok || err != nil {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	keyFile := filepath.Join(dir, "provisioned", "once", hashID("k"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provisioned sweeper did not remove %s", keyFile)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case <-s.sweeper.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the sweeper outlived its config")
	}
}
