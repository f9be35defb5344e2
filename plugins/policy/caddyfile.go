package policy

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
)

// UnmarshalCaddyfile sets up the protection from Caddyfile tokens. Syntax, inside `dcr`:
//
//	policy {
//	    defaults [off]               # the embedded default set and its data; default on
//	    modules  <file|dir|embedded:path>...   # Rego v1 modules (repeatable); *_test.rego skipped
//	    data     <file|dir>...       # JSON/YAML data, merged over the defaults' data (repeatable)
//	    decision <ref>               # default data.dcr.decision
//	    timeout  <duration>          # one evaluation; default 100ms
//	}
//
// Every option is named as its JSON field; `defaults on|true|false`, the previous release's
// values, still adapt with a deprecation warning. `policy` alone runs the embedded default set. It runs after every other protection and the
// OB profile rules, whatever its position in the block.
func (p *Policy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch name := d.Val(); name {
		case "defaults":
			on, err := caddyfileargs.Flag(d, "on", "true", "false")
			if err != nil {
				return err
			}
			p.Defaults = &on
		case "modules", "data":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if name == "modules" {
				p.Modules = append(p.Modules, args...)
			} else {
				p.Data = append(p.Data, args...)
			}
		case "decision":
			if !d.Args(&p.Decision) || d.NextArg() {
				return d.ArgErr()
			}
		case "timeout":
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			p.Timeout = dur
		default:
			return d.Errf("policy: unknown option %q", name)
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Policy)(nil)
