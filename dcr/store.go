package dcr

import (
	"context"
	"errors"
	"time"
)

// Store errors. Stores return these (wrapped or not); anything else means the store is
// unavailable and the handler answers 503.
var (
	ErrNotFound = errors.New("dcr: registration not found")
	ErrExists   = errors.New("dcr: registration already exists")
	ErrConflict = errors.New("dcr: registration was changed concurrently")
)

// Store is what every registration store implements (dcr.storage.*). The conformance suite in
// dcr/storetest pins down the semantics; each store runs it.
type Store interface {
	RegistrationStore
	OnceStore
	HistoryStore
	DenyListStore
}

// RegistrationStore holds registration records.
type RegistrationStore interface {
	// Create stores rec if no record (live or tombstone) has its client_id; else ErrExists.
	// On success rec.Version is 1.
	Create(ctx context.Context, rec *Registration) error
	// Get returns the record, ErrNotFound if there is none or it is a tombstone.
	Get(ctx context.Context, clientID string) (*Registration, error)
	// Update replaces the record if its stored version equals rec.Version, and stores it with
	// rec.Version+1 (rec is updated to the new version). ErrConflict if the version differs,
	// ErrNotFound if the record is gone or a tombstone.
	Update(ctx context.Context, rec *Registration) error
	// Delete turns a live record of the given version into a tombstone (kept so the client_id
	// is never reused). ErrConflict / ErrNotFound as for Update.
	Delete(ctx context.Context, clientID string, version int64) error
	// ListBySoftware returns the client_ids of live registrations of a software_id.
	ListBySoftware(ctx context.Context, softwareID string) ([]string, error)
	// ListByOrg returns the client_ids of live registrations of an org_id.
	ListByOrg(ctx context.Context, orgID string) ([]string, error)
	// List returns one page of the registrations q selects (see ListQuery): from the
	// software_id or org_id index when q names one, never by reading every record then.
	// A query that fails q.Validate is refused with that error.
	List(ctx context.Context, q ListQuery) (ListPage, error)
}

// OnceStore remembers keys for a while: replay caches (jti) and consumed tokens.
type OnceStore interface {
	// Claim records key for ttl if it is not already recorded (or has expired) and reports
	// whether this call recorded it. Exactly one of many concurrent claims of a key wins.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Seen reports whether key is recorded and unexpired, without recording it.
	Seen(ctx context.Context, key string) (bool, error)
	// Release forgets key, so a claim made for a request that then failed can be retried.
	Release(ctx context.Context, key string) error
}

// TombstoneLatest deletes the registration rec, re-reading it when it changed concurrently
// (a DELETE applies to whatever version is current), at most retries times.
func TombstoneLatest(ctx context.Context, s RegistrationStore, rec *Registration, retries int) error {
	cur := rec
	for range retries {
		err := s.Delete(ctx, cur.ClientID, cur.Version)
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if cur, err = s.Get(ctx, rec.ClientID); err != nil {
			return err
		}
	}
	return ErrConflict
}

// UpdateLatest stores change applied to a copy of rec, re-reading the record and applying
// change again when it changed concurrently (a PUT replaces whatever version is current), at
// most retries times, and returns the stored record. A record that a concurrent change bound
// to another software_id or org_id is not replaced (ErrConflict): the caller checked the
// request against rec's binding.
func UpdateLatest(ctx context.Context, s RegistrationStore, rec *Registration, retries int, change func(*Registration)) (*Registration, error) {
	cur := rec
	for range retries {
		next := cur.Clone()
		change(next)
		err := s.Update(ctx, next)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, err
		}
		if cur, err = s.Get(ctx, rec.ClientID); err != nil {
			return nil, err
		}
		if cur.SoftwareID != rec.SoftwareID || cur.OrgID != rec.OrgID {
			return nil, ErrConflict
		}
	}
	return nil, ErrConflict
}
