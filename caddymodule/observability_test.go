package caddymodule_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// eventRecorder is an events handler that remembers what the dcr handler emitted.
type eventRecorder struct{}

var (
	recordedMu sync.Mutex
	recorded   []caddy.Event
)

func (eventRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.dcr_test_recorder", New: func() caddy.Module { return new(eventRecorder) }}
}

func (eventRecorder) Handle(_ context.Context, e caddy.Event) error {
	recordedMu.Lock()
	defer recordedMu.Unlock()
	recorded = append(recorded, e)
	return nil
}

func (*eventRecorder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	return nil
}

func init() { caddy.RegisterModule(eventRecorder{}) }

var _ caddyevents.Handler = eventRecorder{}

// TestMetricsAuditAndEvents runs Caddy in this process with the admin endpoint, an audit log
// file and an events subscription, then checks that a registration and a rejection move the
// right counters, write the right audit lines and emit the right events.
func TestMetricsAuditAndEvents(t *testing.T) {
	dir := t.TempDir()
	port, adminPort, backend := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	sb, err := sandbox.Init(sandbox.Options{Dir: filepath.Join(dir, "sandbox"), TPPs: 1, BaseURL: fmt.Sprintf("https://localhost:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	auditLog := filepath.Join(dir, "audit.log")
	block := strings.NewReplacer("{{SANDBOX}}", sb.Dir, "{{BASE}}", fmt.Sprintf("https://localhost:%d", port), "{{PORT}}", fmt.Sprint(port)).Replace(gatewaytest.DefaultDCRBlock)
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	https_port %d
	http_port %d
	storage file_system %s
	persist_config off
	log dcraudit {
		output file %s
		format json
		include http.handlers.dcr.audit
	}
	events {
		on dcr.registered dcr_test_recorder
		on dcr.rejected dcr_test_recorder
	}
}

localhost:%d {
	tls %s/server/cert.pem %s/server/key.pem {
		client_auth {
			mode verify_if_given
			trust_pool file %s/ca/bundle.pem
		}
	}
	handle_path /sandbox/jwks/* {
		root * %s/jwks
		file_server
	}
	dcr /register {
%s
	}
	respond "not dcr" 200
}
`, adminPort, port, backend, filepath.Join(dir, "data"), auditLog, port, sb.Dir, sb.Dir, sb.Dir, sb.Dir, block)
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(out, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	// The dcr metrics are process-wide: other tests in this binary may have counted already.
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	before := scrape(t, admin)

	endpoint := fmt.Sprintf("https://localhost:%d/register", port)
	c, err := tppclient.FromSandbox(sb, sb.TPP(1), endpoint, fmt.Sprintf("https://localhost:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	ctx := gatewaytest.Context(t)
	body, _ := c.Sign(c.Claims(), tppclient.SignOptions{})
	resp, err := c.Register(ctx, body, "application/jose", "")
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("register: %v %+v", err, resp)
	}
	clientID := resp.JSON["client_id"].(string)
	token := resp.JSON["registration_access_token"].(string)
	bad := c.Claims()
	bad["aud"] = "https://other.example"
	badBody, _ := c.Sign(bad, tppclient.SignOptions{})
	if resp, err = c.Register(ctx, badBody, "application/jose", ""); err != nil || resp.Status != http.StatusBadRequest {
		t.Fatalf("bad register: %v %+v", err, resp)
	}
	if resp, err = c.Register(ctx, body, "application/jose", ""); err != nil || resp.Status != http.StatusBadRequest {
		t.Fatalf("replay: %v %+v", err, resp)
	}

	// Events.
	recordedMu.Lock()
	events := append([]caddy.Event(nil), recorded...)
	recordedMu.Unlock()
	var registered, rejected int
	for _, e := range events {
		switch e.Name() {
		case "dcr.registered":
			registered++
			if e.Data["client_id"] != clientID || e.Data["software_id"] != sb.TPP(1).SoftwareID || e.Data["org_id"] != sb.TPP(1).OrgID {
				t.Errorf("dcr.registered data %v", e.Data)
			}
		case "dcr.rejected":
			rejected++
			if e.Data["error"] != "invalid_client_metadata" || e.Data["reason"] == "" {
				t.Errorf("dcr.rejected data %v", e.Data)
			}
		}
	}
	if registered != 1 || rejected != 2 {
		t.Fatalf("events: %d registered, %d rejected; want 1 and 2", registered, rejected)
	}

	// Metrics on Caddy's admin endpoint, counted from before the three calls.
	after := scrape(t, admin)
	for series, want := range map[string]float64{
		`caddy_dcr_requests_total{error="",operation="register",outcome="success"}`:                         1,
		`caddy_dcr_requests_total{error="invalid_client_metadata",operation="register",outcome="rejected"}`: 2,
		`caddy_dcr_replays_rejected_total`: 1,
		// The replay is refused by the screen, before the verifying stages.
		`caddy_dcr_stage_duration_seconds_count{stage="screen"}`:             3,
		`caddy_dcr_stage_duration_seconds_count{stage="signed_request"}`:     2,
		`caddy_dcr_stage_duration_seconds_count{stage="software_statement"}`: 2,
		`caddy_dcr_stage_duration_seconds_count{stage="registrar"}`:          1,
	} {
		if got := after.delta(t, before, series); got != want {
			t.Errorf("%s grew by %v, want %v", series, got, want)
		}
	}
	if _, ok := after["caddy_dcr_jwks_fetches_total"]; !ok {
		t.Error("metrics lack caddy_dcr_jwks_fetches_total")
	}
	for series := range after {
		if strings.Contains(series, clientID) || strings.Contains(series, sb.TPP(1).SoftwareID) {
			t.Error("ids must never be metric labels")
		}
	}

	// The audit log: one line per lifecycle change and per rejection, without secrets.
	deadline := time.Now().Add(5 * time.Second)
	var lines []map[string]any
	for time.Now().Before(deadline) {
		lines = readJSONLines(t, auditLog)
		if len(lines) >= 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(lines) != 3 {
		t.Fatalf("audit lines: %d, want 3: %v", len(lines), lines)
	}
	raw, _ := os.ReadFile(auditLog)
	for _, secret := range []string{token, c.SoftwareStatement} {
		if secret != "" && strings.Contains(string(raw), secret) {
			t.Fatal("the audit log holds a secret or the software statement")
		}
	}
	if lines[0]["logger"] != "http.handlers.dcr.audit" || lines[0]["outcome"] != "success" || lines[0]["client_id"] != clientID || lines[0]["operation"] != "register" {
		t.Fatalf("first audit line %v", lines[0])
	}
	if lines[1]["outcome"] != "rejected" || lines[1]["error"] != "invalid_client_metadata" {
		t.Fatalf("second audit line %v", lines[1])
	}
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
