package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// listLayout creates the registrations the List subtests query:
//
//	client-0 software-A org-X private_key_jwt  issued base+0m
//	client-1 software-A org-Y tls_client_auth  issued base+1m
//	client-2 software-A org-Y private_key_jwt  issued base+2m
//	client-3 software-B org-X tls_client_auth  issued base+3m
//	client-4 software-B org-Y private_key_jwt  issued base+4m
//	client-5 software-C org-Y tls_client_auth  issued base+5m
//	client-6 software-C org-X private_key_jwt  issued base+6m, deleted
func listLayout(t *testing.T, s dcr.Store) {
	t.Helper()
	layout := []struct{ software, org string }{
		{"software-A", "org-X"}, {"software-A", "org-Y"}, {"software-A", "org-Y"},
		{"software-B", "org-X"}, {"software-B", "org-Y"}, {"software-C", "org-Y"}, {"software-C", "org-X"},
	}
	for i, l := range layout {
		rec := NewRegistration(i)
		rec.SoftwareID, rec.OrgID = l.software, l.org
		if i%2 == 1 {
			rec.Metadata["token_endpoint_auth_method"] = "tls_client_auth"
		}
		mustCreate(t, s, rec)
	}
	rec := mustGet(t, s, "client-6")
	if err := s.Delete(t.Context(), rec.ClientID, rec.Version); err != nil {
		t.Fatalf("Delete client-6: %v", err)
	}
}

func listIDs(t *testing.T, s dcr.Store, q dcr.ListQuery) ([]string, string) {
	t.Helper()
	page, err := s.List(t.Context(), q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	ids := make([]string, 0, len(page.Registrations))
	for _, rec := range page.Registrations {
		ids = append(ids, rec.ClientID)
	}
	return ids, page.Next
}

// assertOrderedIDs compares in order: List pages are in ascending client_id order.
func assertOrderedIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func testListFilters(t *testing.T, s dcr.Store) {
	listLayout(t, s)
	base := NewRegistration(0).IssuedAt
	for _, tc := range []struct {
		name string
		q    dcr.ListQuery
		want []string
	}{
		{"all live", dcr.ListQuery{}, []string{"client-0", "client-1", "client-2", "client-3", "client-4", "client-5"}},
		{"org-X", dcr.ListQuery{OrgID: "org-X"}, []string{"client-0", "client-3"}},
		{"org-Y", dcr.ListQuery{OrgID: "org-Y"}, []string{"client-1", "client-2", "client-4", "client-5"}},
		{"software-A", dcr.ListQuery{SoftwareID: "software-A"}, []string{"client-0", "client-1", "client-2"}},
		{"software-C (its org-X client deleted)", dcr.ListQuery{SoftwareID: "software-C"}, []string{"client-5"}},
		{"software-A and org-Y", dcr.ListQuery{SoftwareID: "software-A", OrgID: "org-Y"}, []string{"client-1", "client-2"}},
		{"unknown org", dcr.ListQuery{OrgID: "org-unknown"}, nil},
		{"auth method", dcr.ListQuery{AuthMethod: "tls_client_auth"}, []string{"client-1", "client-3", "client-5"}},
		{"org-Y and auth method", dcr.ListQuery{OrgID: "org-Y", AuthMethod: "private_key_jwt"}, []string{"client-2", "client-4"}},
		{"created from", dcr.ListQuery{CreatedFrom: base.Add(4 * time.Minute)}, []string{"client-4", "client-5"}},
		{"created range", dcr.ListQuery{CreatedFrom: base.Add(time.Minute), CreatedTo: base.Add(3 * time.Minute)}, []string{"client-1", "client-2", "client-3"}},
		{"updated to", dcr.ListQuery{UpdatedTo: base.Add(time.Minute)}, []string{"client-0", "client-1"}},
		{"deleted", dcr.ListQuery{Deleted: true}, []string{"client-6"}},
		{"after a cursor", dcr.ListQuery{After: "client-3"}, []string{"client-4", "client-5"}},
		{"org-Y after a cursor", dcr.ListQuery{OrgID: "org-Y", After: "client-2"}, []string{"client-4", "client-5"}},
	} {
		got, next := listIDs(t, s, tc.q)
		assertOrderedIDs(t, tc.name, got, tc.want...)
		if next != "" {
			t.Errorf("%s: Next = %q on the only page", tc.name, next)
		}
	}

	page, err := s.List(t.Context(), dcr.ListQuery{Deleted: true})
	if err != nil || len(page.Registrations) != 1 || !page.Registrations[0].Deleted() {
		t.Errorf("deleted listing = %+v, %v; want the tombstone with DeletedAt set", page, err)
	}
	page, err = s.List(t.Context(), dcr.ListQuery{OrgID: "org-X", Limit: 1})
	if err != nil || len(page.Registrations) != 1 {
		t.Fatalf("List org-X limit 1 = %+v, %v", page, err)
	}
	assertSameRecord(t, page.Registrations[0], mustGet(t, s, "client-0"))
}

func testListPages(t *testing.T, s dcr.Store) {
	listLayout(t, s)
	for _, q := range []dcr.ListQuery{{Limit: 2}, {OrgID: "org-Y", Limit: 3}, {SoftwareID: "software-A", Limit: 1}} {
		want, _ := listIDs(t, s, dcr.ListQuery{OrgID: q.OrgID, SoftwareID: q.SoftwareID})
		var all []string
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("%+v: more than 10 pages", q)
			}
			ids, next := listIDs(t, s, q)
			if len(ids) > q.Limit {
				t.Errorf("%+v: page of %d", q, len(ids))
			}
			all = append(all, ids...)
			if next == "" {
				break
			}
			if next != ids[len(ids)-1] {
				t.Errorf("%+v: Next = %q, want the page's last client_id %q", q, next, ids[len(ids)-1])
			}
			q.After = next
		}
		assertOrderedIDs(t, "pages concatenated", all, want...)
	}
	// A page that ends exactly at the last registration says there is no more.
	ids, next := listIDs(t, s, dcr.ListQuery{OrgID: "org-X", Limit: 2})
	assertOrderedIDs(t, "org-X limit 2", ids, "client-0", "client-3")
	if next != "" {
		t.Errorf("Next = %q after the last registration", next)
	}
}

