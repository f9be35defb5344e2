// Package storetest is the conformance suite of dcr.Store. Every store (dcr.storage.*) runs it
// from its own tests, so that the semantics the handler and registrars rely on are pinned in
// one place instead of being re-tested, slightly differently, by each store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) dcr.Store { return newEmptyStore(t) })
//	}
//
// The suite uses only the exported dcr API.
package storetest

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// Run runs every conformance subtest. newStore must return a new, empty store on each call
// (subtests reuse client_ids and keys); register any teardown with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) dcr.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s dcr.Store)
	}{
		{"CreateThenGet", testCreateThenGet},
		{"CreateTwice", testCreateTwice},
		{"GetUnknown", testGetUnknown},
		{"ReturnedRecordsAreCopies", testReturnedRecordsAreCopies},
		{"Update", testUpdate},
		{"UpdateStaleVersion", testUpdateStaleVersion},
		{"UpdateUnknown", testUpdateUnknown},
		{"Delete", testDelete},
		{"DeleteStaleVersion", testDeleteStaleVersion},
		{"DeleteUnknown", testDeleteUnknown},
		{"Lists", testLists},
		{"ListsWithUnsafeIDs", testListsWithUnsafeIDs},
		{"ListFilters", testListFilters},
		{"ListPages", testListPages},
		{"ListRefusesBadQueries", testListRefusesBadQueries},
		{"ListAfterMove", testListAfterMove},
		{"HistoryKeepsEventsInOrder", testHistoryKeepsEventsInOrder},
		{"HistoryKeepsTheNewest", testHistoryKeepsTheNewest},
		{"HistoryDropsOldEvents", testHistoryDropsOldEvents},
		{"HistoryWithUnsafeIDs", testHistoryWithUnsafeIDs},
		{"DenyListLifecycle", testDenyListLifecycle},
		{"DenyListKindsAndUnsafeIDs", testDenyListKindsAndUnsafeIDs},
		{"DenyListIsBounded", testDenyListIsBounded},
		{"ConcurrentDenials", testConcurrentDenials},
		{"Claim", testClaim},
		{"ClaimExpires", testClaimExpires},
		{"ClaimKeysAreDistinct", testClaimKeysAreDistinct},
		{"Release", testRelease},
		{"ConcurrentCreateSameID", testConcurrentCreateSameID},
		{"ConcurrentCreateSameSoftware", testConcurrentCreateSameSoftware},
		{"ConcurrentClaimSameKey", testConcurrentClaimSameKey},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"CreateWithCommit", testCreateWithCommit},
		{"CreateWithUsedKeyWritesNothing", testCreateWithUsedKeyWritesNothing},
		{"CreateExistingKeepsKeysFree", testCreateExistingKeepsKeysFree},
		{"UpdateAndDeleteWithCommit", testUpdateAndDeleteWithCommit},
		{"ConcurrentCreateSameKey", testConcurrentCreateSameKey},
		{"RecordAndKeysVisibleTogether", testRecordAndKeysVisibleTogether},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// NewRegistration returns a complete registration whose ids are derived from i: client_id
