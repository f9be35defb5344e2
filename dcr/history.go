package dcr

import (
	"context"
	"slices"
	"time"
)

// History events: a client's lifecycle, and the rejections for a software_id.
const (
	EventRegistered = "registered"
	EventUpdated    = "updated"
	EventDeleted    = "deleted"
	EventRejected   = "rejected"
)

// HistoryEvent is one entry of a history. It holds what the audit line holds, never a
// credential or a software statement.
type HistoryEvent struct {
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	Operation  string    `json:"operation,omitempty"`
	ClientID   string    `json:"client_id,omitempty"`
	SoftwareID string    `json:"software_id,omitempty"`
	OrgID      string    `json:"org_id,omitempty"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	// Actor is who made the change when it was not the client: an operator of the admin API.
	Actor string `json:"actor,omitempty"`
}

// HistoryKind names what a history is about.
type HistoryKind string

// History kinds: a client's lifecycle by client_id, rejections by software_id (a rejected
// registration has no client_id).
const (
	HistoryOfClient   HistoryKind = "client"
	HistoryOfSoftware HistoryKind = "software"
)

// HistoryRetention bounds a history: at most MaxEvents events (the newest), none older than
// MaxAge. Zero values take the defaults.
type HistoryRetention struct {
	MaxEvents int
	MaxAge    time.Duration
}

// Default history retention: enough for an operator to see what happened to a client
// recently, small enough that a TPP hammering the endpoint cannot grow the store.
const (
	DefaultHistoryMaxEvents = 100
	DefaultHistoryMaxAge    = 30 * 24 * time.Hour
	MaxHistoryMaxEvents     = 10000
)

// WithDefaults fills zero values.
func (r HistoryRetention) WithDefaults() HistoryRetention {
	if r.MaxEvents <= 0 {
		r.MaxEvents = DefaultHistoryMaxEvents
	}
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultHistoryMaxAge
	}
	return r
}

// HistoryStore keeps bounded histories.
type HistoryStore interface {
	// AppendHistory adds ev to the history of (kind, id) and drops what keep no longer
	// allows: beyond the newest keep.MaxEvents, older than keep.MaxAge before ev.Time.
	AppendHistory(ctx context.Context, kind HistoryKind, id string, ev HistoryEvent, keep HistoryRetention) error
	// History returns the events of (kind, id) at or after since, oldest first.
	History(ctx context.Context, kind HistoryKind, id string, since time.Time) ([]HistoryEvent, error)
}

// TrimHistory applies keep to events (oldest first) as of now; stores that keep a history as
// one value use it.
func TrimHistory(events []HistoryEvent, keep HistoryRetention, now time.Time) []HistoryEvent {
	keep = keep.WithDefaults()
	cutoff := now.Add(-keep.MaxAge)
	events = slices.DeleteFunc(events, func(e HistoryEvent) bool { return e.Time.Before(cutoff) })
	if len(events) > keep.MaxEvents {
		events = events[len(events)-keep.MaxEvents:]
	}
	return events
}

// Since returns the events at or after since.
func Since(events []HistoryEvent, since time.Time) []HistoryEvent {
	return slices.DeleteFunc(events, func(e HistoryEvent) bool { return e.Time.Before(since) })
}
