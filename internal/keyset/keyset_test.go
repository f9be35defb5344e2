package keyset

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"none":         {},
		"two":          {File: "a", URL: "https://x"},
		"http url":     {URL: "http://x.example/jwks"},
		"relative url": {URL: "/jwks"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if err := (Config{URL: "https://x.example/jwks"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenFileAndInline(t *testing.T) {
	if _, err := (Config{JWKS: []byte(`{"keys":[]}`)}).Open(nil); err == nil {
		t.Fatal("an empty inline set must be refused")
	}
	if _, err := (Config{File: filepath.Join(t.TempDir(), "missing.json")}).Open(nil); err == nil {
		t.Fatal("a missing file must be refused at load time")
	}
}

func testContext(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func TestFetchConfigTrustedRoots(t *testing.T) {
	ctx := testContext(t)
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (FetchConfig{TrustedRoots: []string{bad}}).Acquire(ctx); err == nil {
		t.Fatal("a PEM file without certificates must be refused")
	}
	a, err := (FetchConfig{}).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := (FetchConfig{}).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	defer b.Release()
	if a.Fetcher != b.Fetcher {
		t.Fatal("one fetch configuration must share one fetcher")
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`fetch {
		timeout 3s
		max_size 64KiB
		refresh_interval 30s
		cache_ttl 10m
		trusted_roots a.pem b.pem
	}`)
	d.Next()
	var fc FetchConfig
	if err := fc.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if fc.MaxSize != 64<<10 || fc.Timeout == 0 || fc.CacheTTL == 0 || fc.RefreshInterval == 0 {
		t.Fatalf("%+v", fc)
	}
	// The deprecated trusted_roots adapts to the tls_trust_pool it stands for.
	if fc.TLS == nil || string(fc.TLS.CARaw) != `{"pem_files":["a.pem","b.pem"],"provider":"file"}` {
		t.Fatalf("trusted_roots a.pem b.pem gave tls %+v", fc.TLS)
	}
	for _, bad := range []string{"fetch {\n timeout never\n}", "fetch {\n max_size 0\n}", "fetch {\n bogus 1\n}", "fetch {\n trusted_roots\n}", "fetch extra"} {
		d := caddyfile.NewTestDispenser(bad)
		d.Next()
		if err := new(FetchConfig).UnmarshalCaddyfile(d); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	var c Config
	d = caddyfile.NewTestDispenser("jwks_file a.json")
	d.Next()
	if ok, err := c.UnmarshalCaddyfileKey(d); !ok || err != nil || c.File != "a.json" {
		t.Fatalf("jwks_file: %v %v %+v", ok, err, c)
	}
	d = caddyfile.NewTestDispenser("jwks_url https://x")
	d.Next()
	if ok, err := c.UnmarshalCaddyfileKey(d); !ok || err == nil {
		t.Fatal("a second key source must be refused")
	}
	d = caddyfile.NewTestDispenser("jwks {notjson")
	d.Next()
	if ok, err := new(Config).UnmarshalCaddyfileKey(d); !ok || err == nil {
		t.Fatal("inline jwks must be JSON")
	}
}

// TestUnmarshalCaddyfileKeys: `keys file|url|jwks <value>` is named as the JSON and gives what
// its shorthands give; one source only.
func TestUnmarshalCaddyfileKeys(t *testing.T) {
	parse := func(in string) (Config, error) {
		var c Config
		d := caddyfile.NewTestDispenser(in)
		for d.Next() {
			if ok, err := c.UnmarshalCaddyfileKey(d); !ok {
				t.Fatalf("%q: not taken for a key source", in)
			} else if err != nil {
				return c, err
			}
		}
		return c, nil
	}
	for long, short := range map[string]string{
		"keys file a.json":        "jwks_file a.json",
		"keys url https://x/jwks": "jwks_url https://x/jwks",
		`keys jwks {"keys":[]}`:   `jwks {"keys":[]}`,
	} {
		l, err1 := parse(long)
		s, err2 := parse(short)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(l, s) || l.IsZero() {
			t.Errorf("%q gave %+v %v; %q gave %+v %v", long, l, err1, short, s, err2)
		}
	}
	for in, want := range map[string]string{
		"keys":                         "keys takes file",
		"keys path a.json":             `not "path"`,
		"keys file":                    "wrong argument count",
		"keys file a.json b.json":      "takes one value",
		"keys jwks nope":               "not valid JSON",
		"keys file a.json\njwks_url u": "already set",
	} {
		if _, err := parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", in, err, want)
		}
	}
}
