package caddyfileargs

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{"65536": 65536, "64KiB": 64 << 10, "1MiB": 1 << 20, "10KB": 10000, "2MB": 2000000, "7B": 7}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("%q: got %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "lots", "1.5MiB", "64 KiB", "KiB", "1e3"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
}

func TestDuration(t *testing.T) {
	read := func(in string, allowZero bool) (time.Duration, error) {
		d := caddyfile.NewTestDispenser(in)
		d.Next()
		v, err := Duration(d, allowZero)
		return time.Duration(v), err
	}
	if v, err := read("leeway 30s", false); err != nil || v != 30*time.Second {
		t.Fatalf("30s: %v %v", v, err)
	}
	if v, err := read("max_age 0", true); err != nil || v != 0 {
		t.Fatalf("0 allowed: %v %v", v, err)
	}
	for _, in := range []string{"leeway soon", "leeway 0", "leeway -1s", "leeway", "leeway 1s 2s"} {
		if _, err := read(in, false); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
	if _, err := read("leeway soon", false); err == nil || !strings.Contains(err.Error(), `leeway: bad duration "soon"`) {
		t.Fatalf("error wording: %v", err)
	}
}

func TestFlag(t *testing.T) {
	read := func(in string, legacy ...string) (bool, error) {
		d := caddyfile.NewTestDispenser(in)
		d.Next()
		return Flag(d, legacy...)
	}
	for in, want := range map[string]bool{"revoke": true, "revoke off": false} {
		if v, err := read(in); err != nil || v != want {
			t.Errorf("%q: %v %v, want %v", in, v, err, want)
		}
	}
	// The previous release's values, where the option took them.
	for in, want := range map[string]bool{"single_use true": true, "single_use false": false, "single_use on": true} {
		if v, err := read(in, "on", "true", "false"); err != nil || v != want {
			t.Errorf("%q (legacy): %v %v, want %v", in, v, err, want)
		}
	}
	for _, in := range []string{"revoke on", "revoke true", "revoke maybe", "revoke off now"} {
		if _, err := read(in); err == nil {
			t.Errorf("%q: want an error (no legacy values)", in)
		}
	}
	if _, err := read("ocsp yes", "on"); err == nil || !strings.Contains(err.Error(), `ocsp takes no value (on) or off, not "yes"`) {
		t.Fatalf("error wording: %v", err)
	}
}
