package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
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
//	    endpoint      <path>             # default /register (or the argument above)
//	    public_url    <url>              # for registration_client_uri; default https://{host}{endpoint}
//	    max_body_size <size>             # default 64KiB
//	    default_policy on|off            # the embedded default policy when no `policy` is set; default on
//
//	    # protections (dcr.protections.*), in any order; they run as
//	    # mtls, access_token, software_statement, signed_request, others, policy
//	    mtls
//	    software_statement { ... }
//	    signed_request { ... }
//	    <other protection module> { ... }
//
//	    profile {                        # the OB DCR v3.2 metadata rules
//	        token_endpoint_auth_methods <method>...
//	        signing_algs <alg>...
//	        grant_types <grant>...
//	        response_types <type>...     # a multi-word type is quoted: "code id_token"
//	        default_response_types <type>...
//	        application_types <type>...
//	        scopes <scope>...
//	        role_scopes <role> [<scope>...]  # repeatable; merged per role over the
//	                                         # defaults; a role alone allows no scope
//	        always_allowed_scopes <scope>...
//	        require_id_token_signed_response_alg true|false
//	        max_redirect_uri_length <n>
//	    }
//
//	    storage <name> [{ ... }]         # dcr.storage.*; default bolt
//	    registrar <name> [{ ... }]       # dcr.registrars.*; default local
//	    history {                        # what admin.api.dcr shows of each client
//	        max_events <n>               # per client and per software_id; default 100
//	        max_age <duration>           # default 720h
//	    }
//	}
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
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			switch v {
			case "on":
				t := true
				h.DefaultPolicy = &t
			case "off":
				f := false
				h.DefaultPolicy = &f
			default:
				return d.Errf("default_policy takes on or off, not %q", v)
			}
		case "max_body_size":
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
			ns, key := "dcr.storage.", "backend"
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
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("profile: %s needs a value", name)
		}
		list := map[string]*[]string{
			"token_endpoint_auth_methods": &p.AuthMethods,
			"signing_algs":                &p.SigningAlgs,
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
		case "require_id_token_signed_response_alg":
			b, err := strconv.ParseBool(args[0])
			if err != nil || len(args) != 1 {
				return d.Errf("profile: require_id_token_signed_response_alg takes true or false")
			}
			p.RequireIDTokenSignedResponseAlg = &b
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
