package dcr

import (
	"errors"
	"iter"
	"time"
)

// Listing limits: a page holds DefaultListLimit registrations unless the caller asks for
// another size, and never more than MaxListLimit.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// ErrUnindexedQuery is returned for a query a store could only answer by reading every record
// while it names an index: tombstones are not indexed by software_id or org_id, so "deleted
// registrations of org X" is refused rather than answered by a full scan.
var ErrUnindexedQuery = errors.New("dcr: deleted registrations are not indexed by software_id or org_id")

// ListQuery selects registrations for an operator's listing. Registrations come in ascending
// client_id order; After is the cursor (the Next of the previous page).
//
// A store answers a query naming SoftwareID or OrgID from that index (SoftwareID first when
// both are set) and applies the other conditions to the records the index names; without
// either it walks the registry in client_id order.
type ListQuery struct {
	SoftwareID string
	OrgID      string
	// AuthMethod is the registered token_endpoint_auth_method.
	AuthMethod string
	// Deleted lists tombstones instead of live registrations.
	Deleted bool
	// Time ranges on IssuedAt and UpdatedAt, each bound inclusive, zero for none.
	CreatedFrom, CreatedTo time.Time
	UpdatedFrom, UpdatedTo time.Time
	// After is the client_id the page starts after; empty for the first page.
	After string
	// Limit is the page size: DefaultListLimit when 0, at most MaxListLimit.
	Limit int
}

// ListPage is one page of a listing. Next is the cursor of the following page, empty when
// this page is the last.
type ListPage struct {
	Registrations []*Registration
	Next          string
}

// Validate refuses queries no store answers.
func (q ListQuery) Validate() error {
	switch {
	case q.Limit < 0 || q.Limit > MaxListLimit:
		return errors.New("dcr: list limit out of range")
	case q.Deleted && (q.SoftwareID != "" || q.OrgID != ""):
		return ErrUnindexedQuery
	case !q.CreatedFrom.IsZero() && !q.CreatedTo.IsZero() && q.CreatedTo.Before(q.CreatedFrom),
		!q.UpdatedFrom.IsZero() && !q.UpdatedTo.IsZero() && q.UpdatedTo.Before(q.UpdatedFrom):
		return errors.New("dcr: time range ends before it starts")
	}
	return nil
}

// PageSize is the effective page size.
func (q ListQuery) PageSize() int {
	if q.Limit == 0 {
		return DefaultListLimit
	}
	return q.Limit
}

// Matches reports whether rec satisfies every condition of q except the cursor.
func (q ListQuery) Matches(rec *Registration) bool {
	switch {
	case rec == nil, rec.Deleted() != q.Deleted:
		return false
	case q.SoftwareID != "" && rec.SoftwareID != q.SoftwareID:
		return false
	case q.OrgID != "" && rec.OrgID != q.OrgID:
		return false
	case q.AuthMethod != "" && rec.AuthMethod() != q.AuthMethod:
		return false
	}
	return inRange(rec.IssuedAt, q.CreatedFrom, q.CreatedTo) && inRange(rec.UpdatedAt, q.UpdatedFrom, q.UpdatedTo)
}

func inRange(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to))
}

// AuthMethod is the registered token_endpoint_auth_method, empty if none.
func (r *Registration) AuthMethod() string {
	m, _ := r.Metadata["token_endpoint_auth_method"].(string)
	return m
}

// Records yields recs as CollectPage candidates.
func Records(recs []*Registration) iter.Seq2[*Registration, error] {
	return func(yield func(*Registration, error) bool) {
		for _, rec := range recs {
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// CollectPage builds the page of q from candidates, which a store yields in ascending
// client_id order, each after q.After. It stops reading candidates as soon as it knows
// whether another page follows.
func CollectPage(q ListQuery, candidates iter.Seq2[*Registration, error]) (ListPage, error) {
	size := q.PageSize()
	var page ListPage
	for rec, err := range candidates {
		if err != nil {
			return ListPage{}, err
		}
		if rec.ClientID <= q.After || !q.Matches(rec) {
			continue
		}
		if len(page.Registrations) == size {
			page.Next = page.Registrations[size-1].ClientID
			break
		}
		page.Registrations = append(page.Registrations, rec)
	}
	return page, nil
}
