package policy

import (
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dcrgate/dcrgate/dcr"
)

// Outcomes of a decision, as logged.
const (
	outcomeAllow     = "allow"
	outcomeDeny      = "deny"
	outcomeError     = "error"
	outcomeTimeout   = "timeout"
	outcomeUndefined = "undefined"
)

// record is what the decision log says about one evaluation. It holds identifiers only:
// never the software statement, a token, a secret or the input.
type record struct {
	id         string
	operation  dcr.Operation
	clientID   string
	softwareID string
	orgID      string
	eval       time.Duration
	decision   *Decision
}

func (p *Policy) newRecord(x *dcr.Exchange) *record {
	r := &record{id: uuid.NewString(), operation: x.Operation, clientID: x.ClientID}
	switch {
	case x.SoftwareStatement != nil:
		r.softwareID, r.orgID = x.SoftwareStatement.SoftwareID, x.SoftwareStatement.OrgID
	case x.Existing != nil:
		r.softwareID, r.orgID = x.Existing.SoftwareID, x.Existing.OrgID
	}
	return r
}

// log writes the one decision log line of an evaluation: info for allow and deny, error when
// no decision could be made (the request then failed closed).
func (p *Policy) log(r *record, outcome string, cause error) {
	level, msg := zapcore.InfoLevel, "policy decision"
	if outcome != outcomeAllow && outcome != outcomeDeny {
		level, msg = zapcore.ErrorLevel, "policy decision failed"
	}
	ce := p.logger.Check(level, msg)
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.String("decision_id", r.id),
		zap.String("policy", shortHash(p.hash)),
		zap.String("operation", string(r.operation)),
		zap.String("client_id", r.clientID),
		zap.String("software_id", r.softwareID),
		zap.String("org_id", r.orgID),
		zap.String("outcome", outcome),
		zap.Bool("allow", outcome == outcomeAllow),
		zap.Duration("eval_duration", r.eval),
	}
	if d := r.decision; d != nil {
		if !d.Allow {
			fields = append(fields, zap.String("error", d.Error), zap.String("error_description", d.ErrorDescription))
		}
		if d.PolicyError != "" {
			fields = append(fields, zap.String("policy_error", d.PolicyError))
		}
		if len(d.Reasons) > 0 {
			fields = append(fields, zap.Strings("reasons", d.Reasons))
		}
		if d.Allow && len(d.Metadata) > 0 {
			fields = append(fields, zap.Strings("overridden", slices.Sorted(maps.Keys(d.Metadata))))
		}
	}
	if cause != nil {
		fields = append(fields, zap.String("cause", cause.Error()))
	}
	ce.Write(fields...)
}
