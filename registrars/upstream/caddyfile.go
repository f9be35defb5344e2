package upstream

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
	"github.com/dcrgate/dcrgate/internal/deprecated"
)

// UnmarshalCaddyfile sets up the registrar. Syntax, inside `dcr`:
//
//	registrar upstream [<registration_path>] {
//	    registration_path <path>            # the backend's RFC 7591 endpoint, reached through the next handler (required;
//	                                        # the argument above is its shorthand)
//	    initial_access_token <token>        # e.g. {env.AS_INITIAL_ACCESS_TOKEN}; resolved at provision
//	    forward_software_statement [off]    # send the SSA as software_statement; default off
//	    max_size <size>                     # largest backend answer; default 64KiB
//	    timeout <duration>                  # each backend call; default 10s
//	    certificate_bound_access_tokens [off]  # ask the backend for tokens bound to the client's certificate; default on
//	}
//
// Every option is named as its JSON field. The previous release's max_response_size (max_size)
// and certificate_bound_access_tokens on (the option alone) still adapt, with a deprecation
// warning.
//
// With certificate_bound_access_tokens (the default), every client is registered in the backend with
// tls_client_certificate_bound_access_tokens true (RFC 8705 §3) unless its accepted metadata
// sets the field itself; the TPP's registration shows only what it was accepted with.
func (u *Upstream) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		u.RegistrationPath = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "registration_path":
			if !d.Args(&u.RegistrationPath) || d.NextArg() {
				return d.ArgErr()
			}
		case "initial_access_token":
			if !d.Args(&u.InitialAccessToken) || d.NextArg() {
				return d.ArgErr()
			}
		case "forward_software_statement":
			on, err := caddyfileargs.Flag(d)
			if err != nil {
				return err
			}
			u.ForwardSoftwareStatement = on
		case "max_size", "max_response_size":
			if d.Val() == "max_response_size" {
				deprecated.Caddyfile(d, "max_response_size", "max_size")
			}
			n, err := caddyfileargs.Size(d)
			if err != nil {
				return err
			}
			u.MaxResponseSize = n
		case "certificate_bound_access_tokens":
			on, err := caddyfileargs.Flag(d, "on")
			if err != nil {
				return err
			}
			u.CertificateBoundAccessTokens = &on
		case "timeout":
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			u.Timeout = dur
		default:
			return d.Errf("unknown upstream registrar option %q", d.Val())
		}
	}
	if u.RegistrationPath == "" {
		return d.Err("upstream registrar: registration_path is required")
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Upstream)(nil)
