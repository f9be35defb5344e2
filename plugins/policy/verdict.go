package policy

import (
	"errors"

	"github.com/dcrgate/dcrgate/dcr"
)

// Verdict is what the gateway does with one evaluation of the decision: the one reading of a
// decision, shared by the protection (Protect) and `caddy dcr policy eval`, so that the
// command prints what the gateway answers.
type Verdict struct {
	// Outcome is the decision log's outcome: allow, deny, error, timeout or undefined.
	Outcome string
	// Decision is the interpreted decision; nil when none could be made.
	Decision *Decision
	// Metadata is what register and update register: the metadata with the decision's
	// overrides applied (the metadata itself when there are none). nil on read and delete,
	// and when the call is refused.
	Metadata map[string]any
	// Overrides are the fields the decision overrode, with their values as applied (the
	// handler's dcr.Result.Overrides); nil when it overrode none.
	Overrides map[string]any
	// Err is the refusal: the decision's 400 or 403 on deny; a 503 when no decision could be
	// made or its overrides are not allowed (the gateway fails closed). nil when allowed.
	Err *dcr.Error
}

// Judge reads the result of Engine.Decide (d, err) for operation op. timedOut says that the
// evaluation ran out of its time budget; metadata is the metadata the OB profile produced for
// a register or update.
func Judge(op dcr.Operation, metadata map[string]any, d *Decision, err error, timedOut bool) Verdict {
	switch {
	case err != nil && timedOut:
		return Verdict{Outcome: outcomeTimeout, Err: dcr.Unavailable(err, "the registration policy did not decide in time")}
	case errors.Is(err, ErrUndefined):
		return Verdict{Outcome: outcomeUndefined, Err: dcr.Unavailable(err, "the registration policy made no decision")}
	case err != nil:
		return Verdict{Outcome: outcomeError, Err: dcr.Unavailable(err, "the registration policy could not be evaluated")}
	}
	v := Verdict{Outcome: outcomeAllow, Decision: d}
	if !d.Allow {
		v.Outcome, v.Err = outcomeDeny, d.Rejection(op)
		return v
	}
	if op == dcr.OpRegister || op == dcr.OpUpdate {
		md, err := ApplyOverrides(metadata, d.Metadata)
		if err != nil {
			v.Outcome, v.Err = outcomeError, dcr.Unavailable(err, "the registration policy returned metadata it may not set")
			return v
		}
		v.Metadata = md
		if len(d.Metadata) > 0 {
			v.Overrides = make(map[string]any, len(d.Metadata))
			for k := range d.Metadata {
				v.Overrides[k] = md[k]
			}
		}
	}
	return v
}
