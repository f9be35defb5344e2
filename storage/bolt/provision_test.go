package bolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
)

// loadCaddy runs a Caddy config whose storage is the file system at root, for the duration
// of the test.
func loadCaddy(t *testing.T, root string) caddy.Context {
	t.Helper()
	// persist false: a test must not autosave its config into the user's Caddy config dir.
	cfg := fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},"storage":{"module":"file_system","root":%q}}`, root)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return caddy.ActiveContext()
}

func loadStore(ctx caddy.Context, path string, implicit bool) (*Store, error) {
	raw, _ := json.Marshal(map[string]any{"path": path, "check_caddy_storage": implicit, "sweep_interval": "20ms"})
	mod, err := ctx.LoadModuleByID("dcr.storage.bolt", raw)
	if err != nil {
		return nil, err
	}
	return mod.(*Store), nil
}

// The implicit default refuses to start while Caddy storage holds an unmigrated registry of
// the caddy store, says what to run, and creates nothing; an explicit `storage bolt` and a
// migrated file start.
func TestImplicitDefaultRefusesUnmigratedRegistry(t *testing.T) {
	root := t.TempDir()
	ctx := loadCaddy(t, root)
	// Where the default puts it when Caddy's storage is the default one: under the prefix.
	path := filepath.Join(root, "dcr", "registry.db")

	// Nothing of the caddy store in Caddy storage: the default starts, and starts again with
	// its own file under dcr/.
	for range 2 {
		s, err := loadStore(ctx, path, true)
		if err != nil {
			t.Fatalf("the default store on a Caddy storage without a caddy-store registry: %v", err)
		}
		_ = s.Cleanup()
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	legacy := filepath.Join(root, "dcr", "registrations", strings.Repeat("a", 64)+".json")
	if err := os.MkdirAll(filepath.Dir(legacy), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, []byte(`{"client_id":"old"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadStore(ctx, path, true)
	if err == nil {
		t.Fatal("the default store started while Caddy storage holds an unmigrated registry")
	}
	for _, want := range []string{
		"caddy dcr store migrate --from caddy --to bolt --storage-root " + root + " --path " + path,
		"storage caddy", root,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%v", want, err)
		}
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("a refused start created %s: %v", path, statErr)
	}

	// An existing file without the migration note is refused too (and kept).
	s, err := loadStore(ctx, path, false)
	if err != nil {
		t.Fatalf("explicit storage bolt is refused: %v", err)
	}
	_ = s.Cleanup()
	if _, err := loadStore(ctx, path, true); err == nil {
		t.Fatal("the default store started on a file that was never migrated into")
	}

	// Migrated: starts, and its sweeper runs until Cleanup.
	m, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.MarkMigrated(MigrationInfo{From: "test", At: time.Now(), Registrations: 1}); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	s, err = loadStore(ctx, path, true)
	if err != nil {
		t.Fatalf("the default store on a migrated file: %v", err)
	}
	if ok, err := s.Claim(t.Context(), "k", time.Millisecond); !ok || err != nil {
		t.Fatal(ok, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.Check()
		if err != nil {
			t.Fatal(err)
		}
		if st.OnceKeys == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the provisioned sweeper did not remove an expired key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Cleanup(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.sweeper.Done():
	default:
		t.Error("the sweeper outlived Cleanup")
	}
}
