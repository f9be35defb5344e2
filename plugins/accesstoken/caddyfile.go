package accesstoken

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
	"github.com/dcrgate/dcrgate/internal/keyset"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
)

// UnmarshalCaddyfile sets up the protection from Caddyfile tokens. Syntax, inside `dcr`:
//
//	access_token {
//	    issuer   <iss>                      # required with JWT tokens; checked in introspection answers carrying iss
//	    audience <aud>...                   # when set, aud must name one
//	    leeway   <duration>                 # clock skew on exp/nbf/iat; default 30s
//
//	    # how tokens are verified, one of:
//	    jwks_file <path> | jwks_url <https url> | jwks <json>   # JWT access tokens
//	    algorithms <alg>...                 # JWT; default PS256 ES256 (none and HS* never)
//	    fetch {                             # limits of the JWKS fetches
//	        timeout <d>
//	        max_size <size>
//	        refresh_interval <d>
//	        cache_ttl <d>
//	        tls_trust_pool file <pem>...    # reverse_proxy's tls_* options; default the system roots
//	    }
//	    introspection <https url> [{
//	        cache_ttl <duration>            # longest reuse of an answer, never past exp; default 1m
//	    }]
//
//	    revocation <https url>              # RFC 7009 endpoint
//	    client <client_id> {                # the gateway's client for introspection and revocation
//	        client_secret_basic <secret>    # one of these three; {env.VAR} placeholders work
//	        private_key_jwt <key pem> [<kid>]
//	        tls_client_auth <cert pem> <key pem>
//	        timeout <duration>              # default 5s
//	        max_size <size>                 # largest answer; default 64KiB
//	        tls_trust_pool file <pem>...    # reverse_proxy's tls_* options; default the system roots
//	                                        # (trusted_roots <pem>... is the deprecated name)
//	    }
//
//	    register [{                         # POST needs a token (protect by access token)
//	        scopes <scope>...               # all required; default dcr_register
//	        single_use true|false           # default true
//	        revoke                          # revoke the token once it registered a client
//	        consumed_ttl <duration>         # memory of a used token without exp; default 24h
//	    }]
//	    manage <read|update|delete|*> registration_token|client_credentials...   # default registration_token
//	    client_claim client_id|azp|sub      # JWT claim naming the token's client; default client_id
//	}
func (a *AccessToken) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var keys keyset.Config
		if a.Keys != nil {
			keys = *a.Keys
		}
		if ok, err := keys.UnmarshalCaddyfileKey(d); ok {
			if err != nil {
				return err
			}
			a.Keys = &keys
			continue
		}
		switch name := d.Val(); name {
		case "issuer", "revocation", "client_claim":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			switch name {
			case "issuer":
				a.Issuer = v
			case "revocation":
				a.RevocationEndpoint = v
			default:
				a.ClientClaim = v
			}
		case "audience", "algorithms":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if name == "audience" {
				a.Audience = append(a.Audience, args...)
			} else {
				a.Algorithms = args
			}
		case "leeway":
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			a.Leeway = dur
		case "fetch":
			if err := a.Fetch.UnmarshalCaddyfile(d); err != nil {
				return err
			}
		case "introspection":
			if err := a.unmarshalIntrospection(d); err != nil {
				return err
			}
		case "client":
			if err := a.unmarshalClient(d); err != nil {
				return err
			}
		case "register":
			if err := a.unmarshalRegister(d); err != nil {
				return err
			}
		case "manage":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("manage <read|update|delete|*> %s|%s...", MethodRegistrationToken, MethodClientCredentials)
			}
			ops := []string{args[0]}
			if args[0] == "*" {
				ops = []string{string(dcr.OpRead), string(dcr.OpUpdate), string(dcr.OpDelete)}
			}
			if a.Manage == nil {
				a.Manage = map[string][]string{}
			}
			for _, op := range ops {
				a.Manage[op] = args[1:]
			}
		default:
			return d.Errf("access_token: unknown option %q", name)
		}
	}
	return nil
}

