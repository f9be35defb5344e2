package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
	"github.com/dcrgate/dcrgate/internal/deprecated"
)

func init() {
	httpcaddyfile.RegisterDirective("dcr", parseCaddyfile)
	// DCR must see its requests before anything answers or proxies them: ahead of handle,
	// route, respond and reverse_proxy, so a catch-all `handle` or `respond` cannot shadow the
	// endpoint. Registering the order here means users never write an `order` option.
	httpcaddyfile.RegisterDirectiveOrder("dcr", httpcaddyfile.Before, "invoke")
}

func parseCaddyfile(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return h.NewRoute(nil, handler), nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	dcr [<endpoint>] {
//	    endpoint      <path>             # default /register (the argument above is its shorthand)
//	    public_url    <url>              # for registration_client_uri; default https://{host}{endpoint}
//	    max_size      <size>             # largest request body; default 64KiB
//	    default_policy [off]             # the embedded default policy when no `policy` is set; default on
//	    max_concurrent <n>               # registrations and updates running at once; default 2 × GOMAXPROCS
//	    queue_timeout  <duration>        # wait for a slot before answering 503 + Retry-After; default 1s
//
//	    # protections (dcr.protections.*); each runs in the phase it declares
//	    # (authenticate: mtls, access_token; verify_statement: software_statement;
//	    # verify_request: signed_request; decide: policy), in this order within a phase
//	    mtls
//	    software_statement { ... }
//	    signed_request { ... }
//	    <other protection module> { ... }
//
//	    profile {                        # the OB DCR v3.2 metadata rules
//	        token_endpoint_auth_methods <method>...
//	        algorithms <alg>...
//	        grant_types <grant>...
//	        response_types <type>...     # a multi-word type is quoted: "code id_token"
//	        default_response_types <type>...
//	        application_types <type>...
//	        scopes <scope>...
//	        role_scopes <role> [<scope>...]  # repeatable; merged per role over the
//	                                         # defaults; a role alone allows no scope
//	        always_allowed_scopes <scope>...
//	        require_id_token_signed_response_alg [off]   # default on
//	        max_redirect_uri_length <n>  # characters, not a size: default 256
//	    }
//
//	    storage <name> [{ ... }]         # dcr.storage.* (JSON "storage": {"storage": "<name>"}); default bolt
//	    registrar <name> [{ ... }]       # dcr.registrars.* (JSON "registrar": {"registrar": "<name>"}); default local
//	    history {                        # what admin.api.dcr shows of each client
//	        max_events <n>               # per client and per software_id; default 100
//	        max_age <duration>           # default 720h
//	    }
//	}
//
// Every option is named as its JSON field. The previous release's names still adapt, with a
// deprecation warning: max_body_size (max_size), default_policy on (default_policy),
// profile signing_algs (algorithms), require_id_token_signed_response_alg true|false
// (require_id_token_signed_response_alg [off]).
//
// The directive takes no matcher: it claims only its endpoint paths and passes every other
// request to the next handler. Use a site block or `handle` to scope it to a host.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		h.Endpoint = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		switch name {
		case "endpoint", "public_url":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			if name == "endpoint" {
				h.Endpoint = v
			} else {
				h.PublicURL = v
			}
		case "default_policy":
			on, err := caddyfileargs.Flag(d, "on")
			if err != nil {
				return err
			}
			h.DefaultPolicy = &on
		case "max_concurrent":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return d.Errf("max_concurrent takes a positive number of calls, not %q", v)
			}
			h.MaxConcurrent = n
		case "queue_timeout":
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			h.QueueTimeout = dur
		case "max_size", "max_body_size":
			if name == "max_body_size" {
				deprecated.Caddyfile(d, "max_body_size", "max_size")
			}
			n, err := caddyfileargs.Size(d)
			if err != nil {
				return err
			}
			h.MaxBodySize = n
		case "profile":
			if err := h.unmarshalProfile(d); err != nil {
				return err
			}
		case "history":
			if err := h.unmarshalHistory(d); err != nil {
				return err
			}
		case "storage", "registrar":
			if !d.NextArg() {
				return d.ArgErr()
			}
			modName := d.Val()
			ns, key := "dcr.storage.", "storage"
			if name == "registrar" {
				ns, key = "dcr.registrars.", "registrar"
			}
			unm, err := caddyfile.UnmarshalModule(d, ns+modName)
			if err != nil {
				return err
			}
			raw := caddyconfig.JSONModuleObject(unm, key, modName, nil)
			if name == "storage" {
				h.StorageRaw = raw
			} else {
				h.RegistrarRaw = raw
			}
		default:
			if _, err := caddy.GetModule("dcr.protections." + name); err != nil {
				return d.Errf("unknown dcr option or protection %q", name)
			}
			unm, err := caddyfile.UnmarshalModule(d, "dcr.protections."+name)
			if err != nil {
				return err
			}
			h.ProtectionsRaw = append(h.ProtectionsRaw, caddyconfig.JSONModuleObject(unm, "protection", name, nil))
		}
	}
	return nil
}

func (h *Handler) unmarshalProfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	p := &h.Profile
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name == "require_id_token_signed_response_alg" {
			on, err := caddyfileargs.Flag(d, "true", "false")
			if err != nil {
				return err
			}
			p.RequireIDTokenSignedResponseAlg = &on
			continue
		}
		if name == "signing_algs" {
			deprecated.Caddyfile(d, "profile signing_algs", "profile algorithms")
			name = "algorithms"
		}
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("profile: %s needs a value", name)
		}
		list := map[string]*[]string{
			"token_endpoint_auth_methods": &p.AuthMethods,
			"algorithms":                  &p.SigningAlgs,
			"grant_types":                 &p.GrantTypes,
			"response_types":              &p.ResponseTypes,
			"default_response_types":      &p.DefaultResponseTypes,
			"application_types":           &p.ApplicationTypes,
			"scopes":                      &p.Scopes,
			"always_allowed_scopes":       &p.AlwaysAllowedScopes,
		}
		if dst, ok := list[name]; ok {
			*dst = append(*dst, args...)
			continue
		}
		switch name {
		case "role_scopes":
			if p.RoleScopes == nil {
				p.RoleScopes = map[string][]string{}
			}
			// A role alone allows no scope (an empty list, not null, so the role still
			// replaces its default).
			scopes := p.RoleScopes[args[0]]
			if scopes == nil {
				scopes = []string{}
			}
			p.RoleScopes[args[0]] = append(scopes, args[1:]...)
		case "max_redirect_uri_length":
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 || len(args) != 1 {
				return d.Errf("profile: max_redirect_uri_length takes a positive number")
			}
			p.MaxRedirectURILength = n
		default:
			return d.Errf("profile: unknown option %q", name)
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
