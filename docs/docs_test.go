// Package docs holds the documentation's tests: every ```caddyfile block of README.md and
// docs/*.md adapts, every ```json block parses and, where it is a module config, loads (see
// internal/docstest for the conventions), and the README's curl walkthrough registers a
// client at a real gateway.
package docs

import (
	"os"
	"path/filepath"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/dcrgate/dcrgate"
	"github.com/dcrgate/dcrgate/internal/docstest"
)

// docFiles are README.md and docs/*.md, relative to this directory.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join("..", "README.md")}, files...)
}

func TestDocBlocks(t *testing.T) {
	env := docstest.NewEnv(t)
	var total docstest.Result
	for _, file := range docFiles(t) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r := docstest.Check(filepath.Base(file), src, env)
		for _, err := range r.Errors {
			t.Error(err)
		}
		t.Logf("%s: %d caddyfile blocks adapted, %d json blocks checked, %d syntax summaries", filepath.Base(file), r.Caddyfile, r.JSON, r.Syntax)
		total.Caddyfile += r.Caddyfile
		total.JSON += r.JSON
		total.Syntax += r.Syntax
	}
	// The extractor finding nothing would pass every doc silently.
	if total.Caddyfile < 10 || total.JSON < 2 {
		t.Fatalf("only %d caddyfile and %d json blocks found: the extractor is broken", total.Caddyfile, total.JSON)
	}
}
