// Package mtls is the dcr.protections.mtls protection: every DCR call must come over mutual
// TLS, and a management call must come from the software the registration belongs to.
package mtls

import (
	"context"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/manage"
)

func init() {
	caddy.RegisterModule(MTLS{})
}

// MTLS requires the TLS client certificate that Caddy verified (configure `tls { client_auth
// { ... } }` with the directory's CAs as the trust pool). Caddy has already checked the chain;
// this protection makes the certificate mandatory on the DCR endpoint even when the site uses
// `verify_if_given` for other paths.
//
// On register and update, the certificate must present the `tls_client_auth_subject_dn` the
// client asks for (checked by the OB profile) and belong to the SSA's software (checked by the
// software_statement protection). On read, update and delete it must identify the same
// organisation and software (OU/organizationIdentifier = org_id, CN = software_id) as the
// registration; anything else is a refusal vote, which the handler answers with the same 401
// as an unknown client or a wrong token (manage.Authorize), so that a caller learns nothing
// about registrations it does not own.
type MTLS struct{}

// CaddyModule returns the Caddy module information.
func (MTLS) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.protections.mtls",
		New: func() caddy.Module { return new(MTLS) },
	}
}

// Phase is authenticate: the certificate says who calls.
func (MTLS) Phase() dcr.Phase { return dcr.PhaseAuthenticate }

// Protect checks the presence of the certificate and, on management calls, its binding
// (manage.CertificateOwner): a certificate of other software refuses the call.
func (MTLS) Protect(_ context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	if x.Operation == dcr.OpRegister {
		if x.ClientCert == nil {
			return dcr.Result{}, dcr.BadMetadata("mutual TLS is required: no TLS client certificate was presented")
		}
		return dcr.Result{}, nil
	}
	if x.Existing == nil {
		// Unknown client: manage.Authorize refuses it, whatever the certificate.
		return dcr.Result{}, nil
	}
	if err := manage.CertificateOwner(x.ClientCert, x.Existing); err != nil {
		return dcr.Result{Vote: dcr.Refuse(err.Error())}, nil
	}
	return dcr.Result{}, nil
}

// UnmarshalCaddyfile sets up the protection. Syntax, inside `dcr`: `mtls` (no options).
func (m *MTLS) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("mtls takes no options")
	}
	return nil
}

// Interface guards
var (
	_ dcr.Protection        = (*MTLS)(nil)
	_ caddyfile.Unmarshaler = (*MTLS)(nil)
)
