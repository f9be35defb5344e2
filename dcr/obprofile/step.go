package obprofile

import (
	"context"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obresponse"
)

// Step is the OB profile as a step of the pipeline: the built-in step of the profile phase
// (after the update rules) that makes the metadata to register of the verified request, on
// register and update.
type Step struct {
	// Config is the profile; nil is the defaults.
	Config *Config
}

// Phase is profile.
func (Step) Phase() dcr.Phase { return dcr.PhaseProfile }

// Protect applies the profile rules (Apply) to the verified request claims and returns the
// metadata and the names the client sent it under (SentNames).
func (s Step) Protect(_ context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	if x.Operation != dcr.OpRegister && x.Operation != dcr.OpUpdate {
		return dcr.Result{}, nil
	}
	if x.SoftwareStatement == nil {
		return dcr.Result{}, dcr.BadSoftwareStatement("a verified software statement is required")
	}
	claims := x.RequestClaims
	if claims == nil {
		// signed_request is not configured: the operator accepts unsigned payloads.
		claims = x.UnverifiedClaims
	}
	md, derr := Apply(s.Config, Input{Claims: claims, SSA: x.SoftwareStatement, ClientCert: x.ClientCert})
	if derr != nil {
		return dcr.Result{}, derr
	}
	// What the registry assigns is never taken from the client.
	for _, k := range obresponse.ServerAssigned {
		delete(md, k)
	}
	return dcr.Result{Metadata: md, MetadataNames: SentNames(claims)}, nil
}

// Interface guards
var _ dcr.Protection = Step{}
