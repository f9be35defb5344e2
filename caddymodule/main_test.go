package caddymodule

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the in-process tests their own Caddy data directory: a handler provisioned
// without a storage line opens the default bolt store in caddy.AppDataDir(), which must be
// neither the account's real Caddy data nor a file another test process holds locked.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dcrgate-caddymodule-data-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
