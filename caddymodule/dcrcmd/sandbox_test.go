package dcrcmd

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

// trustFiles are what a gateway is configured with; growing a sandbox must not change them.
var trustFiles = []string{"ca/root.pem", "ca/issuing.pem", "ca/issuing.key", "ca/bundle.pem",
	"server/cert.pem", "server/key.pem", "directory/signing.key", "directory/jwks.json", "sandbox.json",
	"tpps/1/tpp.json", "tpps/1/ssa.jwt", "tpps/1/transport.pem"}

func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range trustFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

func TestSandboxAddTPPKeepsTrust(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	run(t, "sandbox", "init", "--dir", dir, "--base-url", "https://localhost:9443").want(t, ExitOK)
	before := readFiles(t, dir)

	r := run(t, "sandbox", "add-tpp", "--dir", dir, "--count", "2").want(t, ExitOK)
	for name, b := range readFiles(t, dir) {
		if !bytes.Equal(b, before[name]) {
			t.Errorf("add-tpp changed %s", name)
		}
	}
	sb, err := sandbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.TPPs) != 3 || sb.TPPs[1].Index != 2 || sb.TPPs[2].Index != 3 {
		t.Fatalf("TPPs after add-tpp: %+v", sb.TPPs)
	}
	if !strings.Contains(r.stdout, "TPP 2:") || !strings.Contains(r.stdout, "TPP 3:") || strings.Contains(r.stdout, "TPP 1:") {
		t.Errorf("add-tpp output should list the new TPPs only:\n%s", r.stdout)
	}
	pool, err := sb.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	dirJWKS, err := sb.DirectoryJWKS()
	if err != nil {
		t.Fatal(err)
	}
	for _, tpp := range sb.TPPs[1:] {
		// Trusted by the unchanged bundle, and its SSA verifies with the unchanged directory key.
		chain, err := sandbox.ReadCertificates(tpp.TransportCert)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("TPP %d's transport certificate: %v", tpp.Index, err)
		}
		ssa, err := tpp.SSA()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Verify([]byte(ssa), jws.WithKeySet(dirJWKS)); err != nil {
			t.Errorf("TPP %d's SSA: %v", tpp.Index, err)
		}
		if want := "https://localhost:9443/sandbox/jwks/" + tpp.SoftwareID + ".json"; tpp.JWKSURL != want {
			t.Errorf("TPP %d's JWKS URL %s, want %s (the sandbox's base URL)", tpp.Index, tpp.JWKSURL, want)
		}
		if _, err := os.Stat(tpp.JWKSFile); err != nil {
			t.Errorf("TPP %d's JWKS file: %v", tpp.Index, err)
		}
	}
	if sb.TPPs[1].SoftwareID == sb.TPPs[0].SoftwareID || sb.TPPs[2].OrgID == sb.TPPs[1].OrgID {
		t.Error("added TPPs share ids")
	}
}

func TestSandboxAddTPPErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none")
	r := run(t, "sandbox", "add-tpp", "--dir", missing).want(t, ExitRejected)
	if !strings.Contains(r.stderr, "sandbox init --dir") {
		t.Errorf("stderr should say how to make a sandbox: %s", r.stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("add-tpp created a directory for a missing sandbox")
	}
	run(t, "sandbox", "add-tpp").want(t, ExitUsage)
	run(t, "sandbox", "add-tpp", "--dir", missing, "--count", "0").want(t, ExitUsage)
}

func TestSandboxInitIfMissing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	run(t, "sandbox", "init", "--dir", dir, "--if-missing", "--base-url", "https://localhost:9443").want(t, ExitOK)
	before := readFiles(t, dir)

	r := run(t, "sandbox", "init", "--dir", dir, "--if-missing", "--base-url", "https://localhost:9443/").want(t, ExitOK)
	if !strings.Contains(r.stdout, "kept as it is") {
		t.Errorf("stdout = %s", r.stdout)
	}
	r = run(t, "sandbox", "init", "--dir", dir, "--if-missing", "--base-url", "https://localhost:8443").want(t, ExitRejected)
	for _, want := range []string{"made for https://localhost:9443", "not https://localhost:8443", "--force"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r.stderr)
		}
	}
	for name, b := range readFiles(t, dir) {
		if !bytes.Equal(b, before[name]) {
			t.Errorf("init --if-missing changed %s", name)
		}
	}
	run(t, "sandbox", "init", "--dir", dir, "--if-missing", "--force").want(t, ExitUsage)

	// A sandbox of the previous release (no CRL: its certificates name no revocation source)
	// is refused with what to do, not kept for a gateway that would refuse every TPP.
	if err := os.Remove(filepath.Join(dir, "crl", "issuing.crl")); err != nil {
		t.Fatal(err)
	}
	r = run(t, "sandbox", "init", "--dir", dir, "--if-missing", "--base-url", "https://localhost:9443").want(t, ExitRejected)
	for _, want := range []string{"predates certificate revocation", "--force"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r.stderr)
		}
	}

	// Without --if-missing an existing sandbox is refused, and the error names add-tpp.
	r = run(t, "sandbox", "init", "--dir", dir, "--tpps", "3").want(t, ExitRejected)
	if !strings.Contains(r.stderr, "add-tpp") {
		t.Errorf("stderr should point at add-tpp: %s", r.stderr)
	}
}

// --force is documented as replacing everything: the CA and the directory key change.
func TestSandboxInitForceReplacesTrust(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	run(t, "sandbox", "init", "--dir", dir).want(t, ExitOK)
	before := readFiles(t, dir)
	run(t, "sandbox", "init", "--dir", dir, "--force").want(t, ExitOK)
	after := readFiles(t, dir)
	for _, name := range []string{"ca/bundle.pem", "server/cert.pem", "directory/jwks.json"} {
		if bytes.Equal(before[name], after[name]) {
			t.Errorf("--force kept %s", name)
		}
	}
	r := run(t, "sandbox", "init", "--help").want(t, ExitOK)
	if !strings.Contains(r.stdout, "--force replaces everything") {
		t.Errorf("init --help does not say what --force replaces:\n%s", r.stdout)
	}
}

// With --sandbox and no --endpoint, the client talks to the gateway the sandbox was made for.
func TestEndpointFollowsSandboxBaseURL(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	run(t, "sandbox", "init", "--dir", dir, "--base-url", "https://127.0.0.1:1").want(t, ExitOK)
	r := run(t, "get", "--sandbox", dir, "--client-id", "c1", "--token", "x").want(t, ExitRejected)
	if !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("the client did not use the sandbox's base URL: %s", r.stderr)
	}
}
