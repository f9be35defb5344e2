package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

var historyBase = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func historyEvent(i int) dcr.HistoryEvent {
	return dcr.HistoryEvent{Time: historyBase.Add(time.Duration(i) * time.Minute), Event: dcr.EventUpdated,
		Operation: "update", ClientID: "client-1", SoftwareID: "software-1", OrgID: "org-1", Status: 200, Reason: fmt.Sprint("n", i)}
}

func mustAppend(t *testing.T, s dcr.Store, kind dcr.HistoryKind, id string, ev dcr.HistoryEvent, keep dcr.HistoryRetention) {
	t.Helper()
	if err := s.AppendHistory(t.Context(), kind, id, ev, keep); err != nil {
		t.Fatalf("AppendHistory: %v", err)
	}
}

func reasons(t *testing.T, s dcr.Store, kind dcr.HistoryKind, id string, since time.Time) []string {
	t.Helper()
	events, err := s.History(t.Context(), kind, id, since)
	if err != nil {
		t.Fatalf("History(%s, %q): %v", kind, id, err)
	}
	out := []string{}
	for _, e := range events {
		out = append(out, e.Reason)
	}
	return out
}

func testHistoryKeepsEventsInOrder(t *testing.T, s dcr.Store) {
	keep := dcr.HistoryRetention{MaxEvents: 10, MaxAge: time.Hour}
	for i := range 3 {
		mustAppend(t, s, dcr.HistoryOfClient, "client-1", historyEvent(i), keep)
	}
	rejected := historyEvent(3)
	rejected.Event, rejected.ClientID, rejected.Status, rejected.Error, rejected.Reason = dcr.EventRejected, "", 400, "invalid_software_statement", "rej"
	mustAppend(t, s, dcr.HistoryOfSoftware, "client-1", rejected, keep)

	assertOrderedIDs(t, "client history", reasons(t, s, dcr.HistoryOfClient, "client-1", time.Time{}), "n0", "n1", "n2")
	// The kinds are separate namespaces, and so are ids.
	assertOrderedIDs(t, "software history", reasons(t, s, dcr.HistoryOfSoftware, "client-1", time.Time{}), "rej")
	assertOrderedIDs(t, "unknown", reasons(t, s, dcr.HistoryOfClient, "client-2", time.Time{}))
	assertOrderedIDs(t, "since", reasons(t, s, dcr.HistoryOfClient, "client-1", historyBase.Add(time.Minute)), "n1", "n2")

	events, err := s.History(t.Context(), dcr.HistoryOfSoftware, "client-1", time.Time{})
	if err != nil || len(events) != 1 {
		t.Fatalf("History = %v, %v", events, err)
	}
	got := events[0]
	if !got.Time.Equal(rejected.Time) {
		t.Errorf("Time = %v, want %v", got.Time, rejected.Time)
	}
	got.Time = rejected.Time
	if got != rejected {
		t.Errorf("event = %+v, want %+v", got, rejected)
	}
}

func testHistoryKeepsTheNewest(t *testing.T, s dcr.Store) {
	keep := dcr.HistoryRetention{MaxEvents: 3, MaxAge: time.Hour}
	for i := range 7 {
		mustAppend(t, s, dcr.HistoryOfClient, "client-1", historyEvent(i), keep)
	}
	assertOrderedIDs(t, "after 7 appends", reasons(t, s, dcr.HistoryOfClient, "client-1", time.Time{}), "n4", "n5", "n6")
}

func testHistoryDropsOldEvents(t *testing.T, s dcr.Store) {
	keep := dcr.HistoryRetention{MaxEvents: 100, MaxAge: 10 * time.Minute}
	for _, i := range []int{0, 5, 12, 20} {
		mustAppend(t, s, dcr.HistoryOfClient, "client-1", historyEvent(i), keep)
	}
	// As of the last event (base+20m), base+0m and base+5m are older than 10 minutes.
	assertOrderedIDs(t, "after aging", reasons(t, s, dcr.HistoryOfClient, "client-1", time.Time{}), "n12", "n20")
}

func testHistoryWithUnsafeIDs(t *testing.T, s dcr.Store) {
	ids := []string{"Acme", "acme", "../acme", "a/b", "..", "ünï"}
	keep := dcr.HistoryRetention{}
	for i, id := range ids {
		ev := historyEvent(i)
		mustAppend(t, s, dcr.HistoryOfSoftware, id, ev, keep)
	}
	for i, id := range ids {
		assertOrderedIDs(t, fmt.Sprintf("History(%q)", id), reasons(t, s, dcr.HistoryOfSoftware, id, time.Time{}), fmt.Sprint("n", i))
	}
}
