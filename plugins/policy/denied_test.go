package policy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

// Denials: the plain test store has an empty deny list.
func (s *fakeStore) Denials(context.Context, string, string) ([]dcr.DenyEntry, error) {
	return nil, nil
}

// deniedStore is a registry whose deny list has entries (or fails with err).
type deniedStore struct {
	fakeStore
	entries []dcr.DenyEntry
	err     error
}

func (s *deniedStore) Denials(_ context.Context, orgID, softwareID string) ([]dcr.DenyEntry, error) {
	return dcr.MatchDenials(s.entries, orgID, softwareID), s.err
}

// TestStruckOffInInput: the deny list reaches the policy as input.denied, and the default
// set's struck_off rule refuses a struck-off org or software on register, not on read; a deny
// list that cannot be read fails closed.
func TestStruckOffInInput(t *testing.T) {
	org := dcr.DenyEntry{Kind: dcr.DenyOrg, ID: testOrgID, Reason: "internal note"}
	software := dcr.DenyEntry{Kind: dcr.DenySoftware, ID: testSoftwareID, Reason: "r"}
	for _, tc := range []struct {
		name     string
		store    *deniedStore
		read     bool
		status   int
		contains string
	}{
		{name: "nothing denied", store: &deniedStore{}},
		{name: "another org denied", store: &deniedStore{entries: []dcr.DenyEntry{{Kind: dcr.DenyOrg, ID: "other", Reason: "r"}}}},
		{name: "org denied", store: &deniedStore{entries: []dcr.DenyEntry{org}}, status: 400, contains: `org_id "` + testOrgID + `" is struck off`},
		{name: "software denied", store: &deniedStore{entries: []dcr.DenyEntry{software}}, status: 400, contains: `software_id "` + testSoftwareID + `" is struck off`},
		{name: "read of a denied org", store: &deniedStore{entries: []dcr.DenyEntry{org}}, read: true},
		{name: "deny list unavailable", store: &deniedStore{err: errors.New("down")}, status: http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newPolicy(t, &Policy{})
			x := exchange(func(x *call) {
				x.Store = tc.store
				if tc.read {
					x.Operation, x.Metadata, x.SoftwareStatement = dcr.OpRead, nil, nil
					x.Existing = &dcr.Registration{ClientID: "c1", SoftwareID: testSoftwareID, OrgID: testOrgID}
				}
			})
			in, err := DeniedInput(context.Background(), x.Exchange, dcr.ReadOnly(x.Store))
			if tc.store.err == nil {
				wantOrg := len(tc.store.entries) > 0 && tc.store.entries[0].Kind == dcr.DenyOrg && tc.store.entries[0].ID == testOrgID
				if err != nil || in["org"] != wantOrg {
					t.Fatalf("DeniedInput = %v, %v", in, err)
				}
			}
			err = x.protect(context.Background(), p)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			e := asError(t, err)
			if e.Status != tc.status || !strings.Contains(e.Description, tc.contains) {
				t.Fatalf("got %d %s %q, want %d containing %q", e.Status, e.Code, e.Description, tc.status, tc.contains)
			}
			if tc.status == 400 && (e.Code != dcr.CodeInvalidSoftwareStatement || strings.Contains(e.Description, "internal note")) {
				t.Errorf("refusal %s %q: want invalid_software_statement without the operator's reason", e.Code, e.Description)
			}
		})
	}
}