// "client-<i>", software_id "software-<i>", org_id "org-<i>". Every map value is a JSON-native
// type (string, float64, bool, []any, map[string]any) and every time is UTC without a
// monotonic reading, so that a record survives a JSON round trip deep-equal.
func NewRegistration(i int) *dcr.Registration {
	issued := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return &dcr.Registration{
		ClientID:   fmt.Sprintf("client-%d", i),
		SoftwareID: fmt.Sprintf("software-%d", i),
		OrgID:      fmt.Sprintf("org-%d", i),
		Metadata: map[string]any{
			"client_name":                fmt.Sprintf("Client %d", i),
			"redirect_uris":              []any{fmt.Sprintf("https://tpp%d.example/cb", i)},
			"token_endpoint_auth_method": "private_key_jwt",
			"grant_types":                []any{"authorization_code", "refresh_token"},
			"require_signed_request":     true,
			"default_max_age":            float64(300 + i),
			"jwks":                       map[string]any{"keys": []any{map[string]any{"kid": fmt.Sprintf("k%d", i)}}},
		},
		SoftwareStatement: fmt.Sprintf("eyJhbGciOiJQUzI1NiJ9.eyJzb2Z0d2FyZV9pZCI6IiVkIn0.c2ln%d", i),
		SSAClaims: map[string]any{
			"software_id":        fmt.Sprintf("software-%d", i),
			"org_id":             fmt.Sprintf("org-%d", i),
			"software_roles":     []any{"AISP", "PISP"},
			"software_client_id": fmt.Sprintf("sc-%d", i),
		},
		Directory:             "test-directory",
		RegistrationTokenHash: fmt.Sprintf("%064x", i+1),
		ClientSecretHash:      fmt.Sprintf("%064x", i+1000),
		CertSubject:           fmt.Sprintf("CN=client-%d,O=Org %d", i, i),
		CertThumbprint:        fmt.Sprintf("thumb-%d", i),
		SigningKey: &dcr.RegisteredKey{KeyID: fmt.Sprintf("k%d", i), Thumbprint: fmt.Sprintf("tp-%d", i),
			RevokedKeySets: []dcr.RevokedKeySet{{Claim: dcr.ClaimSoftwareJWKSRevoked, URL: fmt.Sprintf("https://keys.example/%d.revoked.json", i)}}},
		Backend:   map[string]any{"backend_id": fmt.Sprintf("b-%d", i)},
		IssuedAt:  issued,
		UpdatedAt: issued,
	}
}

