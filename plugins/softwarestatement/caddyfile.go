package softwarestatement

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
)

// UnmarshalCaddyfile sets up the protection from Caddyfile tokens. Syntax, inside `dcr`:
//
//	software_statement {
//	    directory [<issuer>] {                # repeatable: one entry of directories
//	        issuer <issuer>                   # the argument above is its shorthand
//	        keys file|url|jwks <value>        # JSON keys.file|url|jwks; shorthands:
//	                                          # jwks_file <path> | jwks_url <https url> | jwks <inline json>
//	        jwks_hosts <host[:port]>...
//	        software_modes <mode>...          # deprecated (the policy decides: data.dcr.config.software_modes); default none
//	        embedded_jwks [off]               # accept SSAs carrying software_jwks instead of software_jwks_endpoint; default off
//	    }
//	    algorithms <alg>...                   # default PS256 ES256
//	    certificate_binding org_and_software|org|none
//	    max_age <duration>                    # default none
//	    leeway <duration>                     # default 30s
//	    fetch {                           # limits of the JWKS fetches (see keyset.FetchConfig)
//	        timeout <d>
//	        max_size <size>
//	        refresh_interval <d>
//	        cache_ttl <d>
//	        tls_trust_pool file <pem>...  # reverse_proxy's tls_* options; trusted_roots is the deprecated name
//	    }
//	}
//
// Every option is named as its JSON field; `directory` blocks make the directories list.
func (s *SoftwareStatement) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "directory":
			var dir Directory
			if d.NextArg() {
				dir.Issuer = d.Val()
				if d.NextArg() {
					return d.ArgErr()
				}
			}
			for n2 := d.Nesting(); d.NextBlock(n2); {
				if ok, err := dir.Keys.UnmarshalCaddyfileKey(d); ok {
					if err != nil {
						return err
					}
					continue
				}
				switch d.Val() {
				case "issuer":
					if !d.Args(&dir.Issuer) || d.NextArg() {
						return d.ArgErr()
					}
				case "jwks_hosts":
					dir.JWKSHosts = append(dir.JWKSHosts, d.RemainingArgs()...)
					if len(dir.JWKSHosts) == 0 {
						return d.ArgErr()
					}
				case "embedded_jwks":
					on, err := caddyfileargs.Flag(d)
					if err != nil {
						return err
					}
					dir.EmbeddedJWKS = on
				case "software_modes":
					dir.SoftwareModes = append(dir.SoftwareModes, d.RemainingArgs()...)
					if len(dir.SoftwareModes) == 0 {
						return d.ArgErr()
					}
				default:
					return d.Errf("directory: unknown option %q", d.Val())
				}
			}
			if dir.Issuer == "" {
				return d.Err("directory: issuer is required")
			}
			if dir.Keys.IsZero() {
				return d.Errf("directory %q: keys (keys file|url|jwks, or jwks_file, jwks_url, jwks) is required", dir.Issuer)
			}
			s.Directories = append(s.Directories, dir)
		case "algorithms":
			s.Algorithms = d.RemainingArgs()
			if len(s.Algorithms) == 0 {
				return d.ArgErr()
			}
		case "certificate_binding":
			if !d.Args(&s.CertificateBinding) {
				return d.ArgErr()
			}
		case "max_age", "leeway":
			name := d.Val()
			// max_age 0 means no limit; a leeway of 0 is allowed too (exact clocks).
			dur, err := caddyfileargs.Duration(d, true)
			if err != nil {
				return err
			}
			if name == "max_age" {
				s.MaxAge = dur
			} else {
				s.Leeway = dur
			}
		case "fetch":
			if err := s.Fetch.UnmarshalCaddyfile(d); err != nil {
				return err
			}
		default:
			return d.Errf("software_statement: unknown option %q", d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*SoftwareStatement)(nil)
