package caddymodule

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dcrgate/dcrgate/dcr"
)

// refuseStruckOff is the handler's own deny list check, after the decide phase and before the
// commit: a registration or update of a struck-off org_id or software_id (admin.api.dcr POST
// /dcr/revocations) is refused whatever policy runs. The default policy refuses it first
// with the same error (policies/struck_off.rego, from input.denied), so that a policy author
// sees it and `caddy dcr policy eval` explains it; this check keeps the refusal when the
// default policy is off or a custom policy ignores input.denied: lifting the entry is the
// only way back, no policy can allow a struck-off TPP. The entries are the call's registry's:
// what the policy read for input.denied, not read again.
func (h *Handler) refuseStruckOff(ctx context.Context, x *dcr.Exchange, reg *dcr.CallRegistry) error {
	if x.Operation != dcr.OpRegister && x.Operation != dcr.OpUpdate {
		return nil
	}
	org, software := registrationIDs(x)
	if org == "" && software == "" {
		return nil
	}
	entries, err := reg.Denials(ctx, org, software)
	if err != nil {
		return h.storeError(err)
	}
	if len(entries) == 0 {
		return nil
	}
	return struckOffError(entries[0])
}

// registrationIDs are the org_id and software_id a call registers under.
func registrationIDs(x *dcr.Exchange) (org, software string) {
	switch {
	case x.SoftwareStatement != nil:
		return x.SoftwareStatement.OrgID, x.SoftwareStatement.SoftwareID
	case x.Existing != nil:
		return x.Existing.OrgID, x.Existing.SoftwareID
	}
	return "", ""
}

// struckOffError is the TPP's answer; the operator's reason stays in the admin API and the
// audit log (it may be internal).
func struckOffError(e dcr.DenyEntry) *dcr.Error {
	return &dcr.Error{Status: http.StatusBadRequest, Code: dcr.CodeInvalidSoftwareStatement,
		Description: fmt.Sprintf("%s %q is struck off: its registrations are refused until the gateway's operator lifts it", e.Kind, e.ID)}
}