func (a *AccessToken) unmarshalIntrospection(d *caddyfile.Dispenser) error {
	in := &Introspection{}
	if !d.Args(&in.Endpoint) || d.NextArg() {
		return d.ArgErr()
	}
	for n := d.Nesting(); d.NextBlock(n); {
		switch d.Val() {
		case "cache_ttl":
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			in.CacheTTL = dur
		default:
			return d.Errf("introspection: unknown option %q", d.Val())
		}
	}
	a.Introspection = in
	return nil
}

func (a *AccessToken) unmarshalClient(d *caddyfile.Dispenser) error {
	c := &Client{}
	if !d.Args(&c.ID) || d.NextArg() {
		return d.ArgErr()
	}
	for n := d.Nesting(); d.NextBlock(n); {
		name := d.Val()
		if name != AuthTLSClientAuth {
			// tls_client_auth is both the auth method and reverse_proxy's client certificate
			// option; the other tls_* options are reverse_proxy's.
			if ok, err := tlsclient.UnmarshalCaddyfileOption(d, &c.TLS); ok {
				if err != nil {
					return err
				}
				continue
			}
		}
		args := d.RemainingArgs()
		setMethod := func(lo, hi int) error {
			if c.AuthMethod != "" {
				return d.Errf("client: %s: the authentication method is already %s", name, c.AuthMethod)
			}
			if len(args) < lo || len(args) > hi {
				return d.ArgErr()
			}
			c.AuthMethod = name
			return nil
		}
		switch name {
		case AuthClientSecretBasic:
			if err := setMethod(1, 1); err != nil {
				return err
			}
			c.Secret = args[0]
		case AuthPrivateKeyJWT:
			if err := setMethod(1, 2); err != nil {
				return err
			}
			c.SigningKey = args[0]
			if len(args) == 2 {
				c.SigningKID = args[1]
			}
		case AuthTLSClientAuth:
			if err := setMethod(2, 2); err != nil {
				return err
			}
			if c.TLS == nil {
				c.TLS = new(tlsclient.Config)
			}
			c.TLS.SetClientCertificate(args[0], args[1])
		case "timeout":
			if len(args) != 1 {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(args[0])
			if err != nil || dur <= 0 {
				return d.Errf("timeout: bad duration %q", args[0])
			}
			c.Timeout = caddy.Duration(dur)
		case "max_size":
			if len(args) != 1 {
				return d.ArgErr()
			}
			size, err := caddyfileargs.ParseSize(args[0])
			if err != nil {
				return d.Errf("max_size: %v", err)
			}
			c.MaxSize = size
		case "trusted_roots":
			if len(args) == 0 {
				return d.ArgErr()
			}
			caddy.Log().Named("dcr").Warn("access_token client: trusted_roots is deprecated; use tls_trust_pool file <pem>...")
			if c.TLS == nil {
				c.TLS = new(tlsclient.Config)
			}
			if err := c.TLS.AddTrustedFiles(args...); err != nil {
				return d.Err(err.Error())
			}
		default:
			return d.Errf("client: unknown option %q", name)
		}
	}
	if c.AuthMethod == "" {
		return d.Errf("client %q: one of %s, %s or %s is required", c.ID, AuthClientSecretBasic, AuthPrivateKeyJWT, AuthTLSClientAuth)
	}
	a.Client = c
	return nil
}

func (a *AccessToken) unmarshalRegister(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	r := &Register{}
	for n := d.Nesting(); d.NextBlock(n); {
		switch name := d.Val(); name {
		case "scopes":
			r.Scopes = append(r.Scopes, d.RemainingArgs()...)
			if len(r.Scopes) == 0 {
				return d.ArgErr()
			}
		case "single_use":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return d.Errf("single_use takes true or false, not %q", v)
			}
			r.SingleUse = &b
		case "revoke":
			if d.NextArg() {
				return d.ArgErr()
			}
			r.Revoke = true
		case "consumed_ttl":
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			r.ConsumedTTL = dur
		default:
			return d.Errf("register: unknown option %q", name)
		}
	}
	a.Register = r
	return nil
}

var _ caddyfile.Unmarshaler = (*AccessToken)(nil)
