package manage

import (
	"context"
	"strconv"
	"strings"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// UpdateClientID: RFC 7592 §2.2 has the client send its client_id in an update, and the
// value must be the client_id being updated; a body naming another client is refused rather
// than silently applied to the one in the path. Omitting it is accepted (OB clients send the
// registration request again, which has none).
func UpdateClientID(claims map[string]any, clientID string) *dcr.Error {
	v, ok := claims["client_id"]
	if !ok || v == nil {
		return nil
	}
	s, isString := v.(string)
	if !isString {
		return dcr.BadMetadata("client_id must be a string, not %s", jose.JSONType(v))
	}
	if s != clientID {
		return dcr.BadMetadata("client_id %s of the request does not match the client_id being updated (%s)", quoteShort(s), quoteShort(clientID))
	}
	return nil
}

// UpdateImmutable: a registration stays with the software and organisation it was made
// for; an update with another's software statement is refused.
func UpdateImmutable(ssa *dcr.SoftwareStatement, rec *dcr.Registration) *dcr.Error {
	if ssa.SoftwareID != rec.SoftwareID {
		return dcr.BadMetadata("software_id cannot change on update (registered %q, got %q)", rec.SoftwareID, ssa.SoftwareID)
	}
	if ssa.OrgID != rec.OrgID {
		return dcr.BadMetadata("org_id cannot change on update")
	}
	return nil
}

// UpdateStep is the built-in first step of the profile phase: the update rules, on update.
type UpdateStep struct{}

// Phase is profile: the rules need the verified software statement and request.
func (UpdateStep) Phase() dcr.Phase { return dcr.PhaseProfile }

// Protect applies UpdateClientID and UpdateImmutable to an update.
func (UpdateStep) Protect(_ context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	if x.Operation != dcr.OpUpdate {
		return dcr.Result{}, nil
	}
	claims := x.RequestClaims
	if claims == nil {
		// signed_request is not configured: the operator accepts unsigned payloads.
		claims = x.UnverifiedClaims
	}
	if err := UpdateClientID(claims, x.ClientID); err != nil {
		return dcr.Result{}, err
	}
	if x.SoftwareStatement == nil {
		return dcr.Result{}, dcr.BadSoftwareStatement("a verified software statement is required")
	}
	if err := UpdateImmutable(x.SoftwareStatement, x.Existing); err != nil {
		return dcr.Result{}, err
	}
	return dcr.Result{}, nil
}

// quoteShort quotes a client-supplied value for a description, cut short.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "..."
	}
	return strconv.Quote(s)
}

// Interface guards
var (
	_ dcr.Protection = UpdateStep{}
	_ dcr.Protection = RegistrationTokenStep{}
)
