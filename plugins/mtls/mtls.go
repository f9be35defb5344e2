// Package mtls is the dcr.protections.mtls protection: every DCR call must come over mutual
// TLS, and a management call must come from the software the registration belongs to.
package mtls

import (
	"context"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/dcr"
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
// registration; anything else refuses the call (dcr.Exchange.RefuseManagement), which the
// handler answers with the same 401 as an unknown client or a wrong token, so that a caller
// learns nothing about registrations it does not own.
type MTLS struct{}

// CaddyModule returns the Caddy module information.
func (MTLS) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.protections.mtls",
		New: func() caddy.Module { return new(MTLS) },
	}
}

// Protect checks the presence of the certificate and, on management calls, its binding.
func (MTLS) Protect(_ context.Context, x *dcr.Exchange) error {
	switch x.Operation {
	case dcr.OpRegister:
		if x.ClientCert == nil {
			return dcr.BadMetadata("mutual TLS is required: no TLS client certificate was presented")
		}
		return nil
	default:
		if x.Existing == nil {
			// Unknown client: the handler refuses the call once every protection ran.
			return nil
		}
		if x.ClientCert == nil {
			x.RefuseManagement("no TLS client certificate was presented")
			return nil
		}
		org, sw := dcr.CertificateIdentity(x.ClientCert)
		if org != x.Existing.OrgID || sw != x.Existing.SoftwareID {
			x.RefuseManagement(fmt.Sprintf("the TLS client certificate is of org_id %q, software_id %q, not of the registration's", org, sw))
		}
		return nil
	}
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
