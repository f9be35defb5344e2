package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcrgate/dcrgate/caddymodule"
	"github.com/dcrgate/dcrgate/internal/deprecated"
	"github.com/dcrgate/dcrgate/registrars/upstream"
)

// observeDeprecations sends the deprecation warnings to an observer for the rest of the test.
func observeDeprecations(t *testing.T) *observer.ObservedLogs {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	t.Cleanup(deprecated.SetLogger(zap.New(core)))
	return logs
}

// deprecatedNames are the "deprecated" fields of the warnings logged.
func deprecatedNames(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		if v, ok := e.ContextMap()["deprecated"].(string); ok {
			out = append(out, v)
		}
	}
	return out
}

func adaptFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	input, _, _ := strings.Cut(string(data), "\n----------\n")
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// TestCaddyfileRenamedOptions: every name of the previous release adapts to the JSON of its new
// name, and logs a deprecation warning naming it; the new names log none.
func TestCaddyfileRenamedOptions(t *testing.T) {
	logs := observeDeprecations(t)
	oldJSON := adaptFile(t, "testdata/adapt/renamed_options_old.caddyfiletest")
	warned := deprecatedNames(logs)
	logs.TakeAll()
	newJSON := adaptFile(t, "testdata/adapt/renamed_options_new.caddyfiletest")
	if !bytes.Equal(oldJSON, newJSON) {
		t.Fatalf("the old names adapt to other JSON than the new ones\n--- old\n%s\n--- new\n%s", oldJSON, newJSON)
	}
	if n := logs.Len(); n != 0 {
		t.Fatalf("the new names logged %d deprecation warnings: %v", n, deprecatedNames(logs))
	}
	want := []string{
		"max_body_size", "default_policy on", "fetch trusted_roots", "access_token revocation",
		"access_token client trusted_roots", "single_use false", "profile signing_algs",
		"require_id_token_signed_response_alg false", "max_response_size",
		"certificate_bound_access_tokens on", "defaults true", "ocsp on",
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(warned, "\n")+"\n", w+"\n") {
			t.Errorf("no deprecation warning for %q (warned: %q)", w, warned)
		}
	}
	if len(warned) != len(want) {
		t.Errorf("%d warnings, want one per old name (%d): %q", len(warned), len(want), warned)
	}
}

// TestUnmarshalRenamedJSON: the handler's and the upstream registrar's previous JSON names are
// read into the new fields with a warning each; both names at once are refused.
func TestUnmarshalRenamedJSON(t *testing.T) {
	logs := observeDeprecations(t)
	var h caddymodule.Handler
	old := `{"max_body_size": 1000, "profile": {"signing_algs": ["PS256"]}, "storage": {"backend": "redis", "address": "r:6379"}}`
	if err := caddy.StrictUnmarshalJSON([]byte(old), &h); err != nil {
		t.Fatal(err)
	}
	if h.MaxBodySize != 1000 || len(h.Profile.SigningAlgs) != 1 || h.Profile.SigningAlgs[0] != "PS256" {
		t.Fatalf("old names not folded in: max_size %d, algorithms %v", h.MaxBodySize, h.Profile.SigningAlgs)
	}
	var storage map[string]any
	if err := json.Unmarshal(h.StorageRaw, &storage); err != nil || storage["storage"] != "redis" || storage["backend"] != nil || storage["address"] != "r:6379" {
		t.Fatalf("storage.backend not renamed: %s (%v)", h.StorageRaw, err)
	}
	if got := strings.Join(deprecatedNames(logs), ","); got != "max_body_size,profile.signing_algs,storage.backend" {
		t.Fatalf("warnings %q", got)
	}

	var u upstream.Upstream
	if err := caddy.StrictUnmarshalJSON([]byte(`{"registration_path": "/reg", "max_response_size": 2048}`), &u); err != nil || u.MaxResponseSize != 2048 {
		t.Fatalf("upstream max_response_size: %d %v", u.MaxResponseSize, err)
	}

	logs.TakeAll()
	var fresh caddymodule.Handler
	if err := caddy.StrictUnmarshalJSON([]byte(`{"max_size": 1000, "profile": {"algorithms": ["ES256"]}, "storage": {"storage": "caddy"}}`), &fresh); err != nil || fresh.MaxBodySize != 1000 || fresh.Profile.SigningAlgs[0] != "ES256" {
		t.Fatalf("new names: %+v %v", fresh, err)
	}
	if logs.Len() != 0 {
		t.Fatalf("the new names warned: %v", deprecatedNames(logs))
	}

	for name, cfg := range map[string]string{
		"max_size twice":   `{"max_size": 1, "max_body_size": 2}`,
		"algorithms twice": `{"profile": {"algorithms": ["PS256"], "signing_algs": ["ES256"]}}`,
		"storage twice":    `{"storage": {"storage": "caddy", "backend": "redis"}}`,
		"unknown field":    `{"max_sizes": 1}`,
		"unknown profile":  `{"profile": {"algs": ["PS256"]}}`,
	} {
		var h caddymodule.Handler
		if err := caddy.StrictUnmarshalJSON([]byte(cfg), &h); err == nil {
			t.Errorf("%s: %s was accepted", name, cfg)
		}
	}
	if err := caddy.StrictUnmarshalJSON([]byte(`{"max_size": 1, "max_response_size": 2}`), new(upstream.Upstream)); err == nil {
		t.Error("upstream: max_size and max_response_size both accepted")
	}
	if err := caddy.StrictUnmarshalJSON([]byte(`{"max_sizes": 1}`), new(upstream.Upstream)); err == nil {
		t.Error("upstream: an unknown field was accepted")
	}
}
