// Command xcaddy builds a custom Caddy with the xcaddy library from the plugin manifest
// (xcaddy.json at the repository root): `make xcaddy`. The manifest is xcaddy's own Builder
// configuration plus "output"; relative replacement paths are resolved against the manifest's
// directory, so the build uses this checkout.
//
// It lives in its own Go module so that xcaddy's dependencies stay out of the gateway's.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/xcaddy"
)

type manifest struct {
	xcaddy.Builder
	Output string `json:"output"`
}

func main() {
	path := flag.String("manifest", "xcaddy.json", "the plugin manifest")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "xcaddy:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m manifest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if m.CaddyVersion == "" || len(m.Plugins) == 0 {
		return fmt.Errorf("%s: caddy_version and plugins are required", path)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return err
	}
	for i, r := range m.Replacements {
		if p := string(r.New); strings.HasPrefix(p, ".") {
			m.Replacements[i].New = xcaddy.ReplacementPath(filepath.Join(base, p))
		}
	}
	out := m.Output
	if out == "" {
		out = "bin/caddy-xcaddy"
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(base, out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	fmt.Printf("building Caddy %s with %d plugin(s) into %s\n", m.CaddyVersion, len(m.Plugins), out)
	return m.Builder.Build(context.Background(), out)
}