func testListRefusesBadQueries(t *testing.T, s dcr.Store) {
	listLayout(t, s)
	for _, q := range []dcr.ListQuery{
		{Deleted: true, OrgID: "org-X"},
		{Deleted: true, SoftwareID: "software-A"},
		{Limit: -1},
		{Limit: dcr.MaxListLimit + 1},
		{CreatedFrom: time.Unix(100, 0), CreatedTo: time.Unix(50, 0)},
	} {
		if _, err := s.List(t.Context(), q); err == nil {
			t.Errorf("List(%+v) succeeded", q)
		}
	}
	if _, err := s.List(t.Context(), dcr.ListQuery{Deleted: true, OrgID: "org-X"}); !errors.Is(err, dcr.ErrUnindexedQuery) {
		t.Errorf("deleted by org: %v, want ErrUnindexedQuery", err)
	}
	got, _ := listIDs(t, s, dcr.ListQuery{})
	assertOrderedIDs(t, "after refused queries", got, "client-0", "client-1", "client-2", "client-3", "client-4", "client-5")
}

// A registration moved to another org_id is listed under the new one only.
func testListAfterMove(t *testing.T, s dcr.Store) {
	listLayout(t, s)
	rec := mustGet(t, s, "client-0")
	rec.OrgID = "org-Y"
	if err := s.Update(t.Context(), rec); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, _ := listIDs(t, s, dcr.ListQuery{OrgID: "org-X"})
	assertOrderedIDs(t, "org-X after move", got, "client-3")
	got, _ = listIDs(t, s, dcr.ListQuery{OrgID: "org-Y"})
	assertOrderedIDs(t, "org-Y after move", got, "client-0", "client-1", "client-2", "client-4", "client-5")
}
