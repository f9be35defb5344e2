package signedrequest

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
	"github.com/dcrgate/dcrgate/internal/keyset"
)

// UnmarshalCaddyfile sets up the protection from Caddyfile tokens. Syntax, inside `dcr`:
//
//	signed_request {
//	    audience <aud>...                     # required: this ASPSP's identifiers
//	    algorithms <alg>...                   # default PS256 ES256
//	    keys file|url|jwks <value>            # JSON keys.file|url|jwks; default: the SSA's software_jwks_endpoint
//	                                          # shorthands: jwks_file <path> | jwks_url <url> | jwks <json>
//	    leeway <duration>                     # default 30s
//	    max_age <duration>                    # oldest iat accepted, default 1h
//	    max_lifetime <duration>               # longest exp - iat, default 1h
//	    fetch {                           # limits of the JWKS fetches (see keyset.FetchConfig)
//	        timeout <d>
//	        max_size <size>
//	        refresh_interval <d>
//	        cache_ttl <d>
//	        tls_trust_pool file <pem>...  # reverse_proxy's tls_* options; trusted_roots is the deprecated name
//	    }
//	    revoked_keys {                    # the SSA's software_jwks_revoked_endpoint, org_jwks_revoked_endpoint
//	        fail_mode hard|soft           # a set that cannot be fetched: hard (default) 503, soft accept and warn
//	    }
//	}
//
// Every option is named as its JSON field, apart from the key-source shorthands.
func (s *SignedRequest) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var keys keyset.Config
		if s.Keys != nil {
			keys = *s.Keys
		}
		if ok, err := keys.UnmarshalCaddyfileKey(d); ok {
			if err != nil {
				return err
			}
			s.Keys = &keys
			continue
		}
		switch d.Val() {
		case "audience":
			s.Audience = append(s.Audience, d.RemainingArgs()...)
			if len(s.Audience) == 0 {
				return d.ArgErr()
			}
		case "algorithms":
			s.Algorithms = d.RemainingArgs()
			if len(s.Algorithms) == 0 {
				return d.ArgErr()
			}
		case "leeway", "max_age", "max_lifetime":
			name := d.Val()
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			switch name {
			case "leeway":
				s.Leeway = dur
			case "max_age":
				s.MaxAge = dur
			default:
				s.MaxLifetime = dur
			}
		case "fetch":
			if err := s.Fetch.UnmarshalCaddyfile(d); err != nil {
				return err
			}
		case "revoked_keys":
			if d.NextArg() {
				return d.ArgErr()
			}
			for n2 := d.Nesting(); d.NextBlock(n2); {
				switch d.Val() {
				case "fail_mode":
					if !d.Args(&s.RevokedKeys.FailMode) || d.NextArg() {
						return d.ArgErr()
					}
					if err := s.RevokedKeys.validate(); err != nil {
						return d.Err(err.Error())
					}
				default:
					return d.Errf("revoked_keys: unknown option %q", d.Val())
				}
			}
		default:
			return d.Errf("signed_request: unknown option %q", d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*SignedRequest)(nil)
