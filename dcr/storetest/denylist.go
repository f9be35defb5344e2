package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

var denyBase = time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)

func denyEntry(kind dcr.DenyKind, id, reason string) dcr.DenyEntry {
	return dcr.DenyEntry{Kind: kind, ID: id, Reason: reason, Actor: "local admin", CreatedAt: denyBase}
}

func mustDeny(t *testing.T, s dcr.Store, e dcr.DenyEntry, limit int) bool {
	t.Helper()
	added, err := s.AddDenial(t.Context(), e, limit)
	if err != nil {
		t.Fatalf("AddDenial(%s %q): %v", e.Kind, e.ID, err)
	}
	return added
}

// denyIDs renders entries as "kind:id:reason" for comparison.
func denyIDs(entries []dcr.DenyEntry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, fmt.Sprintf("%s:%s:%s", e.Kind, e.ID, e.Reason))
	}
	return out
}

func denials(t *testing.T, s dcr.Store, orgID, softwareID string) []string {
	t.Helper()
	entries, err := s.Denials(t.Context(), orgID, softwareID)
	if err != nil {
		t.Fatalf("Denials(%q, %q): %v", orgID, softwareID, err)
	}
	return denyIDs(entries)
}

func denyList(t *testing.T, s dcr.Store) []string {
	t.Helper()
	entries, err := s.DenyList(t.Context())
	if err != nil {
		t.Fatalf("DenyList: %v", err)
	}
	return denyIDs(entries)
}

func mustLift(t *testing.T, s dcr.Store, kind dcr.DenyKind, id string) bool {
	t.Helper()
	lifted, err := s.LiftDenial(t.Context(), kind, id)
	if err != nil {
		t.Fatalf("LiftDenial(%s %q): %v", kind, id, err)
	}
	return lifted
}

func testDenyListLifecycle(t *testing.T, s dcr.Store) {
	assertOrderedIDs(t, "empty list", denyList(t, s))
	assertOrderedIDs(t, "empty denials", denials(t, s, "org-1", "software-1"))
	if !mustDeny(t, s, denyEntry(dcr.DenyOrg, "org-1", "first"), 10) {
		t.Fatal("first AddDenial reported not added")
	}
	// A second strike-off of the same org keeps the first entry.
	if mustDeny(t, s, denyEntry(dcr.DenyOrg, "org-1", "second"), 10) {
		t.Fatal("second AddDenial of the same org reported added")
	}
	mustDeny(t, s, denyEntry(dcr.DenySoftware, "software-1", "sw"), 10)
	mustDeny(t, s, denyEntry(dcr.DenySoftware, "software-0", "sw0"), 10)

	assertOrderedIDs(t, "list", denyList(t, s), "org_id:org-1:first", "software_id:software-0:sw0", "software_id:software-1:sw")
	assertOrderedIDs(t, "both", denials(t, s, "org-1", "software-1"), "org_id:org-1:first", "software_id:software-1:sw")
	assertOrderedIDs(t, "org only", denials(t, s, "org-1", ""), "org_id:org-1:first")
	assertOrderedIDs(t, "software only", denials(t, s, "org-2", "software-1"), "software_id:software-1:sw")
	assertOrderedIDs(t, "neither", denials(t, s, "org-2", "software-2"))

	entries, err := s.DenyList(t.Context())
	if err != nil || len(entries) == 0 {
		t.Fatalf("DenyList = %v, %v", entries, err)
	}
	if got := entries[0]; !got.CreatedAt.Equal(denyBase) || got.Actor != "local admin" {
		t.Errorf("stored entry = %+v, want created_at %v and actor kept", got, denyBase)
	}

	if !mustLift(t, s, dcr.DenyOrg, "org-1") {
		t.Fatal("LiftDenial of a listed org reported nothing lifted")
	}
	if mustLift(t, s, dcr.DenyOrg, "org-1") {
		t.Fatal("second LiftDenial reported lifted")
	}
	assertOrderedIDs(t, "after lift", denials(t, s, "org-1", "software-1"), "software_id:software-1:sw")
	// Lifted, it can be struck off again, with the new reason.
	if !mustDeny(t, s, denyEntry(dcr.DenyOrg, "org-1", "again"), 10) {
		t.Fatal("AddDenial after a lift reported not added")
	}
	assertOrderedIDs(t, "again", denials(t, s, "org-1", ""), "org_id:org-1:again")
}

func testDenyListKindsAndUnsafeIDs(t *testing.T, s dcr.Store) {
	ids := []string{"Acme", "acme", "../acme", "a/b", "..", "ünï", "a:b", "a\\b"}
	for _, id := range ids {
		mustDeny(t, s, denyEntry(dcr.DenyOrg, id, "o"), 100)
	}
	mustDeny(t, s, denyEntry(dcr.DenySoftware, "Acme", "s"), 100)
	for _, id := range ids {
		assertOrderedIDs(t, fmt.Sprintf("Denials(%q)", id), denials(t, s, id, ""), "org_id:"+id+":o")
	}
	// The same id as software is another entry.
	assertOrderedIDs(t, "software Acme", denials(t, s, "", "Acme"), "software_id:Acme:s")
	assertOrderedIDs(t, "software acme", denials(t, s, "", "acme"))
	if n := len(denyList(t, s)); n != len(ids)+1 {
		t.Fatalf("DenyList has %d entries, want %d", n, len(ids)+1)
	}
}

func testDenyListIsBounded(t *testing.T, s dcr.Store) {
	const limit = 4
	for i := range limit {
		mustDeny(t, s, denyEntry(dcr.DenyOrg, fmt.Sprint("org-", i), "r"), limit)
	}
	_, err := s.AddDenial(t.Context(), denyEntry(dcr.DenySoftware, "software-x", "r"), limit)
	if !errors.Is(err, dcr.ErrDenyListFull) {
		t.Fatalf("AddDenial beyond the limit: %v, want ErrDenyListFull", err)
	}
	// An entry that exists is still answered (not added), full or not.
	if added, err := s.AddDenial(t.Context(), denyEntry(dcr.DenyOrg, "org-0", "another reason"), limit); err != nil || added {
		t.Fatalf("AddDenial of an existing entry on a full list = %v, %v", added, err)
	}
	assertOrderedIDs(t, "refused entry", denials(t, s, "", "software-x"))
	mustLift(t, s, dcr.DenyOrg, "org-0")
	if !mustDeny(t, s, denyEntry(dcr.DenySoftware, "software-x", "r"), limit) {
		t.Fatal("AddDenial after a lift made room reported not added")
	}
}

func testConcurrentDenials(t *testing.T, s dcr.Store) {
	const n = 8
	added := make([]bool, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		added[i], errs[i] = s.AddDenial(t.Context(), denyEntry(dcr.DenyOrg, "org-c", fmt.Sprint("r", i)), 10)
	})
	wins := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("AddDenial %d: %v", i, errs[i])
		}
		if added[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent AddDenial calls of one entry added it, want exactly 1", wins)
	}
	if got := denials(t, s, "org-c", ""); len(got) != 1 {
		t.Fatalf("Denials = %v, want one entry", got)
	}
}
