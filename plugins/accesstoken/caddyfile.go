package accesstoken

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
	"github.com/dcrgate/dcrgate/internal/deprecated"
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
//	    keys file|url|jwks <value>          # JWT access tokens (JSON keys.file|url|jwks);
//	                                        # shorthands: jwks_file <path>, jwks_url <https url>, jwks <json>
//	    algorithms <alg>...                 # JWT; default PS256 ES256 (none and HS* never)
//	    fetch {                             # limits of the JWKS fetches
//	        timeout <d>
//	        max_size <size>
//	        refresh_interval <d>
//	        cache_ttl <d>
//	        tls_trust_pool file <pem>...    # reverse_proxy's tls_* options; default the system roots
//	    }
//	    introspection [<endpoint>] [{       # the argument is the shorthand of endpoint
//	        endpoint  <https url>           # RFC 7662 endpoint
//	        cache_ttl <duration>            # longest reuse of an answer, never past exp; default 1m
//	    }]
//
//	    revocation_endpoint <https url>     # RFC 7009 endpoint
//	    client [<client_id>] {              # the gateway's client for introspection and revocation
//	        client_id    <client_id>        # the argument above is its shorthand
//	        auth_method  client_secret_basic|private_key_jwt|tls_client_auth
//	        client_secret <secret>          # client_secret_basic; {env.VAR} placeholders work
//	        signing_key  <key pem>          # private_key_jwt
//	        signing_kid  <kid>              # private_key_jwt; default the key's thumbprint
//	        # shorthands, each setting auth_method and its credential on one line:
//	        client_secret_basic <secret>
//	        private_key_jwt <key pem> [<kid>]
//	        tls_client_auth <cert pem> <key pem>   # also reverse_proxy's client certificate option
//	        timeout <duration>              # default 5s
//	        max_size <size>                 # largest answer; default 64KiB
//	        tls_trust_pool file <pem>...    # reverse_proxy's tls_* options; default the system roots
//	    }
//
//	    register [{                         # POST needs a token (protect by access token)
//	        scopes <scope>...               # all required; default dcr_register
//	        single_use [off]                # default on
//	        revoke [off]                    # revoke the token once it registered a client; default off
//	        consumed_ttl <duration>         # memory of a used token without exp; default 24h
//	    }]
//	    manage <read|update|delete|*> registration_token|client_credentials...   # default registration_token; * is all three
//	    client_claim client_id|azp|sub      # JWT claim naming the token's client; default client_id
//	}
//
// Every option is named as its JSON field, apart from the shorthands above. The previous
// release's names still adapt, with a deprecation warning: revocation (revocation_endpoint),
// client trusted_roots (tls_trust_pool file), single_use true|false (single_use [off]).
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
		case "issuer", "revocation_endpoint", "revocation", "client_claim":
			if name == "revocation" {
				deprecated.Caddyfile(d, "access_token revocation", "revocation_endpoint")
			}
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			switch name {
			case "issuer":
				a.Issuer = v
			case "revocation_endpoint", "revocation":
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
	if d.NextArg() {
		in.Endpoint = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for n := d.Nesting(); d.NextBlock(n); {
		switch d.Val() {
		case "endpoint":
			if !d.Args(&in.Endpoint) || d.NextArg() {
				return d.ArgErr()
			}
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
	if in.Endpoint == "" {
		return d.Err("introspection: endpoint is required")
	}
	a.Introspection = in
	return nil
}

func (a *AccessToken) unmarshalClient(d *caddyfile.Dispenser) error {
	c := &Client{}
	if d.NextArg() {
		c.ID = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
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
		// setMethod sets the method named by a shorthand (or auth_method) with lo to hi
		// arguments; the long and the short form of one method go together.
		setMethod := func(method string, lo, hi int) error {
			if c.AuthMethod != "" && c.AuthMethod != method {
				return d.Errf("client: %s: the authentication method is already %s", name, c.AuthMethod)
			}
			if len(args) < lo || len(args) > hi {
				return d.ArgErr()
			}
			c.AuthMethod = method
			return nil
		}
		switch name {
		case "client_id", "client_secret", "signing_key", "signing_kid":
			if len(args) != 1 {
				return d.ArgErr()
			}
			*map[string]*string{"client_id": &c.ID, "client_secret": &c.Secret, "signing_key": &c.SigningKey, "signing_kid": &c.SigningKID}[name] = args[0]
		case "auth_method":
			if len(args) != 1 {
				return d.ArgErr()
			}
			switch args[0] {
			case AuthClientSecretBasic, AuthPrivateKeyJWT, AuthTLSClientAuth:
			default:
				return d.Errf("client: auth_method must be %s, %s or %s, not %q", AuthClientSecretBasic, AuthPrivateKeyJWT, AuthTLSClientAuth, args[0])
			}
			method := args[0]
			args = nil
			if err := setMethod(method, 0, 0); err != nil {
				return err
			}
		case AuthClientSecretBasic:
			if err := setMethod(name, 1, 1); err != nil {
				return err
			}
			c.Secret = args[0]
		case AuthPrivateKeyJWT:
			if err := setMethod(name, 1, 2); err != nil {
				return err
			}
			c.SigningKey = args[0]
			if len(args) == 2 {
				c.SigningKID = args[1]
			}
		case AuthTLSClientAuth:
			if err := setMethod(name, 2, 2); err != nil {
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
			deprecated.Caddyfile(d, "access_token client trusted_roots", "tls_trust_pool file <pem>...")
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
	if c.ID == "" {
		return d.Err("client: client_id is required")
	}
	if c.AuthMethod == "" {
		return d.Errf("client %q: auth_method (or one of its shorthands %s, %s or %s) is required", c.ID, AuthClientSecretBasic, AuthPrivateKeyJWT, AuthTLSClientAuth)
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
			on, err := caddyfileargs.Flag(d, "true", "false")
			if err != nil {
				return err
			}
			r.SingleUse = &on
		case "revoke":
			on, err := caddyfileargs.Flag(d)
			if err != nil {
				return err
			}
			r.Revoke = on
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
