package caddymodule

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// recordAdmin audits an operator's change through admin.api.dcr on the handler's audit logger
// and as its Caddy event, with the operator's identity as actor and the operator's reason
// (a strike-off's), if any.
func (a *auditor) recordAdmin(ctx context.Context, op dcr.Operation, rec *dcr.Registration, actor, reason string, status int, errCode string) {
	if a == nil {
		return
	}
	outcome := outcomeOf(status)
	fields := []zap.Field{
		zap.String("operation", string(op)), zap.String("client_id", rec.ClientID),
		zap.String("software_id", rec.SoftwareID), zap.String("org_id", rec.OrgID),
		zap.String("actor", actor), zap.String("via", "admin_api"), zap.Int("status", status), zap.String("outcome", outcome),
	}
	if reason != "" {
		fields = append(fields, zap.String("reason", reason))
	}
	if errCode != "" {
		fields = append(fields, zap.String("error", errCode))
		a.log.Warn("dcr admin "+string(op)+" refused", fields...)
		return
	}
	a.log.Info("dcr admin "+string(op), fields...)
	if op == dcr.OpDelete {
		registryCounts.count(time.Now(), EventDeleted, "")
		a.history.add(ctx, map[string]any{"operation": string(op), "client_id": rec.ClientID,
			"software_id": rec.SoftwareID, "org_id": rec.OrgID, "status": status, "reason": reason}, EventDeleted, actor)
	}
	if a.events != nil && op == dcr.OpDelete {
		a.events.Emit(a.ctx, EventDeleted, map[string]any{
			"operation": string(op), "client_id": rec.ClientID, "software_id": rec.SoftwareID, "org_id": rec.OrgID,
			"actor": actor, "via": "admin_api", "status": status, "outcome": outcome, "reason": reason,
		})
	}
}
