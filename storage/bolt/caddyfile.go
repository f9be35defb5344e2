package bolt

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
)

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. The dispenser is positioned at
// the module name (the handler's `storage` directive has been consumed):
//
//	bolt [{
//	    path           <file>
//	    sweep_interval <duration>
//	}]
//
// so that a handler's `storage bolt { path /var/lib/dcr/registry.db }` selects this module.
// Without a path the file is dcr/registry.db in Caddy's data directory.
func (s *Store) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "path":
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.Path = d.Val()
		case "sweep_interval":
			interval, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			s.SweepInterval = interval
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Store)(nil)
