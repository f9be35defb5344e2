// Package caddyfileargs reads the typed single arguments that dcrgate's Caddyfile options
// share (durations, byte sizes), so every module words its errors the same way:
// `<option>: bad duration "<value>"`.
package caddyfileargs

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
		return 0, d.Errf("%s: bad duration %q", name, v)
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
