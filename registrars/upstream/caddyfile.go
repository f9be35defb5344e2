package upstream

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
)

// UnmarshalCaddyfile sets up the registrar. Syntax, inside `dcr`:
//
//	registrar upstream [<registration_path>] {
//	    registration_path <path>            # the backend's RFC 7591 endpoint, reached through the next handler (required)
//	    initial_access_token <token>        # e.g. {env.AS_INITIAL_ACCESS_TOKEN}; resolved at provision
//	    forward_software_statement          # send the SSA as software_statement; default off
//	    max_response_size <size>            # largest backend answer; default 64KiB
//	    timeout <duration>                  # each backend call; default 10s
//	    certificate_bound_access_tokens on|off  # ask the backend for tokens bound to the client's certificate; default on
//	}
//
// With certificate_bound_access_tokens on, every client is registered in the backend with
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
			if d.NextArg() {
				return d.ArgErr()
			}
			u.ForwardSoftwareStatement = true
		case "max_response_size":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			n, err := caddyfileargs.ParseSize(v)
			if err != nil {
				return d.Errf("max_response_size: %v", err)
			}
			u.MaxResponseSize = n
		case "certificate_bound_access_tokens":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			switch v {
			case "on":
				on := true
				u.CertificateBoundAccessTokens = &on
			case "off":
				off := false
				u.CertificateBoundAccessTokens = &off
			default:
				return d.Errf("certificate_bound_access_tokens takes on or off, not %q", v)
			}
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
