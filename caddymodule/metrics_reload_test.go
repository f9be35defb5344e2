package caddymodule_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
)

const registered = `caddy_dcr_requests_total{error="",operation="register",outcome="success"}`

// TestMetricsAcrossReloads: the dcr metrics are process-wide. A successful `caddy reload` keeps
// the counters' values; a rejected one (Caddy's /metrics then serves the rejected config's
// registry) keeps every dcr metric, with the values the running config goes on incrementing,
// whether the config fails before any dcr handler is provisioned (a missing certificate file in
// the tls app) or in the dcr handler itself (a trust pool file without a certificate).
func TestMetricsAcrossReloads(t *testing.T) {
	g, admin := startReloadable(t, gatewaytest.Options{TPPs: 4})
	caddyfile := filepath.Join(g.Dir, "Caddyfile")
	wantCreated(t, register(t, newClient(t, g, 1), ""))
	wantCreated(t, register(t, newClient(t, g, 2), ""))
	m := scrape(t, admin)
	m.want(t, registered, 2)
	m.want(t, `caddy_dcr_stage_duration_seconds_count{stage="registrar"}`, 2)

	if err := reload(t, admin, caddyfile); err != nil {
		t.Fatalf("reload: %v", err)
	}
	m = scrape(t, admin)
	m.want(t, "caddy_config_last_reload_successful", 1)
	m.want(t, registered, 2)
	m.want(t, `caddy_dcr_stage_duration_seconds_count{stage="registrar"}`, 2)
	wantCreated(t, register(t, newClient(t, g, 3), ""))
	before := scrape(t, admin)
	before.want(t, registered, 3)
	before.want(t, `caddy_dcr_stage_duration_seconds_count{stage="registrar"}`, 3)

	text, err := os.ReadFile(caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(g.Dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ name, old, new, refusal string }{
		{"a missing server certificate (the tls app fails before any dcr handler)",
			g.Sandbox.Dir + "/server/cert.pem", filepath.Join(g.Dir, "missing.pem"), "loading certificates"},
		{"an empty trust pool file (the dcr handler fails)",
			"tls_trust_pool file " + g.Sandbox.Dir + "/ca/bundle.pem", "tls_trust_pool file " + empty, "holds no PEM certificate"},
	} {
		broken := strings.Replace(string(text), bad.old, bad.new, 1)
		if broken == string(text) {
			t.Fatalf("%s: the test Caddyfile has no %q to break", bad.name, bad.old)
		}
		path := filepath.Join(g.Dir, "Caddyfile.bad")
		if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := reload(t, admin, path); err == nil || !strings.Contains(err.Error(), bad.refusal) {
			t.Fatalf("%s: reload answered %v, want a refusal with %q", bad.name, err, bad.refusal)
		}
		after := scrape(t, admin)
		// /metrics now serves the rejected config's registry.
		after.want(t, "caddy_config_last_reload_successful", 0)
		var changed []string
		for series, v := range before {
			if got, ok := after[series]; strings.HasPrefix(series, "caddy_dcr_") && (!ok || got != v) {
				changed = append(changed, fmt.Sprintf("%s = %v (present %v), was %v", series, got, ok, v))
			}
		}
		if len(changed) > 0 {
			sort.Strings(changed)
			t.Fatalf("%s: %d dcr series changed or vanished, e.g.\n%s", bad.name, len(changed), strings.Join(changed[:min(5, len(changed))], "\n"))
		}
	}

	// The running config's handlers count on the metrics /metrics shows.
	wantCreated(t, register(t, newClient(t, g, 4), ""))
	m = scrape(t, admin)
	m.want(t, registered, 4)
	m.want(t, `caddy_dcr_stage_duration_seconds_count{stage="registrar"}`, 4)
}

// samples are the series of one /metrics scrape: the name with its labels, and the value.
type samples map[string]float64

func scrape(t *testing.T, admin string) samples {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	s := samples{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("/metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		s[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(s) == 0 {
		t.Fatal("/metrics is empty")
	}
	return s
}

// delta is how much series grew since before (a series absent before counts from zero); it
// fails when series is absent now.
func (s samples) delta(t *testing.T, before samples, series string) float64 {
	t.Helper()
	got, ok := s[series]
	if !ok {
		t.Fatalf("/metrics has no %s", series)
	}
	return got - before[series]
}

func (s samples) want(t *testing.T, series string, want float64) {
	t.Helper()
	got, ok := s[series]
	if !ok {
		t.Fatalf("/metrics has no %s", series)
	}
	if got != want {
		t.Fatalf("%s = %v, want %v", series, got, want)
	}
}
