package dcrcmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyInput runs `policy input` for the shared sandbox and writes the input to a file.
func policyInput(t *testing.T, args ...string) (string, map[string]any) {
	t.Helper()
	sb := testSandbox(t)
	r := run(t, append([]string{"policy", "input", "--sandbox", sb.Dir}, args...)...).want(t, ExitOK)
	var in map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("policy input printed no JSON: %v\n%s", err, r.stdout)
	}
	p := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(p, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, in
}

func evalResultOf(t *testing.T, r result) evalResult {
	t.Helper()
	var res evalResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("policy eval printed no JSON: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return res
}

func TestPolicyInputShape(t *testing.T) {
	sb := testSandbox(t)
	_, in := policyInput(t)
	ssa, _ := in["software_statement"].(map[string]any)
	claims, _ := ssa["claims"].(map[string]any)
	if in["operation"] != "register" || claims["org_id"] != sb.TPP(1).OrgID || ssa["directory"] != sb.DirectoryIssuer {
		t.Fatalf("unexpected input: %v", in)
	}
	md, _ := in["metadata"].(map[string]any)
	if md["scope"] == nil || md["token_endpoint_auth_method"] != "tls_client_auth" {
		t.Fatalf("metadata is not the profile's: %v", md)
	}
	cert, _ := in["client_certificate"].(map[string]any)
	if cert["org_id"] != sb.TPP(1).OrgID || cert["sha256_thumbprint"] == "" {
		t.Fatalf("client_certificate: %v", cert)
	}
	raw, _ := json.Marshal(in)
	ssaJWT, _ := os.ReadFile(sb.TPP(1).SSAFile)
	if strings.Contains(string(raw), strings.TrimSpace(string(ssaJWT))) {
		t.Fatal("the input must not carry the compact software statement")
	}

	_, upd := policyInput(t, "--operation", "update", "--registrations", "3")
	if upd["existing_registration"] == nil || upd["client_id"] != "example-client-id" || upd["registrations_for_software"] != float64(3) {
		t.Fatalf("update input: %v", upd)
	}
	run(t, "policy", "input", "--sandbox", sb.Dir, "--operation", "patch").want(t, ExitUsage)
	run(t, "policy", "input").want(t, ExitUsage)
}

func TestPolicyEvalDefaults(t *testing.T) {
	good, _ := policyInput(t)
	res := evalResultOf(t, run(t, "policy", "eval", "--input", good).want(t, ExitOK))
	if !res.Allow || res.Status != 201 || res.RegisteredMetadata["scope"] == nil {
		t.Fatalf("want allowed (201) with the registered metadata, got %+v", res)
	}

	revoked, _ := policyInput(t, "--ssa-claim", "org_status=Revoked")
	res = evalResultOf(t, run(t, "policy", "eval", "--input", revoked).want(t, ExitRejected))
	if res.Allow || res.Status != 400 || res.Error != "unapproved_software_statement" || !strings.Contains(res.ErrorDescription, "Revoked") {
		t.Fatalf("want the org_status denial, got %+v", res)
	}

	struck, in := policyInput(t, "--denied-org")
	if d, _ := in["denied"].(map[string]any); d["org"] != true || d["software"] != false {
		t.Fatalf("input.denied = %v", in["denied"])
	}
	res = evalResultOf(t, run(t, "policy", "eval", "--input", struck).want(t, ExitRejected))
	if res.Error != "invalid_software_statement" || !strings.Contains(res.ErrorDescription, "is struck off") {
		t.Fatalf("want the struck_off denial, got %+v", res)
	}

	full, _ := policyInput(t, "--registrations", "10")
	res = evalResultOf(t, run(t, "policy", "eval", "--input", full).want(t, ExitRejected))
	if !strings.Contains(res.ErrorDescription, "already has 10 registrations") {
		t.Fatalf("want the registrations limit, got %+v", res)
	}

	// Data changes the defaults: production accepts only Live software (the sandbox is Test).
	prod := filepath.Join(t.TempDir(), "prod.yaml")
	_ = os.WriteFile(prod, []byte("dcr:\n  config:\n    environment: production\n"), 0o644)
	res = evalResultOf(t, run(t, "policy", "eval", "--input", good, "--data", prod).want(t, ExitRejected))
	if !strings.Contains(res.ErrorDescription, "production") {
		t.Fatalf("want the software_mode denial, got %+v", res)
	}
}

func TestPolicyEvalOwnPolicy(t *testing.T) {
	good, _ := policyInput(t)
	dir := t.TempDir()
	narrow := filepath.Join(dir, "narrow.rego")
	_ = os.WriteFile(narrow, []byte("package dcr.rules.narrow\nimport rego.v1\nmetadata := {\"scope\": \"openid accounts\"}\n"), 0o644)
	res := evalResultOf(t, run(t, "policy", "eval", "--input", good, "--policy", narrow).want(t, ExitOK))
	if res.RegisteredMetadata["scope"] != "openid accounts" || res.Metadata["scope"] != "openid accounts" {
		t.Fatalf("the override must show in the registered metadata: %+v", res)
	}

	undefined := filepath.Join(dir, "undefined.rego")
	_ = os.WriteFile(undefined, []byte("package dcr\nimport rego.v1\ndecision := true if input.operation == \"none\"\n"), 0o644)
	res = evalResultOf(t, run(t, "policy", "eval", "--input", good, "--no-defaults", "--policy", undefined).want(t, ExitRejected))
	if res.Status != 503 || !strings.Contains(res.Cause, "undefined") {
		t.Fatalf("an undefined decision fails closed: %+v", res)
	}

	broken := filepath.Join(dir, "broken.rego")
	_ = os.WriteFile(broken, []byte("package dcr\ndecision := \n"), 0o644)
	r := run(t, "policy", "eval", "--input", good, "--no-defaults", "--policy", broken).want(t, ExitRejected)
	if !strings.Contains(r.stderr, "broken.rego") {
		t.Fatalf("a compile error names the file: %s", r.stderr)
	}
	run(t, "policy", "eval").want(t, ExitUsage)
	run(t, "policy", "eval", "--input", filepath.Join(dir, "missing.json")).want(t, ExitUsage)
}

// policy eval reports the status the gateway answers, per operation, for an allow and a deny.
func TestPolicyEvalStatusPerOperation(t *testing.T) {
	deny := filepath.Join(t.TempDir(), "deny.rego")
	_ = os.WriteFile(deny, []byte("package dcr\nimport rego.v1\ndecision := {\"allow\": false, \"error\": \"invalid_client_metadata\", \"error_description\": \"no\"}\n"), 0o644)
	for _, tc := range []struct {
		op              string
		allowed, denied int
	}{
		{"register", 201, 400},
		{"update", 200, 400},
		{"read", 200, 403},
		{"delete", 204, 403},
	} {
		in, _ := policyInput(t, "--operation", tc.op)
		res := evalResultOf(t, run(t, "policy", "eval", "--input", in).want(t, ExitOK))
		if !res.Allow || res.Status != tc.allowed {
			t.Errorf("%s allowed: want status %d, got %+v", tc.op, tc.allowed, res)
		}
		res = evalResultOf(t, run(t, "policy", "eval", "--input", in, "--no-defaults", "--policy", deny).want(t, ExitRejected))
		if res.Allow || res.Status != tc.denied || res.Error != "invalid_client_metadata" {
			t.Errorf("%s denied: want status %d, got %+v", tc.op, tc.denied, res)
		}
	}

	noOp := filepath.Join(t.TempDir(), "no-op.json")
	_ = os.WriteFile(noOp, []byte(`{"metadata": {}}`), 0o644)
	r := run(t, "policy", "eval", "--input", noOp).want(t, ExitUsage)
	if !strings.Contains(r.stderr, "operation") {
		t.Fatalf("an input without an operation names the field: %s", r.stderr)
	}
}
