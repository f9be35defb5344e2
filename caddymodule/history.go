package caddymodule

import (
	"context"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// HistoryConfig bounds the history the dcr handler keeps of each client (its lifecycle
// events) and of each software_id (the rejections of its registrations), shown by
// admin.api.dcr. JSON: {"max_events": 100, "max_age": "720h"}; zero values take the defaults
// (dcr.DefaultHistoryMaxEvents, dcr.DefaultHistoryMaxAge).
type HistoryConfig struct {
	MaxEvents int            `json:"max_events,omitempty"`
	MaxAge    caddy.Duration `json:"max_age,omitempty"`
}

func (h *Handler) historyRetention() dcr.HistoryRetention {
	if h.History == nil {
		return dcr.HistoryRetention{}.WithDefaults()
	}
	return dcr.HistoryRetention{MaxEvents: h.History.MaxEvents, MaxAge: time.Duration(h.History.MaxAge)}.WithDefaults()
}

// historyWriteTimeout bounds the history write after a DCR answer is known: a slow store must
// not hold the request much longer than its own write did.
const historyWriteTimeout = 2 * time.Second

// historyKeeper writes the audit events into the store's histories.
type historyKeeper struct {
	store  dcr.HistoryStore
	keep   dcr.HistoryRetention
	logger *zap.Logger
}

// keep records one audited event: a lifecycle change in the client's history, a rejection in
// its software_id's. Reads are not history. A failure is logged: the call itself is done.
func (k *historyKeeper) add(ctx context.Context, data map[string]any, event string, actor string) {
	if k == nil || k.store == nil {
		return
	}
	ev := dcr.HistoryEvent{Time: time.Now().UTC(), Actor: actor}
	ev.Operation, _ = data["operation"].(string)
	ev.ClientID, _ = data["client_id"].(string)
	ev.SoftwareID, _ = data["software_id"].(string)
	ev.OrgID, _ = data["org_id"].(string)
	ev.Status, _ = data["status"].(int)
	ev.Error, _ = data["error"].(string)
	ev.Reason, _ = data["reason"].(string)
	kind, id := dcr.HistoryOfClient, ev.ClientID
	switch event {
	case EventRegistered:
		ev.Event = dcr.EventRegistered
	case EventUpdated:
		ev.Event = dcr.EventUpdated
	case EventDeleted:
		ev.Event = dcr.EventDeleted
	case EventRejected:
		ev.Event = dcr.EventRejected
		kind, id = dcr.HistoryOfSoftware, ev.SoftwareID
	default:
		return
	}
	if id == "" {
		return // a rejection before the software statement was verified names no software
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), historyWriteTimeout)
	defer cancel()
	if err := k.store.AppendHistory(ctx, kind, id, ev, k.keep); err != nil {
		k.logger.Warn("recording a history event", zap.String("history", string(kind)), zap.Error(err))
	}
}

// requestContext is the context of the exchange's request, if it has one.
func requestContext(x *dcr.Exchange) context.Context {
	if x.Request == nil {
		return context.Background()
	}
	return x.Request.Context()
}

// unmarshalHistory parses the `history` block of the dcr directive (see UnmarshalCaddyfile).
func (h *Handler) unmarshalHistory(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	h.History = new(HistoryConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var v string
		name := d.Val()
		if !d.Args(&v) || d.NextArg() {
			return d.ArgErr()
		}
		switch name {
		case "max_events":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > dcr.MaxHistoryMaxEvents {
				return d.Errf("history max_events must be an integer from 1 to %d, not %q", dcr.MaxHistoryMaxEvents, v)
			}
			h.History.MaxEvents = n
		case "max_age":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("history max_age must be a positive duration, not %q", v)
			}
			h.History.MaxAge = caddy.Duration(dur)
		default:
			return d.Errf("unknown history option %q", name)
		}
	}
	return nil
}
