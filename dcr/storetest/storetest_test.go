package storetest_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
)

// TestSuite runs the suite against a minimal, obviously correct store, so that a failure here
// is a bug of the suite rather than of a store.
func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dcr.Store { return newReferenceStore() })
}

func TestNewRegistrationIsDeterministic(t *testing.T) {
	a, b := storetest.NewRegistration(3), storetest.NewRegistration(3)
	if a.ClientID != "client-3" || a.SoftwareID != "software-3" || a.OrgID != "org-3" {
		t.Errorf("ids = %q %q %q", a.ClientID, a.SoftwareID, a.OrgID)
	}
	a.Metadata["client_name"] = "changed"
	if b.Metadata["client_name"] == "changed" {
		t.Error("NewRegistration results share maps")
	}
	if storetest.NewRegistration(4).ClientID == a.ClientID {
		t.Error("different i, same client_id")
	}
}

type referenceStore struct {
	mu      sync.Mutex
	recs    map[string]*dcr.Registration
	once    map[string]time.Time
	history map[string][]dcr.HistoryEvent
	deny    []dcr.DenyEntry
}

func newReferenceStore() *referenceStore {
	return &referenceStore{recs: map[string]*dcr.Registration{}, once: map[string]time.Time{}, history: map[string][]dcr.HistoryEvent{}}
}

// checkCommit refuses a commit naming a used key (or one twice); the caller holds mu.
func (s *referenceStore) checkCommit(c dcr.Commit) error {
	now := time.Now()
	for i, k := range c.Once {
		if exp, ok := s.once[k.Key]; ok && now.Before(exp) {
			return &dcr.OnceUsedError{Claim: k}
		}
		for _, prev := range c.Once[:i] {
			if prev.Key == k.Key {
				return &dcr.OnceUsedError{Claim: k}
			}
		}
	}
	return nil
}

// writeCommit records the keys and the event; the caller holds mu.
func (s *referenceStore) writeCommit(c dcr.Commit, clientID string) {
	for _, k := range c.Once {
		s.once[k.Key] = time.Now().Add(k.TTL)
	}
	if c.Event != nil {
		k := string(dcr.HistoryOfClient) + "\x00" + clientID
		s.history[k] = dcr.TrimHistory(append(s.history[k], c.ClientEvent(clientID)), c.Retention, c.Event.Time)
	}
}

func (s *referenceStore) Create(_ context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := dcr.JoinCommits(with)
	if err := s.checkCommit(c); err != nil {
		return err
	}
	if _, ok := s.recs[rec.ClientID]; ok {
		return dcr.ErrExists
	}
	rec.Version = 1
	s.recs[rec.ClientID] = rec.Clone()
	s.writeCommit(c, rec.ClientID)
	return nil
}

func (s *referenceStore) Get(_ context.Context, clientID string) (*dcr.Registration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.recs[clientID]
	if !ok || rec.Deleted() {
		return nil, dcr.ErrNotFound
	}
	return rec.Clone(), nil
}

func (s *referenceStore) Update(_ context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := dcr.JoinCommits(with)
	if err := s.checkCommit(c); err != nil {
		return err
	}
	old, ok := s.recs[rec.ClientID]
	if !ok || old.Deleted() {
		return dcr.ErrNotFound
	}
	if old.Version != rec.Version {
		return dcr.ErrConflict
	}
	rec.Version++
	s.recs[rec.ClientID] = rec.Clone()
	s.writeCommit(c, rec.ClientID)
	return nil
}

func (s *referenceStore) Delete(_ context.Context, clientID string, version int64, with ...dcr.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := dcr.JoinCommits(with)
	if err := s.checkCommit(c); err != nil {
		return err
	}
	old, ok := s.recs[clientID]
	if !ok || old.Deleted() {
		return dcr.ErrNotFound
	}
	if old.Version != version {
		return dcr.ErrConflict
	}
	now := time.Now()
	old.DeletedAt = &now
	old.Version++
	s.writeCommit(c, clientID)
	return nil
}

func (s *referenceStore) list(match func(*dcr.Registration) bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, rec := range s.recs {
		if !rec.Deleted() && match(rec) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *referenceStore) ListBySoftware(_ context.Context, softwareID string) ([]string, error) {
	return s.list(func(r *dcr.Registration) bool { return r.SoftwareID == softwareID }), nil
}

func (s *referenceStore) ListByOrg(_ context.Context, orgID string) ([]string, error) {
	return s.list(func(r *dcr.Registration) bool { return r.OrgID == orgID }), nil
}

func (s *referenceStore) List(_ context.Context, q dcr.ListQuery) (dcr.ListPage, error) {
	if err := q.Validate(); err != nil {
		return dcr.ListPage{}, err
	}
	s.mu.Lock()
	recs := make([]*dcr.Registration, 0, len(s.recs))
	for _, rec := range s.recs {
		recs = append(recs, rec.Clone())
	}
	s.mu.Unlock()
	slices.SortFunc(recs, func(a, b *dcr.Registration) int { return strings.Compare(a.ClientID, b.ClientID) })
	return dcr.CollectPage(q, dcr.Records(recs))
}

func (s *referenceStore) AppendHistory(_ context.Context, kind dcr.HistoryKind, id string, ev dcr.HistoryEvent, keep dcr.HistoryRetention) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := string(kind) + "\x00" + id
	s.history[k] = dcr.TrimHistory(append(s.history[k], ev), keep, ev.Time)
	return nil
}

func (s *referenceStore) History(_ context.Context, kind dcr.HistoryKind, id string, since time.Time) ([]dcr.HistoryEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return dcr.Since(slices.Clone(s.history[string(kind)+"\x00"+id]), since), nil
}

func (s *referenceStore) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if exp, ok := s.once[key]; ok && now.Before(exp) {
		return false, nil
	}
	s.once[key] = now.Add(ttl)
	return true, nil
}

func (s *referenceStore) Seen(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.once[key]
	return ok && time.Now().Before(exp), nil
}

func (s *referenceStore) Release(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.once, key)
	return nil
}

func (s *referenceStore) AddDenial(_ context.Context, e dcr.DenyEntry, limit int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var added bool
	var err error
	s.deny, added, err = dcr.AddDenial(s.deny, e, limit)
	return added, err
}

func (s *referenceStore) Denials(_ context.Context, orgID, softwareID string) ([]dcr.DenyEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return dcr.MatchDenials(s.deny, orgID, softwareID), nil
}

func (s *referenceStore) DenyList(context.Context) ([]dcr.DenyEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deny), nil
}

func (s *referenceStore) LiftDenial(_ context.Context, kind dcr.DenyKind, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lifted bool
	s.deny, lifted = dcr.LiftDenial(s.deny, kind, id)
	return lifted, nil
}

var _ dcr.Store = (*referenceStore)(nil)
