package caddymodule

import (
	"crypto/x509"
	"maps"
	"sync"
	"sync/atomic"
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
//
// The log line's fields are built directly; the event's data (the same names and values) is
// built only where something reads it: the Caddy event, when the events app is configured, and
// a rejection's history entry, when the rejection names a software_id.
func (a *auditor) record(x *dcr.Exchange, clientID string, status int, e *dcr.Error, took time.Duration) {
	var softwareID, orgID string
	named := true
	switch {
	case x.SoftwareStatement != nil:
		softwareID, orgID = x.SoftwareStatement.SoftwareID, x.SoftwareStatement.OrgID
	case x.Existing != nil:
		softwareID, orgID = x.Existing.SoftwareID, x.Existing.OrgID
	default:
		named = false
	}
	var subject string
	if x.ClientCert != nil {
		subject = certSubjects.of(x.ClientCert)
	}
	outcome, errCode, reason := outcomeSuccess, "", ""
	if e != nil {
		// The reason is the real one, also where the answer is deliberately uninformative
		// (a refused management call answers the same for every cause).
		outcome, errCode, reason = outcomeOf(e.Status), e.Code, e.AuditReason()
	}

	fields := make([]zap.Field, 0, 12)
	fields = append(fields, zap.String("operation", string(x.Operation)), zap.Int("status", status))
	if clientID != "" {
		fields = append(fields, zap.String("client_id", clientID))
	}
	if named {
		fields = append(fields, zap.String("software_id", softwareID), zap.String("org_id", orgID))
	}
	if x.ClientCert != nil {
		fields = append(fields, zap.String("cert_subject", subject))
	}
	fields = append(fields, zap.Duration("duration", took), zap.String("outcome", outcome))

	var event string
	switch {
	case e != nil:
		fields = append(fields, zap.String("error", errCode), zap.String("reason", reason))
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
	registryCounts.count(time.Now(), event, errCode)

	// A lifecycle event was written with the registration (the Commit of the registrar's
	// store write); a rejection wrote nothing, so its event is recorded here. A rejection
	// that names no software (one refused before the software statement was verified, a
	// replay among them) has no history to go in (historyKeeper.add).
	toHistory := event == EventRejected && softwareID != "" && a.history != nil && a.history.store != nil
	toEvents := event != "" && a.events != nil
	if !toHistory && !toEvents {
		return
	}
	data := map[string]any{"operation": string(x.Operation), "status": status, "outcome": outcome}
	if clientID != "" {
		data["client_id"] = clientID
	}
	if named {
		data["software_id"], data["org_id"] = softwareID, orgID
	}
	if x.ClientCert != nil {
		data["cert_subject"] = subject
	}
	if e != nil {
		data["error"], data["reason"] = errCode, reason
	}
	if toHistory {
		a.history.add(requestContext(x), data, event, "")
	}
	if toEvents {
		a.events.Emit(a.ctx, event, data)
	}
}

// certSubjects are the subject DNs of the client certificates seen, as strings: formatting a
// DN (pkix.Name.String) was a tenth of a replay's time and a quarter of its allocations, and a
// gateway sees the same few TPP certificates on every call.
var certSubjects = subjectCache{max: 1024}

// subjectCache maps a certificate's DER subject to its formatted DN. Reads take no lock: the
// map is replaced, never changed, when a subject is added (rarely: a gateway sees a few TPP
// certificates). It is bounded: once it holds max subjects the next one starts a new map
// (mTLS client certificates come from the configured CAs, so the working set is the TPPs',
// far below the bound).
type subjectCache struct {
	max int
	mu  sync.Mutex // serializes the writers
	m   atomic.Pointer[map[string]string]
}

// of is cert's subject DN as pkix.Name.String formats it. A parsed certificate's Subject is
// what its RawSubject says, so the DER is the key; a certificate without it (one built in
// memory, not parsed) is formatted each time.
func (c *subjectCache) of(cert *x509.Certificate) string {
	if len(cert.RawSubject) == 0 {
		return cert.Subject.String()
	}
	if m := c.m.Load(); m != nil {
		if s, ok := (*m)[string(cert.RawSubject)]; ok {
			return s
		}
	}
	s := cert.Subject.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	var next map[string]string
	if old := c.m.Load(); old != nil && len(*old) < c.max {
		next = maps.Clone(*old)
	} else {
		next = make(map[string]string, 1)
	}
	next[string(cert.RawSubject)] = s
	c.m.Store(&next)
	return s
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
