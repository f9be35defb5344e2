package dcr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// A deny list entry strikes off an organisation or a piece of software: an operator removed
// its registrations (admin.api.dcr POST /dcr/revocations) and new registrations of it are
// refused until the entry is lifted. Entries are few (regulatory acts), so the list is
// bounded by MaxDenyListEntries and read whole when listed.

// DenyKind is what an entry names: an org_id or a software_id.
type DenyKind string

// Deny kinds, named as the SSA claims they match.
const (
	DenyOrg      DenyKind = "org_id"
	DenySoftware DenyKind = "software_id"
)

// Valid reports whether k is a known kind.
func (k DenyKind) Valid() bool { return k == DenyOrg || k == DenySoftware }

// Bounds of the deny list.
const (
	// MaxDenyListEntries bounds the entries the handler lets a store keep (the limit of
	// AddDenial); adding one more is ErrDenyListFull.
	MaxDenyListEntries = 1000
	// MaxDenyIDLength bounds an entry's org_id or software_id (OB ids are 18 to 36 characters).
	MaxDenyIDLength = 256
	// MaxDenyReasonLength bounds the operator's reason.
	MaxDenyReasonLength = 500
)

// ErrDenyListFull: the store holds MaxDenyListEntries entries already.
var ErrDenyListFull = errors.New("dcr: the deny list is full: lift entries that are no longer needed")

// DenyEntry is one struck-off org_id or software_id.
type DenyEntry struct {
	Kind   DenyKind `json:"kind"`
	ID     string   `json:"id"`
	Reason string   `json:"reason"`
	// Actor is the operator who recorded it, as the admin endpoint knows them.
	Actor     string    `json:"actor,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks an entry before it is stored: a known kind, an id and a reason of bounded
// length without control characters (they end up in logs and in error descriptions).
func (e DenyEntry) Validate() error {
	if !e.Kind.Valid() {
		return fmt.Errorf("dcr: deny list kind %q is neither %s nor %s", e.Kind, DenyOrg, DenySoftware)
	}
	if err := printable(string(e.Kind), e.ID, MaxDenyIDLength); err != nil {
		return err
	}
	if strings.TrimSpace(e.Reason) == "" {
		return errors.New("dcr: a deny list entry needs a reason")
	}
	return printable("reason", e.Reason, MaxDenyReasonLength)
}

func printable(name, v string, max int) error {
	switch {
	case v == "":
		return fmt.Errorf("dcr: %s is empty", name)
	case len(v) > max:
		return fmt.Errorf("dcr: %s is longer than %d bytes", name, max)
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }):
		return fmt.Errorf("dcr: %s has control or invalid characters", name)
	}
	return nil
}

// DenyListStore keeps the deny list.
type DenyListStore interface {
	// AddDenial stores e unless an entry of its kind and id exists, and reports whether it
	// stored it (an existing entry is kept as it is: the first strike-off's reason and time).
	// ErrDenyListFull when the list holds limit entries already. A stored entry equal to e in
	// every field may count as this call's (a store that resends a write whose reply was lost
	// finds its own write).
	AddDenial(ctx context.Context, e DenyEntry, limit int) (added bool, err error)
	// Denials returns the entries for orgID and softwareID (either may be empty), org first.
	Denials(ctx context.Context, orgID, softwareID string) ([]DenyEntry, error)
	// DenyList returns every entry, sorted by kind then id.
	DenyList(ctx context.Context) ([]DenyEntry, error)
	// LiftDenial removes the entry and reports whether there was one.
	LiftDenial(ctx context.Context, kind DenyKind, id string) (lifted bool, err error)
}

// SortDenyList sorts entries by kind then id (stores that keep them unordered use it).
func SortDenyList(entries []DenyEntry) {
	slices.SortFunc(entries, func(a, b DenyEntry) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Denial is what the deny list says about one registration's org and software, as the policy
// input and the handler's check see it.
type Denial struct {
	Org      bool
	Software bool
	// Reason is the first matching entry's reason ("" if neither is denied).
	Reason string
}

// Denied reports whether either is denied.
func (d Denial) Denied() bool { return d.Org || d.Software }

// DenialOf folds the entries of Denials into one Denial.
func DenialOf(entries []DenyEntry) Denial {
	var d Denial
	for _, e := range entries {
		switch e.Kind {
		case DenyOrg:
			d.Org = true
		case DenySoftware:
			d.Software = true
		}
		if d.Reason == "" {
			d.Reason = e.Reason
		}
	}
	return d
}

// The helpers below keep a deny list as one slice, for stores that store it as one value.

// AddDenial adds e to entries as DenyListStore.AddDenial would.
func AddDenial(entries []DenyEntry, e DenyEntry, limit int) ([]DenyEntry, bool, error) {
	if slices.ContainsFunc(entries, func(x DenyEntry) bool { return x.Kind == e.Kind && x.ID == e.ID }) {
		return entries, false, nil
	}
	if len(entries) >= limit {
		return entries, false, ErrDenyListFull
	}
	entries = append(entries, e)
	SortDenyList(entries)
	return entries, true, nil
}

// LiftDenial removes an entry from entries as DenyListStore.LiftDenial would.
func LiftDenial(entries []DenyEntry, kind DenyKind, id string) ([]DenyEntry, bool) {
	n := len(entries)
	entries = slices.DeleteFunc(entries, func(x DenyEntry) bool { return x.Kind == kind && x.ID == id })
	return entries, len(entries) != n
}

// MatchDenials returns the entries for orgID and softwareID as DenyListStore.Denials would.
func MatchDenials(entries []DenyEntry, orgID, softwareID string) []DenyEntry {
	var out []DenyEntry
	for _, want := range []struct {
		kind DenyKind
		id   string
	}{{DenyOrg, orgID}, {DenySoftware, softwareID}} {
		for _, e := range entries {
			if want.id != "" && e.Kind == want.kind && e.ID == want.id {
				out = append(out, e)
			}
		}
	}
	return out
}

// CallRegistry is the Registry of one call: a store's read-only view (ReadOnly) that reads the
// deny list entries of an org_id and software_id once. A registration asks twice (the policy's
// input.denied through Denied, then the handler's strike-off check through Denials), one look-up
// at the store is enough: both ask within the call, and a strike-off recorded between the two
// would not be atomic with the commit either. Errors are not kept, so a read that failed is
// tried again. Make one per call; it is safe for concurrent use.
type CallRegistry struct {
	registryView
	mu   sync.Mutex
	read *denialsRead // the last successful read
}

type denialsRead struct {
	org, software string
	entries       []DenyEntry
}

// ForCall is the CallRegistry of one call on s.
func ForCall(s Store) *CallRegistry { return &CallRegistry{registryView: registryView{s: s}} }

// Denials returns the store's Denials for orgID and softwareID, read at most once per call.
func (r *CallRegistry) Denials(ctx context.Context, orgID, softwareID string) ([]DenyEntry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.read; d != nil && d.org == orgID && d.software == softwareID {
		return d.entries, nil
	}
	entries, err := r.s.Denials(ctx, orgID, softwareID)
	if err != nil {
		return nil, err
	}
	r.read = &denialsRead{org: orgID, software: softwareID, entries: entries}
	return entries, nil
}

// Denied is Registry.Denied through Denials.
func (r *CallRegistry) Denied(ctx context.Context, orgID, softwareID string) (Denial, error) {
	entries, err := r.Denials(ctx, orgID, softwareID)
	if err != nil {
		return Denial{}, err
	}
	return DenialOf(entries), nil
}
