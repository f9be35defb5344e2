package dcr

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// denyStore is a Store whose deny list is entries, counting the reads.
type denyStore struct {
	Store
	entries []DenyEntry
	reads   int
	err     error
}

func (s *denyStore) Denials(_ context.Context, org, software string) ([]DenyEntry, error) {
	s.reads++
	if s.err != nil {
		return nil, s.err
	}
	return MatchDenials(s.entries, org, software), nil
}

// TestCallRegistryReadsTheDenyListOnce: Denied and Denials of the same ids answer what the
// store's view answers, from one read; other ids are read again; a failed read is not kept;
// the view is not a Store.
func TestCallRegistryReadsTheDenyListOnce(t *testing.T) {
	ctx := context.Background()
	s := &denyStore{entries: []DenyEntry{{Kind: DenyOrg, ID: "o1", Reason: "r1"}, {Kind: DenySoftware, ID: "s2", Reason: "r2"}}}
	reg := ForCall(s)
	var asRegistry Registry = reg
	if _, ok := asRegistry.(Store); ok {
		t.Fatal("the call's registry must not be a Store")
	}
	for _, ids := range [][2]string{{"o1", "s1"}, {"o2", "s2"}, {"o1", "s2"}, {"", "s2"}, {"o3", ""}} {
		reads := s.reads
		want, _ := ReadOnly(s).Denied(ctx, ids[0], ids[1])
		wantEntries := MatchDenials(s.entries, ids[0], ids[1])
		s.reads = reads
		d, err := reg.Denied(ctx, ids[0], ids[1])
		if err != nil || d != want {
			t.Fatalf("%v: Denied %+v %v, want %+v", ids, d, err, want)
		}
		entries, err := reg.Denials(ctx, ids[0], ids[1])
		if err != nil || !reflect.DeepEqual(entries, wantEntries) {
			t.Fatalf("%v: Denials %+v %v, want %+v", ids, entries, err, wantEntries)
		}
		if s.reads != reads+1 {
			t.Fatalf("%v: %d reads of the store, want 1", ids, s.reads-reads)
		}
	}
	down := &denyStore{err: errors.New("down")}
	reg = ForCall(down)
	for range 2 {
		if _, err := reg.Denials(ctx, "o", "s"); err == nil {
			t.Fatal("a store that is down is an error")
		}
	}
	if down.reads != 2 {
		t.Fatalf("a failed read was kept: %d reads", down.reads)
	}
}
