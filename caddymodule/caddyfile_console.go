package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("dcr_console", parseConsoleCaddyfile)
	// A terminal handler, ordered with the others that answer (after respond, before
	// reverse_proxy), so authentication (basic_auth, forward_auth) runs ahead of it.
	httpcaddyfile.RegisterDirectiveOrder("dcr_console", httpcaddyfile.Before, "reverse_proxy")
}

func parseConsoleCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	c := new(Console)
	if err := c.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return c, nil
}

// UnmarshalCaddyfile sets up the console handler. Syntax:
//
//	dcr_console [<matcher>] {
//	    endpoint <path>     # show only the dcr handler at this path; default every one
//	    server   <name>     # and only in this HTTP server (srv0, ...), when two share a path
//	}
//
// Mount it under a path with `handle_path`, which strips the prefix the console's paths are
// relative to, behind the operator's own authentication:
//
//	handle_path /console/* {
//	    basic_auth {
//	        operator <bcrypt hash>
//	    }
//	    dcr_console
//	}
func (c *Console) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var v string
		if !d.Args(&v) || d.NextArg() {
			return d.ArgErr()
		}
		switch name {
		case "endpoint":
			c.Endpoint = v
		case "server":
			c.Server = v
		default:
			return d.Errf("unknown dcr_console option %q", name)
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Console)(nil)
