// Package caddyfileargs reads the typed single arguments that dcrgate's Caddyfile options
// share (durations, byte sizes, on/off flags), so every module words its errors the same way:
// `<option>: bad duration "<value>"`.
package caddyfileargs

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/deprecated"
)

// Duration reads the one duration argument of the option at the dispenser. It must be
// positive, or zero as well when allowZero.
func Duration(d *caddyfile.Dispenser, allowZero bool) (caddy.Duration, error) {
	name := d.Val()
	var v string
	if !d.Args(&v) || d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur < 0 || (dur == 0 && !allowZero) {
		want := "a positive duration"
		if allowZero {
			want = "a duration of 0 or more"
		}
		return 0, d.Errf("%s: bad duration %q (want %s)", name, v, want)
	}
	return caddy.Duration(dur), nil
}

// Size reads the one byte-size argument of the option at the dispenser (see ParseSize).
func Size(d *caddyfile.Dispenser) (int64, error) {
	name := d.Val()
	var v string
	if !d.Args(&v) || d.NextArg() {
		return 0, d.ArgErr()
	}
	n, err := ParseSize(v)
	if err != nil {
		return 0, d.Errf("%s: %v", name, err)
	}
	return n, nil
}

// ParseSize parses a positive byte size such as 65536, 64KiB, 64KB, 1MiB.
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult, num = u.mult, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(num, "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != num {
		return 0, fmt.Errorf("bad size %q (want e.g. 65536, 64KiB, 1MiB)", s)
	}
	return n * mult, nil
}

// Flag reads a boolean option in the style of Caddy's own directives: the option alone turns
// it on, `<option> off` turns it off (as `keepalive off`, `persist_config off`). legacy are
// the values among on, true and false that the option took in the previous release; they
// still work, with a deprecation warning.
func Flag(d *caddyfile.Dispenser, legacy ...string) (bool, error) {
	name := d.Val()
	if !d.NextArg() {
		return true, nil
	}
	v := d.Val()
	if d.NextArg() {
		return false, d.ArgErr()
	}
	if v == "off" {
		return false, nil
	}
	if slices.Contains(legacy, v) {
		switch v {
		case "on", "true":
			deprecated.Caddyfile(d, name+" "+v, name)
			return true, nil
		case "false":
			deprecated.Caddyfile(d, name+" false", name+" off")
			return false, nil
		}
	}
	return false, d.Errf("%s takes no value (on) or off, not %q", name, v)
}
