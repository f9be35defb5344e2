package dcr

import (
	"context"
	"errors"
	"testing"
)

// casStore is a one-record RegistrationStore whose record a "concurrent writer" changes
// before each of the first conflicts Update calls.
type casStore struct {
	RegistrationStore // nil: the methods UpdateLatest does not use panic
	rec               *Registration
	conflicts         int                 // how many Update calls a concurrent write beats
	concurrent        func(*Registration) // the concurrent write
	updateErr         error
	gone              bool
	updates           int
}

func (s *casStore) Get(_ context.Context, id string) (*Registration, error) {
	if s.gone || id != s.rec.ClientID {
		return nil, ErrNotFound
	}
	return s.rec.Clone(), nil
}

func (s *casStore) Update(_ context.Context, rec *Registration, _ ...Commit) error {
	s.updates++
	if s.updateErr != nil {
		return s.updateErr
	}
	if s.conflicts > 0 {
		s.conflicts--
		s.concurrent(s.rec)
		s.rec.Version++
	}
	if rec.Version != s.rec.Version {
		return ErrConflict
	}
	rec.Version++
	s.rec = rec.Clone()
	return nil
}

func TestUpdateLatest(t *testing.T) {
	errDown := errors.New("store down")
	tests := []struct {
		name        string
		store       casStore
		wantErr     error
		wantUpdates int
		check       func(t *testing.T, got *Registration)
	}{
		{name: "no concurrent change", wantUpdates: 1, check: func(t *testing.T, got *Registration) {
			if got.Version != 2 || got.Metadata["scope"] != "new" {
				t.Fatalf("got %+v", got)
			}
		}},
		{name: "a concurrent change: the change is applied again to the newer version",
			store:       casStore{conflicts: 2, concurrent: func(r *Registration) { r.Backend = map[string]any{"k": "v"} }},
			wantUpdates: 3, check: func(t *testing.T, got *Registration) {
				if got.Version != 4 || got.Metadata["scope"] != "new" || got.Backend["k"] != "v" {
					t.Fatalf("got %+v", got)
				}
			}},
		{name: "a concurrent change of the software binding is a conflict",
			store:   casStore{conflicts: 1, concurrent: func(r *Registration) { r.SoftwareID = "other" }},
			wantErr: ErrConflict, wantUpdates: 1},
		{name: "a concurrent change of the org binding is a conflict",
			store:   casStore{conflicts: 1, concurrent: func(r *Registration) { r.OrgID = "other" }},
			wantErr: ErrConflict, wantUpdates: 1},
		{name: "always beaten: a conflict after the retries",
			store:   casStore{conflicts: 100, concurrent: func(*Registration) {}},
			wantErr: ErrConflict, wantUpdates: 3},
		{name: "a store error is returned as it is", store: casStore{updateErr: errDown}, wantErr: errDown, wantUpdates: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.store
			s.rec = &Registration{ClientID: "c1", Version: 1, SoftwareID: "s1", OrgID: "o1", Metadata: map[string]any{"scope": "old"}}
			existing := s.rec.Clone()
			got, err := UpdateLatest(context.Background(), &s, existing, 3, Commit{}, func(r *Registration) {
				r.Metadata = map[string]any{"scope": "new"}
			})
			if !errors.Is(err, tc.wantErr) || s.updates != tc.wantUpdates {
				t.Fatalf("err %v after %d updates; want %v after %d", err, s.updates, tc.wantErr, tc.wantUpdates)
			}
			if existing.Version != 1 || existing.Metadata["scope"] != "old" {
				t.Fatal("the record passed in was modified")
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func TestUpdateLatestRecordGone(t *testing.T) {
	s := &casStore{rec: &Registration{ClientID: "c1", Version: 1}, conflicts: 1}
	s.concurrent = func(*Registration) { s.gone = true }
	if _, err := UpdateLatest(context.Background(), s, s.rec.Clone(), 3, Commit{}, func(*Registration) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a record deleted concurrently: %v, want ErrNotFound", err)
	}
}
