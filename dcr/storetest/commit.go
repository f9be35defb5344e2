package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// The writes with a dcr.Commit: a registration and its one-time keys and lifecycle event are
// written together or not at all.

func onceClaim(key string) dcr.OnceClaim {
	return dcr.OnceClaim{Key: key, TTL: time.Hour, Reject: dcr.BadMetadata("the request %s was already used", key)}
}

func lifecycle(event string, at time.Time) *dcr.HistoryEvent {
	return &dcr.HistoryEvent{Time: at, Event: event, Operation: "register", SoftwareID: "software-1", Status: 201}
}

// assertUsed checks that err refuses the write for the claim of key, with its own rejection.
func assertUsed(t *testing.T, what string, err error, claim dcr.OnceClaim) {
	t.Helper()
	var used *dcr.OnceUsedError
	if !errors.As(err, &used) || !errors.Is(err, dcr.ErrOnceUsed) {
		t.Fatalf("%s: %v, want a *dcr.OnceUsedError", what, err)
	}
	if used.Claim.Key != claim.Key || used.Rejection() != claim.Reject {
		t.Fatalf("%s: refused for %q (%v), want %q with its rejection", what, used.Claim.Key, used.Rejection(), claim.Key)
	}
}

func clientHistory(t *testing.T, s dcr.Store, clientID string) []dcr.HistoryEvent {
	t.Helper()
	events, err := s.History(t.Context(), dcr.HistoryOfClient, clientID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func testCreateWithCommit(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	rec := NewRegistration(1)
	c := dcr.Commit{Once: []dcr.OnceClaim{onceClaim("jti-1"), onceClaim("token-1")}, Event: lifecycle(dcr.EventRegistered, at)}
	if err := s.Create(ctx, rec, c); err != nil {
		t.Fatal(err)
	}
	if rec.Version != 1 {
		t.Fatalf("version %d, want 1", rec.Version)
	}
	mustGet(t, s, "client-1")
	for _, k := range []string{"jti-1", "token-1"} {
		if !mustSeen(t, s, k) {
			t.Errorf("%s not recorded with its registration", k)
		}
	}
	events := clientHistory(t, s, "client-1")
	if len(events) != 1 || events[0].Event != dcr.EventRegistered || events[0].ClientID != "client-1" || !events[0].Time.Equal(at) {
		t.Fatalf("history %+v, want the registered event of client-1", events)
	}
	if mustClaim(t, s, "jti-1", time.Hour) {
		t.Fatal("a key claimed with a registration was claimed again")
	}
}

func testCreateWithUsedKeyWritesNothing(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	if !mustClaim(t, s, "jti-used", time.Hour) {
		t.Fatal("first claim lost")
	}
	used := onceClaim("jti-used")
	c := dcr.Commit{Once: []dcr.OnceClaim{onceClaim("jti-fresh"), used}, Event: lifecycle(dcr.EventRegistered, time.Now().UTC())}
	assertUsed(t, "create with a used key", s.Create(ctx, NewRegistration(1), c), used)
	if _, err := s.Get(ctx, "client-1"); !errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("Get after a refused create: %v, want ErrNotFound", err)
	}
	if mustSeen(t, s, "jti-fresh") {
		t.Error("the other key of a refused create was recorded")
	}
	assertIDs(t, "software index after a refused create", listBySoftware(t, s, "software-1"))
	if events := clientHistory(t, s, "client-1"); len(events) != 0 {
		t.Errorf("history %+v after a refused create", events)
	}
	// The client_id is still free, and the key the refused call named is too.
	mustCreate(t, s, NewRegistration(1))
	if !mustClaim(t, s, "jti-fresh", time.Hour) {
		t.Error("the unused key of a refused create cannot be claimed")
	}

	// A key named twice in one commit is used by its first mention.
	twice := onceClaim("jti-twice")
	assertUsed(t, "a key named twice", s.Create(ctx, NewRegistration(2), dcr.Commit{Once: []dcr.OnceClaim{twice, twice}}), twice)
	if _, err := s.Get(ctx, "client-2"); !errors.Is(err, dcr.ErrNotFound) || mustSeen(t, s, "jti-twice") {
		t.Fatalf("a commit naming a key twice wrote something (get: %v)", err)
	}
}

func testCreateExistingKeepsKeysFree(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	mustCreate(t, s, NewRegistration(1))
	err := s.Create(ctx, NewRegistration(1), dcr.Commit{Once: []dcr.OnceClaim{onceClaim("jti-1")}})
	if !errors.Is(err, dcr.ErrExists) {
		t.Fatalf("create of a taken client_id: %v, want ErrExists", err)
	}
	if mustSeen(t, s, "jti-1") {
		t.Error("a create refused with ErrExists recorded its key")
	}
}

func testUpdateAndDeleteWithCommit(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	rec := NewRegistration(1)
	mustCreate(t, s, rec)
	used := onceClaim("jti-used")
	if !mustClaim(t, s, used.Key, time.Hour) {
		t.Fatal("first claim lost")
	}
	upd := rec.Clone()
	upd.Metadata["client_name"] = "renamed"
	assertUsed(t, "update with a used key", s.Update(ctx, upd.Clone(), dcr.Commit{Once: []dcr.OnceClaim{used}}), used)
	if got := mustGet(t, s, "client-1"); got.Version != 1 || got.Metadata["client_name"] != "Client 1" {
		t.Fatalf("a refused update changed the record: %+v", got)
	}
	// A stale version writes no key either, so the caller's retry can carry them again.
	stale := upd.Clone()
	stale.Version = 7
	if err := s.Update(ctx, stale, dcr.Commit{Once: []dcr.OnceClaim{onceClaim("jti-u")}}); !errors.Is(err, dcr.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if mustSeen(t, s, "jti-u") {
		t.Fatal("an update refused for a conflict recorded its key")
	}
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := s.Update(ctx, upd, dcr.Commit{Once: []dcr.OnceClaim{onceClaim("jti-u")}, Event: lifecycle(dcr.EventUpdated, at)}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "client-1"); got.Version != 2 || got.Metadata["client_name"] != "renamed" || !mustSeen(t, s, "jti-u") {
		t.Fatalf("update with a commit: record %+v, key recorded %v", got, mustSeen(t, s, "jti-u"))
	}

	assertUsed(t, "delete with a used key", s.Delete(ctx, "client-1", 2, dcr.Commit{Once: []dcr.OnceClaim{used}}), used)
	mustGet(t, s, "client-1")
	if err := s.Delete(ctx, "client-1", 2, dcr.Commit{Once: []dcr.OnceClaim{onceClaim("jti-d")}, Event: lifecycle(dcr.EventDeleted, at.Add(time.Second))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "client-1"); !errors.Is(err, dcr.ErrNotFound) || !mustSeen(t, s, "jti-d") {
		t.Fatalf("delete with a commit: get %v, key recorded %v", err, mustSeen(t, s, "jti-d"))
	}
	var got []string
	for _, ev := range clientHistory(t, s, "client-1") {
		got = append(got, ev.Event)
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{dcr.EventUpdated, dcr.EventDeleted}) {
		t.Fatalf("history %v, want the update and the delete", got)
	}
}

// Of concurrent creates that share a one-time key (the same signed request posted many times
// at once), exactly one is stored, and the others store nothing.
func testConcurrentCreateSameKey(t *testing.T, s dcr.Store) {
	const n = 16
	errs := make([]error, n)
	claim := onceClaim("jti-contended")
	parallel(n, func(i int) {
		rec := NewRegistration(100 + i)
		rec.SoftwareID = "software-contended"
		errs[i] = s.Create(t.Context(), rec, dcr.Commit{Once: []dcr.OnceClaim{claim}})
	})
	won := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if won >= 0 {
				t.Fatalf("creates %d and %d both stored with one key", won, i)
			}
			won = i
		case errors.Is(err, dcr.ErrOnceUsed):
		default:
			t.Fatalf("create %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no create won")
	}
	assertIDs(t, "registrations of the contended key", listBySoftware(t, s, "software-contended"), fmt.Sprintf("client-%d", 100+won))
}

// A registration and its keys are visible together: a reader that sees the record sees the
// key used, and one that sees the key free finds no record.
func testRecordAndKeysVisibleTogether(t *testing.T, s dcr.Store) {
	const n = 8
	done := make(chan struct{})
	var torn []string
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			for i := range n {
				id := fmt.Sprintf("client-%d", 200+i)
				key := fmt.Sprintf("jti-vis-%d", i)
				_, err := s.Get(t.Context(), id)
				if errors.Is(err, dcr.ErrNotFound) {
					continue
				}
				if err != nil {
					readErr <- err
					return
				}
				// The record is there: its key must be too (it was written with it).
				seen, err := s.Seen(t.Context(), key)
				if err != nil {
					readErr <- err
					return
				}
				if !seen {
					torn = append(torn, id)
				}
			}
		}
	}()
	parallel(n, func(i int) {
		rec := NewRegistration(200 + i)
		if err := s.Create(t.Context(), rec, dcr.Commit{Once: []dcr.OnceClaim{onceClaim(fmt.Sprintf("jti-vis-%d", i))}}); err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	})
	close(done)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	if len(torn) > 0 {
		t.Fatalf("records visible without their keys: %v", torn)
	}
	for i := range n {
		mustGet(t, s, fmt.Sprintf("client-%d", 200+i))
		if !mustSeen(t, s, fmt.Sprintf("jti-vis-%d", i)) {
			t.Errorf("key %d missing after its create", i)
		}
	}
}
