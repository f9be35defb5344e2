package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/dcrgate/dcrgate"
)

var update = flag.Bool("update", false, "rewrite the golden files of the adapt tests")

// TestCaddyfileAdapt adapts every testdata/adapt/*.caddyfiletest: the Caddyfile above the
// `----------` line must adapt to exactly the JSON below it, or, when that part starts with
// `error:`, fail with an error containing the rest of the line.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no adapt tests found: %v", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".caddyfiletest"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(data), "\n----------\n")
			if !ok {
				t.Fatalf("%s: no ---------- separator", f)
			}
			out, _, adaptErr := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			want = strings.TrimSpace(want)
			if msg, isErr := strings.CutPrefix(want, "error:"); isErr {
				if adaptErr == nil {
					t.Fatalf("adapting succeeded, want an error containing %q", strings.TrimSpace(msg))
				}
				if !strings.Contains(adaptErr.Error(), strings.TrimSpace(msg)) {
					t.Fatalf("error %q does not contain %q", adaptErr, strings.TrimSpace(msg))
				}
				return
			}
			if adaptErr != nil {
				t.Fatalf("adapting: %v", adaptErr)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSpace(buf.String())
			if *update {
				if err := os.WriteFile(f, []byte(input+"\n----------\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Fatalf("adapted JSON differs from the golden file (run go test -run TestCaddyfileAdapt -update to accept)\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}

// TestExampleCaddyfileAdapts keeps the repository's example Caddyfile valid, with dcr ahead of
// reverse_proxy without an `order` option.
func TestExampleCaddyfileAdapts(t *testing.T) {
	data, err := os.ReadFile("../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(data, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting the example Caddyfile: %v", err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	dcrAt, proxyAt := bytes.Index(out, []byte(`"handler":"dcr"`)), bytes.Index(out, []byte(`"handler":"reverse_proxy"`))
	if dcrAt < 0 || proxyAt < 0 || dcrAt > proxyAt {
		t.Fatalf("dcr (at %d) must come before reverse_proxy (at %d)", dcrAt, proxyAt)
	}
}