func testCreateThenGet(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	rec := NewRegistration(1)
	want := rec.Clone()
	mustCreate(t, s, rec)
	if rec.Version != 1 {
		t.Errorf("after Create, rec.Version = %d, want 1", rec.Version)
	}
	got, err := s.Get(ctx, rec.ClientID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want.Version = 1
	assertSameRecord(t, got, want)
	if got.Deleted() {
		t.Error("a created record reads as deleted")
	}
}

func testCreateTwice(t *testing.T, s dcr.Store) {
	mustCreate(t, s, NewRegistration(1))
	second := NewRegistration(1)
	second.Metadata["client_name"] = "impostor"
	if err := s.Create(t.Context(), second); !errors.Is(err, dcr.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	got := mustGet(t, s, second.ClientID)
	if got.Metadata["client_name"] != "Client 1" {
		t.Errorf("second Create overwrote the record: client_name = %v", got.Metadata["client_name"])
	}
}

func testGetUnknown(t *testing.T, s dcr.Store) {
	mustCreate(t, s, NewRegistration(1))
	// Client ids reach Get from the request path, so odd ones must read as "not found",
	// never as a storage error or someone else's record.
	for _, id := range []string{"client-2", "CLIENT-1", "client-1 ", "", "../client-1", "a/b", "..", "%2e%2e", "ünïcödé", strings.Repeat("x", 1000)} {
		if _, err := s.Get(t.Context(), id); !errors.Is(err, dcr.ErrNotFound) {
			t.Errorf("Get(%.20q) = %v, want ErrNotFound", id, err)
		}
	}
}

// Stores hand out copies: a caller mutating what it passed in or got back must not change
// the stored record (the pipeline edits Metadata in place before calling Update).
func testReturnedRecordsAreCopies(t *testing.T, s dcr.Store) {
	rec := NewRegistration(1)
	mustCreate(t, s, rec)
	rec.Metadata["client_name"] = "mutated after create"
	got := mustGet(t, s, rec.ClientID)
	got.Metadata["client_name"] = "mutated after get"
	again := mustGet(t, s, rec.ClientID)
	if again.Metadata["client_name"] != "Client 1" {
		t.Errorf("stored record changed through a shared map: client_name = %v", again.Metadata["client_name"])
	}
}

func testUpdate(t *testing.T, s dcr.Store) {
	mustCreate(t, s, NewRegistration(1))
	rec := mustGet(t, s, "client-1")
	rec.Metadata["client_name"] = "Renamed"
	rec.Metadata["redirect_uris"] = []any{"https://new.example/cb"}
	rec.SoftwareStatement = "new.ssa.value"
	rec.UpdatedAt = rec.UpdatedAt.Add(time.Hour)
	want := rec.Clone()
	if err := s.Update(t.Context(), rec); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if rec.Version != 2 {
		t.Errorf("after Update, rec.Version = %d, want 2", rec.Version)
	}
	want.Version = 2
	assertSameRecord(t, mustGet(t, s, "client-1"), want)

	// A second update from the new version works too.
	rec.Metadata["client_name"] = "Renamed again"
	if err := s.Update(t.Context(), rec); err != nil {
		t.Fatalf("second Update: %v", err)
	}
	if got := mustGet(t, s, "client-1"); got.Version != 3 || got.Metadata["client_name"] != "Renamed again" {
		t.Errorf("after second Update: version %d, client_name %v; want 3, Renamed again", got.Version, got.Metadata["client_name"])
	}
}

func testUpdateStaleVersion(t *testing.T, s dcr.Store) {
	mustCreate(t, s, NewRegistration(1))
	first := mustGet(t, s, "client-1")
	second := mustGet(t, s, "client-1")
	first.Metadata["client_name"] = "first writer"
	if err := s.Update(t.Context(), first); err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := mustGet(t, s, "client-1")

	for _, version := range []int64{1, 0, 3, 42} {
		stale := second.Clone()
		stale.Version = version
		stale.Metadata["client_name"] = "lost writer"
		if err := s.Update(t.Context(), stale); !errors.Is(err, dcr.ErrConflict) {
			t.Errorf("Update with version %d (stored 2) = %v, want ErrConflict", version, err)
		}
		if stale.Version != version {
			t.Errorf("a failed Update changed rec.Version from %d to %d", version, stale.Version)
		}
	}
	assertSameRecord(t, mustGet(t, s, "client-1"), want)
}

func testUpdateUnknown(t *testing.T, s dcr.Store) {
	rec := NewRegistration(1)
	rec.Version = 1
	if err := s.Update(t.Context(), rec); !errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("Update of an unknown record = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(t.Context(), rec.ClientID); !errors.Is(err, dcr.ErrNotFound) {
		t.Errorf("Update of an unknown record created it: Get = %v", err)
	}
}

func testDelete(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	mustCreate(t, s, NewRegistration(1))
	mustCreate(t, s, NewRegistration(2))
	rec := mustGet(t, s, "client-1")
	if err := s.Delete(ctx, rec.ClientID, rec.Version); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, rec.ClientID); !errors.Is(err, dcr.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	// The tombstone keeps the client_id from ever being reused.
	if err := s.Create(ctx, NewRegistration(1)); !errors.Is(err, dcr.ErrExists) {
		t.Errorf("Create of a deleted client_id = %v, want ErrExists", err)
	}
	for _, version := range []int64{rec.Version, rec.Version + 1} {
		upd := rec.Clone()
		upd.Version = version
		if err := s.Update(ctx, upd); !errors.Is(err, dcr.ErrNotFound) {
			t.Errorf("Update (version %d) after Delete = %v, want ErrNotFound", version, err)
		}
		if err := s.Delete(ctx, rec.ClientID, version); !errors.Is(err, dcr.ErrNotFound) {
			t.Errorf("Delete (version %d) after Delete = %v, want ErrNotFound", version, err)
		}
	}
	assertIDs(t, "ListBySoftware(software-1)", listBySoftware(t, s, "software-1"))
	assertIDs(t, "ListByOrg(org-1)", listByOrg(t, s, "org-1"))
	// The other record is untouched.
	mustGet(t, s, "client-2")
	assertIDs(t, "ListBySoftware(software-2)", listBySoftware(t, s, "software-2"), "client-2")
}

func testDeleteStaleVersion(t *testing.T, s dcr.Store) {
	mustCreate(t, s, NewRegistration(1))
	rec := mustGet(t, s, "client-1")
	rec.Metadata["client_name"] = "v2"
	if err := s.Update(t.Context(), rec); err != nil {
		t.Fatalf("Update: %v", err)
	}
	for _, version := range []int64{1, 3} {
		if err := s.Delete(t.Context(), "client-1", version); !errors.Is(err, dcr.ErrConflict) {
			t.Errorf("Delete with version %d (stored 2) = %v, want ErrConflict", version, err)
		}
	}
	if got := mustGet(t, s, "client-1"); got.Version != 2 || got.Metadata["client_name"] != "v2" {
		t.Errorf("after a refused Delete: version %d, client_name %v", got.Version, got.Metadata["client_name"])
	}
	assertIDs(t, "ListBySoftware(software-1)", listBySoftware(t, s, "software-1"), "client-1")
}

func testDeleteUnknown(t *testing.T, s dcr.Store) {
	if err := s.Delete(t.Context(), "client-404", 1); !errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("Delete of an unknown record = %v, want ErrNotFound", err)
	}
}

func testLists(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	// software-A: 0 1 2, software-B: 3 4, software-C: 5; org-X: 0 3, org-Y: 1 2 4 5.
	layout := []struct{ software, org string }{
		{"software-A", "org-X"}, {"software-A", "org-Y"}, {"software-A", "org-Y"},
		{"software-B", "org-X"}, {"software-B", "org-Y"}, {"software-C", "org-Y"},
	}
	for i, l := range layout {
		rec := NewRegistration(i)
		rec.SoftwareID, rec.OrgID = l.software, l.org
		mustCreate(t, s, rec)
	}
	assertIDs(t, "software-A", listBySoftware(t, s, "software-A"), "client-0", "client-1", "client-2")
	assertIDs(t, "software-B", listBySoftware(t, s, "software-B"), "client-3", "client-4")
	assertIDs(t, "software-C", listBySoftware(t, s, "software-C"), "client-5")
	assertIDs(t, "software-unknown", listBySoftware(t, s, "software-unknown"))
	assertIDs(t, "org-X", listByOrg(t, s, "org-X"), "client-0", "client-3")
	assertIDs(t, "org-Y", listByOrg(t, s, "org-Y"), "client-1", "client-2", "client-4", "client-5")
	assertIDs(t, "org-unknown", listByOrg(t, s, "org-unknown"))
	// A software_id is not an org_id: the two lists are separate namespaces.
	assertIDs(t, "ListByOrg(software-A)", listByOrg(t, s, "software-A"))

	// Updates that keep the ids keep the lists.
	for _, id := range []string{"client-1", "client-3"} {
		rec := mustGet(t, s, id)
		rec.Metadata["client_name"] = "renamed"
		if err := s.Update(ctx, rec); err != nil {
			t.Fatalf("Update %s: %v", id, err)
		}
	}
	assertIDs(t, "software-A after updates", listBySoftware(t, s, "software-A"), "client-0", "client-1", "client-2")
	assertIDs(t, "org-X after updates", listByOrg(t, s, "org-X"), "client-0", "client-3")

	// An update that moves a record to another software_id and org_id moves it in the lists.
	rec := mustGet(t, s, "client-2")
	rec.SoftwareID, rec.OrgID = "software-B", "org-X"
	if err := s.Update(ctx, rec); err != nil {
		t.Fatalf("Update client-2: %v", err)
	}
	assertIDs(t, "software-A after move", listBySoftware(t, s, "software-A"), "client-0", "client-1")
	assertIDs(t, "software-B after move", listBySoftware(t, s, "software-B"), "client-2", "client-3", "client-4")
	assertIDs(t, "org-X after move", listByOrg(t, s, "org-X"), "client-0", "client-2", "client-3")
	assertIDs(t, "org-Y after move", listByOrg(t, s, "org-Y"), "client-1", "client-4", "client-5")

	// Deletes remove from the lists.
	for _, id := range []string{"client-0", "client-5"} {
		rec := mustGet(t, s, id)
		if err := s.Delete(ctx, id, rec.Version); err != nil {
			t.Fatalf("Delete %s: %v", id, err)
		}
	}
	assertIDs(t, "software-A after deletes", listBySoftware(t, s, "software-A"), "client-1")
	assertIDs(t, "software-C after deletes", listBySoftware(t, s, "software-C"))
	assertIDs(t, "org-X after deletes", listByOrg(t, s, "org-X"), "client-2", "client-3")
	assertIDs(t, "org-Y after deletes", listByOrg(t, s, "org-Y"), "client-1", "client-4")
}

// software_id and org_id come from SSAs, i.e. from outside: a store must neither confuse ids
// that differ only in case or escaping nor let one escape its namespace.
func testListsWithUnsafeIDs(t *testing.T, s dcr.Store) {
	ids := []string{"Acme", "acme", "../acme", "acme/..", "a/b", "a%2Fb", "..", ".", "ACME ", "ünï", "0015800001041RHAAY"}
	for i, id := range ids {
		rec := NewRegistration(i)
		rec.SoftwareID, rec.OrgID = id, id
		mustCreate(t, s, rec)
	}
	for i, id := range ids {
		want := fmt.Sprintf("client-%d", i)
		assertIDs(t, fmt.Sprintf("ListBySoftware(%q)", id), listBySoftware(t, s, id), want)
		assertIDs(t, fmt.Sprintf("ListByOrg(%q)", id), listByOrg(t, s, id), want)
	}
}

func testClaim(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	if seen := mustSeen(t, s, "jti-1"); seen {
		t.Error("Seen of an unclaimed key = true")
	}
	if ok := mustClaim(t, s, "jti-1", time.Minute); !ok {
		t.Fatal("first Claim = false, want true")
	}
	if ok := mustClaim(t, s, "jti-1", time.Minute); ok {
		t.Error("second Claim = true, want false")
	}
	if seen := mustSeen(t, s, "jti-1"); !seen {
		t.Error("Seen of a claimed key = false")
	}
	// Seen does not record.
	mustSeen(t, s, "jti-2")
	if ok := mustClaim(t, s, "jti-2", time.Minute); !ok {
		t.Error("Claim after Seen = false, want true")
	}
	if _, err := s.Seen(ctx, ""); err != nil {
		t.Errorf("Seen of the empty key: %v", err)
	}
}

func testClaimExpires(t *testing.T, s dcr.Store) {
	const ttl = time.Second
	if ok := mustClaim(t, s, "short", ttl); !ok {
		t.Fatal("first Claim = false, want true")
	}
	// Stores may keep coarse expiry times, so wait for the key to lapse instead of asserting
	// when exactly it does; the deadline only bounds a store that never expires keys.
	time.Sleep(ttl)
	deadline := time.Now().Add(10 * ttl)
	for mustSeen(t, s, "short") {
		if time.Now().After(deadline) {
			t.Fatalf("key claimed for %v still seen after %v", ttl, 11*ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ok := mustClaim(t, s, "short", time.Minute); !ok {
		t.Fatal("Claim of an expired key = false, want true")
	}
	if ok := mustClaim(t, s, "short", time.Minute); ok {
		t.Error("Claim right after re-claiming an expired key = true, want false")
	}
}

func testClaimKeysAreDistinct(t *testing.T, s dcr.Store) {
	keys := []string{"k", "K", "k ", "../k", "k/..", "a/b", "a%2Fb", "", "ünï", strings.Repeat("k", 2000), strings.Repeat("k", 2001)}
	for _, k := range keys {
		if ok := mustClaim(t, s, k, time.Minute); !ok {
			t.Errorf("Claim(%.20q) = false: it collided with another key", k)
		}
	}
	for _, k := range keys {
		if ok := mustClaim(t, s, k, time.Minute); ok {
			t.Errorf("second Claim(%.20q) = true", k)
		}
	}
}

func testRelease(t *testing.T, s dcr.Store) {
	ctx := t.Context()
	if err := s.Release(ctx, "never-claimed"); err != nil {
		t.Errorf("Release of an unclaimed key: %v", err)
	}
	mustClaim(t, s, "token-1", time.Minute)
	mustClaim(t, s, "token-2", time.Minute)
	if err := s.Release(ctx, "token-1"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if mustSeen(t, s, "token-1") {
		t.Error("Seen after Release = true")
	}
	if !mustSeen(t, s, "token-2") {
		t.Error("Release forgot another key")
	}
	if ok := mustClaim(t, s, "token-1", time.Minute); !ok {
		t.Error("Claim after Release = false, want true")
	}
}

const concurrency = 50

func testConcurrentCreateSameID(t *testing.T, s dcr.Store) {
	errs := make([]error, concurrency)
	parallel(concurrency, func(i int) {
		rec := NewRegistration(7)
		rec.Metadata["client_name"] = fmt.Sprintf("writer %d", i)
		errs[i] = s.Create(t.Context(), rec)
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, dcr.ErrExists):
			t.Errorf("Create #%d = %v, want nil or ErrExists", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d concurrent Creates of one client_id succeeded, want exactly 1", winners)
	}
	if got := mustGet(t, s, "client-7"); got.Version != 1 {
		t.Errorf("Version = %d, want 1", got.Version)
	}
	assertIDs(t, "ListBySoftware", listBySoftware(t, s, "software-7"), "client-7")
}

// Many registrations of one software at once: an index kept as one read-modify-write value
// loses entries here.
func testConcurrentCreateSameSoftware(t *testing.T, s dcr.Store) {
	want := make([]string, concurrency)
	errs := make([]error, concurrency)
	parallel(concurrency, func(i int) {
		rec := NewRegistration(100 + i)
		rec.SoftwareID, rec.OrgID = "shared-software", "shared-org"
		want[i] = rec.ClientID
		errs[i] = s.Create(t.Context(), rec)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Create #%d: %v", i, err)
		}
	}
	assertIDs(t, "ListBySoftware", listBySoftware(t, s, "shared-software"), want...)
	assertIDs(t, "ListByOrg", listByOrg(t, s, "shared-org"), want...)
}

func testConcurrentClaimSameKey(t *testing.T, s dcr.Store) {
	won := make([]bool, concurrency)
	errs := make([]error, concurrency)
	parallel(concurrency, func(i int) {
		won[i], errs[i] = s.Claim(t.Context(), "contended-jti", time.Minute)
	})
	winners := 0
	for i := range won {
		if errs[i] != nil {
			t.Errorf("Claim #%d: %v", i, errs[i])
		}
		if won[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d concurrent Claims of one key won, want exactly 1", winners)
	}
}

// Read-modify-write loops on one record: optimistic concurrency must serialise them so that
// no increment is lost and each successful Update gets its own, higher version.
func testConcurrentUpdates(t *testing.T, s dcr.Store) {
	const (
		workers          = 20
		updatesPerWorker = 5
		maxAttempts      = 10000
	)
	mustCreate(t, s, NewRegistration(1))

	var (
		mu       sync.Mutex
		versions []int64 // the version each successful Update produced
		failures []error
	)
	parallel(workers, func(worker int) {
		var last int64
		for done, attempts := 0, 0; done < updatesPerWorker; attempts++ {
			if attempts == maxAttempts {
				mu.Lock()
				failures = append(failures, fmt.Errorf("worker %d: gave up after %d attempts", worker, attempts))
				mu.Unlock()
				return
			}
			rec, err := s.Get(t.Context(), "client-1")
			if err != nil {
				mu.Lock()
				failures = append(failures, fmt.Errorf("worker %d: Get: %w", worker, err))
				mu.Unlock()
				return
			}
			read := rec.Version
			rec.Metadata["counter"] = number(rec.Metadata["counter"]) + 1
			switch err := s.Update(t.Context(), rec); {
			case errors.Is(err, dcr.ErrConflict):
				continue
			case err != nil:
				mu.Lock()
				failures = append(failures, fmt.Errorf("worker %d: Update: %w", worker, err))
				mu.Unlock()
				return
			}
			mu.Lock()
			if rec.Version != read+1 {
				failures = append(failures, fmt.Errorf("worker %d: Update of version %d returned version %d", worker, read, rec.Version))
			}
			if rec.Version <= last {
				failures = append(failures, fmt.Errorf("worker %d: version went from %d to %d", worker, last, rec.Version))
			}
			versions = append(versions, rec.Version)
			mu.Unlock()
			last = rec.Version
			done++
		}
	})
	for _, err := range failures {
		t.Error(err)
	}

	final := mustGet(t, s, "client-1")
	successes := len(versions)
	if got := number(final.Metadata["counter"]); got != float64(successes) {
		t.Errorf("counter = %v after %d successful updates: updates were lost", got, successes)
	}
	if final.Version != int64(1+successes) {
		t.Errorf("final version = %d after %d successful updates, want %d", final.Version, successes, 1+successes)
	}
	slices.Sort(versions)
	for i, v := range versions {
		if v != int64(i+2) {
			t.Fatalf("successful updates produced versions %v, want each of 2..%d exactly once", versions, successes+1)
		}
	}
}

// parallel runs fn(0..n-1) in n goroutines released at once, and waits for them.
func parallel(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// number reads a counter that a store may hand back as float64 (JSON) or as the int type it
// was given.
func number(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case interface{ Float64() (float64, error) }: // json.Number
		f, _ := n.Float64()
		return f
	}
	return 0
}

func mustCreate(t *testing.T, s dcr.Store, rec *dcr.Registration) {
	t.Helper()
	if err := s.Create(t.Context(), rec); err != nil {
		t.Fatalf("Create %s: %v", rec.ClientID, err)
	}
}

func mustGet(t *testing.T, s dcr.Store, clientID string) *dcr.Registration {
	t.Helper()
	rec, err := s.Get(t.Context(), clientID)
	if err != nil {
		t.Fatalf("Get %s: %v", clientID, err)
	}
	return rec
}

func mustClaim(t *testing.T, s dcr.Store, key string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.Claim(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Claim(%.20q): %v", key, err)
	}
	return ok
}

func mustSeen(t *testing.T, s dcr.Store, key string) bool {
	t.Helper()
	seen, err := s.Seen(t.Context(), key)
	if err != nil {
		t.Fatalf("Seen(%.20q): %v", key, err)
	}
	return seen
}

func listBySoftware(t *testing.T, s dcr.Store, softwareID string) []string {
	t.Helper()
	ids, err := s.ListBySoftware(t.Context(), softwareID)
	if err != nil {
		t.Fatalf("ListBySoftware(%q): %v", softwareID, err)
	}
	return ids
}

func listByOrg(t *testing.T, s dcr.Store, orgID string) []string {
	t.Helper()
	ids, err := s.ListByOrg(t.Context(), orgID)
	if err != nil {
		t.Fatalf("ListByOrg(%q): %v", orgID, err)
	}
	return ids
}

// assertIDs compares as sets: stores need not order their lists, but must not repeat ids.
func assertIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s = %q, want %q", what, g, w)
	}
}

// assertSameRecord compares deeply, times by instant: a store may hand times back in another
// location or without the monotonic reading.
func assertSameRecord(t *testing.T, got, want *dcr.Registration) {
	t.Helper()
	if got == nil {
		t.Fatal("got a nil record")
	}
	g, w := got.Clone(), want.Clone()
	if !g.IssuedAt.Equal(w.IssuedAt) {
		t.Errorf("IssuedAt = %v, want %v", g.IssuedAt, w.IssuedAt)
	}
	if !g.UpdatedAt.Equal(w.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want %v", g.UpdatedAt, w.UpdatedAt)
	}
	if (g.DeletedAt == nil) != (w.DeletedAt == nil) || (g.DeletedAt != nil && !g.DeletedAt.Equal(*w.DeletedAt)) {
		t.Errorf("DeletedAt = %v, want %v", g.DeletedAt, w.DeletedAt)
	}
	g.IssuedAt, w.IssuedAt = time.Time{}, time.Time{}
	g.UpdatedAt, w.UpdatedAt = time.Time{}, time.Time{}
	g.DeletedAt, w.DeletedAt = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("stored record differs:\n got %+v\nwant %+v", g, w)
		for _, field := range []struct {
			name      string
			got, want map[string]any
		}{{"Metadata", g.Metadata, w.Metadata}, {"SSAClaims", g.SSAClaims, w.SSAClaims}, {"Backend", g.Backend, w.Backend}} {
			for _, k := range slices.Sorted(maps.Keys(field.want)) {
				if !reflect.DeepEqual(field.got[k], field.want[k]) {
					t.Errorf("%s[%q] = %#v, want %#v", field.name, k, field.got[k], field.want[k])
				}
			}
		}
	}
}
