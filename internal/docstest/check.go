package docstest

import (
	"path/filepath"
	"testing"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

// Env is where a check points sandbox paths and Caddy's storage.
type Env struct {
	SandboxDir string
	StorageDir string
}

// NewEnv lays out a sandbox (one TPP) and a storage directory for a test.
func NewEnv(t testing.TB) Env {
	t.Helper()
	dir := t.TempDir()
	sb, err := sandbox.Init(sandbox.Options{Dir: filepath.Join(dir, "sandbox"), TPPs: 1, BaseURL: "https://localhost:8443"})
	if err != nil {
		t.Fatalf("sandbox init: %v", err)
	}
	return Env{SandboxDir: sb.Dir, StorageDir: filepath.Join(dir, "storage")}
}

// Result counts the blocks a check looked at and holds what failed.
type Result struct {
	Caddyfile, Syntax, JSON int
	Errors                  []error
}

// Check extracts the blocks of one Markdown document and checks each of them.
func Check(file string, src []byte, env Env) Result {
	var r Result
	blocks, err := Extract(file, src)
	if err != nil {
		r.Errors = append(r.Errors, err)
		return r
	}
	for _, b := range blocks {
		switch b.Lang {
		case LangCaddyfile:
			r.Caddyfile++
			if _, err := AdaptCaddyfile(b, env.SandboxDir); err != nil {
				r.Errors = append(r.Errors, err)
			}
		case LangCaddyfileSyntax:
			r.Syntax++
		case LangJSON:
			r.JSON++
			if err := CheckJSON(b, env.SandboxDir, env.StorageDir); err != nil {
				r.Errors = append(r.Errors, err)
			}
		}
	}
	r.Errors = append(r.Errors, CheckSyntaxExamples(blocks)...)
	return r
}
