package dcr

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Store errors. Stores return these (wrapped or not); anything else means the store is
// unavailable and the handler answers 503.
var (
	ErrNotFound = errors.New("dcr: registration not found")
	ErrExists   = errors.New("dcr: registration already exists")
	ErrConflict = errors.New("dcr: registration was changed concurrently")
	// ErrOnceUsed is what a write refused for a one-time key already used is (errors.Is);
	// the error itself is a *OnceUsedError, which names the key's claim.
	ErrOnceUsed = errors.New("dcr: a one-time key was already used")
)

// Commit is what a registration write carries into the store's transaction besides the
// record: the call's one-time keys (a request jti, a single-use token) and its lifecycle
// event. A store writes the record, its index entries, the keys and the event together or
// not at all, so that no jti of an answered call is lost, no key is used up by a call that
// registered nothing, and no history tells of a change that was not stored.
type Commit struct {
	// Once are claimed with the record. One that is recorded and unexpired (or named twice)
	// refuses the write with a *OnceUsedError for it, and nothing is written.
	Once []OnceClaim
	// Event, when set, is appended to the history of the written client (HistoryOfClient,
	// its ClientID set to the record's), trimmed by Retention.
	Event     *HistoryEvent
	Retention HistoryRetention
}

// JoinCommits is the one Commit of a write given several (the variadic argument of the
// writes of RegistrationStore): every key, and the last event.
func JoinCommits(cs []Commit) Commit {
	switch len(cs) {
	case 0:
		return Commit{}
	case 1:
		return cs[0]
	}
	var out Commit
	for _, c := range cs {
		out.Once = append(out.Once, c.Once...)
		if c.Event != nil {
			out.Event, out.Retention = c.Event, c.Retention
		}
	}
	return out
}

// ClientEvent is c's event as the history of clientID stores it.
func (c Commit) ClientEvent(clientID string) HistoryEvent {
	ev := *c.Event
	ev.ClientID = clientID
	return ev
}

// OnceUsedError refuses a write whose commit names a one-time key already used.
type OnceUsedError struct {
	Claim OnceClaim
}

func (e *OnceUsedError) Error() string { return ErrOnceUsed.Error() }

// Is makes errors.Is(err, ErrOnceUsed) true.
func (e *OnceUsedError) Is(target error) bool { return target == ErrOnceUsed }

// Rejection is the answer to the call: the claim's own Reject (the 400 its protection
// chose), or a generic invalid_request for a claim that has none.
func (e *OnceUsedError) Rejection() *Error {
	if e.Claim.Reject != nil {
		return e.Claim.Reject
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: "this request was already used"}
}

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
	// Create stores rec if no record (live or tombstone) has its client_id (else ErrExists)
	// and no key of the commits is used (else a *OnceUsedError), with the commits' keys and
	// event, in one transaction. On success rec.Version is 1.
	Create(ctx context.Context, rec *Registration, with ...Commit) error
	// Get returns the record, ErrNotFound if there is none or it is a tombstone.
	Get(ctx context.Context, clientID string) (*Registration, error)
	// Update replaces the record if its stored version equals rec.Version, and stores it with
	// rec.Version+1 (rec is updated to the new version). ErrConflict if the version differs,
	// ErrNotFound if the record is gone or a tombstone; a *OnceUsedError as for Create. The
	// commits are written with the record, all or nothing, as for Create.
	Update(ctx context.Context, rec *Registration, with ...Commit) error
	// Delete turns a live record of the given version into a tombstone (kept so the client_id
	// is never reused), with the commits. Errors as for Update.
	Delete(ctx context.Context, clientID string, version int64, with ...Commit) error
	// ListBySoftware returns the client_ids of live registrations of a software_id.
	ListBySoftware(ctx context.Context, softwareID string) ([]string, error)
	// ListByOrg returns the client_ids of live registrations of an org_id.
	ListByOrg(ctx context.Context, orgID string) ([]string, error)
	// List returns one page of the registrations q selects (see ListQuery): from the
	// software_id or org_id index when q names one, never by reading every record then.
	// A query that fails q.Validate is refused with that error.
	List(ctx context.Context, q ListQuery) (ListPage, error)
}

// OnceStore remembers keys for a while: replay caches (jti) and consumed tokens. A
// registration's keys are claimed with it (Commit); Claim and Release are for what cannot be
// in the store's transaction (the upstream registrar's backend call, registrars/upstream).
type OnceStore interface {
	// Claim records key for ttl if it is not already recorded (or has expired) and reports
	// whether this call recorded it. Exactly one of many concurrent claims of a key wins.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Seen reports whether key is recorded and unexpired, without recording it.
	Seen(ctx context.Context, key string) (bool, error)
	// Release forgets key, so a claim made for a request that then failed can be retried.
	Release(ctx context.Context, key string) error
}

// TombstoneLatest deletes the registration rec with the commit c, re-reading it when it
// changed concurrently (a DELETE applies to whatever version is current), at most retries
// times. A write refused for a conflict wrote nothing, so the retry carries c again.
func TombstoneLatest(ctx context.Context, s RegistrationStore, rec *Registration, retries int, c Commit) error {
	cur := rec
	for range retries {
		err := s.Delete(ctx, cur.ClientID, cur.Version, c)
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
// request against rec's binding. The commit c is written with the record that is stored.
func UpdateLatest(ctx context.Context, s RegistrationStore, rec *Registration, retries int, c Commit, change func(*Registration)) (*Registration, error) {
	cur := rec
	for range retries {
		next := cur.Clone()
		change(next)
		err := s.Update(ctx, next, c)
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
