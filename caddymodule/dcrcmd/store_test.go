package dcrcmd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/caddyserver/certmagic"

	_ "github.com/dcrgate/dcrgate/caddymodule"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
	"github.com/dcrgate/dcrgate/storage/bolt"
	"github.com/dcrgate/dcrgate/storage/caddystorage"
)

// A caddy-store registry: client-1 live at version 2, client-2 live, client-3 a tombstone;
// one live one-time key and one that expired.
func legacyRegistry(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	src := caddystorage.New(&certmagic.FileStorage{Path: root}, "dcr")
	ctx := t.Context()
	for i := 1; i <= 3; i++ {
		if err := src.Create(ctx, storetest.NewRegistration(i)); err != nil {
			t.Fatal(err)
		}
	}
	rec, _ := src.Get(ctx, "client-1")
	rec.Metadata["client_name"] = "renamed"
	if err := src.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := src.Delete(ctx, "client-3", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Claim(ctx, "jti-live", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Claim(ctx, "jti-expired", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := src.AddDenial(ctx, dcr.DenyEntry{Kind: dcr.DenyOrg, ID: "org-struck-off", Reason: "r", CreatedAt: time.Now().UTC()}, 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // let jti-expired lapse; nothing is asserted on time
	return root
}

func TestStoreMigrate(t *testing.T) {
	root := legacyRegistry(t)
	path := filepath.Join(t.TempDir(), "registry.db")
	args := []string{"store", "migrate", "--from", "caddy", "--to", "bolt", "--storage-root", root, "--path", path}

	r := run(t, args...).want(t, ExitOK)
	for _, want := range []string{
		"registrations: 3 read (2 live, 1 tombstones): 3 copied, 0 already there",
		"one-time keys: 1 unexpired read: 1 copied",
		"deny list: 1 entries read: 1 copied, 0 already there",
		"verified: 3 of 3 registrations",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("first run does not say %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, args...).want(t, ExitOK)
	for _, want := range []string{
		"3 read (2 live, 1 tombstones): 0 copied, 3 already there at the same version, 0 replaced",
		"1 unexpired read: 0 copied, 1 already there",
		"deny list: 1 entries read: 0 copied, 1 already there",
		"verified: 3 of 3",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("second run does not say %q:\n%s", want, r.stdout)
		}
	}

	dst, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	ctx := t.Context()
	got, err := dst.Get(ctx, "client-1")
	if err != nil || got.Version != 2 || got.Metadata["client_name"] != "renamed" {
		t.Errorf("client-1 after migration: %+v, %v", got, err)
	}
	if err := dst.Create(ctx, storetest.NewRegistration(3)); !errors.Is(err, dcr.ErrExists) {
		t.Errorf("the migrated tombstone does not reserve client-3: %v", err)
	}
	if ids, _ := dst.ListBySoftware(ctx, "software-2"); len(ids) != 1 {
		t.Errorf("client-2 is not indexed: %v", ids)
	}
	if ok, _ := dst.Claim(ctx, "jti-live", time.Minute); ok {
		t.Error("a migrated jti can be used again")
	}
	if ok, _ := dst.Claim(ctx, "jti-expired", time.Minute); !ok {
		t.Error("an expired jti was carried over")
	}
	if info, err := dst.Migrated(); err != nil || info == nil || info.Registrations != 3 {
		t.Errorf("migration note = %+v, %v", info, err)
	}
}

func TestStoreMigrateUsage(t *testing.T) {
	for _, args := range [][]string{
		{"store", "migrate", "--from", "redis", "--to", "bolt"},
		{"store", "migrate", "--from", "caddy"},
		{"store", "migrate", "--from", "caddy", "--to", "bolt", "--storage-root", "x", "--config", "y"},
		{"store", "migrate", "--from", "caddy", "--to", "bolt", "extra"},
	} {
		r := run(t, args...).want(t, ExitUsage)
		if r.stderr == "" {
			t.Errorf("%q: no message", args)
		}
	}
}

// --config: Caddy's storage and the bolt path come from the config.
func TestStoreMigrateFromConfig(t *testing.T) {
	root := legacyRegistry(t)
	path := filepath.Join(t.TempDir(), "from-config.db")
	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	caddyfile := "{\n\tstorage file_system " + root + "\n}\n\n:8443 {\n\tdcr {\n\t\tstorage bolt {\n\t\t\tpath " + path + "\n\t\t}\n\t}\n}\n"
	if err := os.WriteFile(cfg, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "store", "migrate", "--from", "caddy", "--to", "bolt", "--config", cfg, "--adapter", "caddyfile").want(t, ExitOK)
	if !strings.Contains(r.stdout, "into "+path) || !strings.Contains(r.stdout, "verified: 3 of 3") {
		t.Errorf("output:\n%s", r.stdout)
	}
}
