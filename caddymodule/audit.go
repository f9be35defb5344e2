package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// Caddy events the handler emits, for other modules to subscribe to (`events { on dcr.registered ... }`).
const (
	EventRegistered = "dcr.registered"
	EventUpdated    = "dcr.updated"
	EventDeleted    = "dcr.deleted"
	EventRejected   = "dcr.rejected"
)

// AuditLoggerName is the logger of audit events, under the handler's own logger
// (`http.handlers.dcr.audit`), so operators can route it with a `log` block's `include`.
const AuditLoggerName = "audit"

// auditor writes one audit event per lifecycle change and per rejection: a structured log
// line on the audit logger and a Caddy event. Secrets never reach it: tokens, client secrets
// and software statements are not among its fields.
type auditor struct {
	log    *zap.Logger
	events *caddyevents.App
	ctx    caddy.Context
	// history keeps the lifecycle events and rejections in the store (see historyKeeper).
	history *historyKeeper
}

// record is called once per DCR call, after the answer is known. clientID is the path's, or
// on register the one the registrar issued ("" when it failed).
func (a *auditor) record(x *dcr.Exchange, clientID string, status int, e *dcr.Error, took time.Duration) {
	data := map[string]any{"operation": string(x.Operation), "status": status}
	if clientID != "" {
		data["client_id"] = clientID
	}
	switch {
	case x.SoftwareStatement != nil:
		data["software_id"], data["org_id"] = x.SoftwareStatement.SoftwareID, x.SoftwareStatement.OrgID
	case x.Existing != nil:
		data["software_id"], data["org_id"] = x.Existing.SoftwareID, x.Existing.OrgID
	}
	if x.ClientCert != nil {
		data["cert_subject"] = x.ClientCert.Subject.String()
	}
	fields := make([]zap.Field, 0, len(data)+5)
	for k, v := range data {
		fields = append(fields, zap.Any(k, v))
	}
	fields = append(fields, zap.Duration("duration", took))

	var event string
	switch {
	case e != nil:
		// The reason is the real one, also where the answer is deliberately uninformative
		// (a refused management call answers the same for every cause).
		data["outcome"], data["error"], data["reason"] = outcomeOf(e.Status), e.Code, e.AuditReason()
		fields = append(fields, zap.String("outcome", outcomeOf(e.Status)), zap.String("error", e.Code), zap.String("reason", e.AuditReason()))
		if e.Cause != nil {
			fields = append(fields, zap.NamedError("cause", e.Cause))
		}
		if e.Status >= 500 {
			a.log.Error("dcr request failed", fields...)
		} else {
			a.log.Info("dcr request rejected", fields...)
		}
		event = EventRejected
	default:
		data["outcome"] = outcomeSuccess
		fields = append(fields, zap.String("outcome", outcomeSuccess))
		switch x.Operation {
		case dcr.OpRegister:
			event = EventRegistered
		case dcr.OpUpdate:
			event = EventUpdated
		case dcr.OpDelete:
			event = EventDeleted
		}
		if event != "" {
			a.log.Info("dcr "+string(x.Operation), fields...)
		} else {
			a.log.Debug("dcr read", fields...)
		}
	}
	errCode, _ := data["error"].(string)
	registryCounts.count(time.Now(), event, errCode)
	// A lifecycle event was written with the registration (the Commit of the registrar's
	// store write); a rejection wrote nothing, so its event is recorded here.
	if event == EventRejected {
		a.history.add(requestContext(x), data, event, "")
	}
	if event != "" && a.events != nil {
		a.events.Emit(a.ctx, event, data)
	}
}

func outcomeOf(status int) string {
	switch {
	case status >= 500:
		return outcomeError
	case status >= 400:
		return outcomeRejected
	default:
		return outcomeSuccess
	}
}
