package docs

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/internal/docstest"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
)

// readmeBlock returns the README's fenced block whose info string is lang followed by name.
func readmeBlock(t *testing.T, lang, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := docstest.Extract("README.md", src)
	if err != nil {
		t.Fatal(err)
	}
	var found []docstest.Block
	for _, b := range blocks {
		if b.Lang == lang && b.Info == name {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one ```%s %s block in README.md, found %d", lang, name, len(found))
	}
	return found[0].Body
}

// The README's "Register with curl and openssl" walkthrough, run as it is written (the
// gateway's port aside) against a real gateway with real mTLS: it must register a client.
func TestCurlWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "openssl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the walkthrough needs %s (README \"Prerequisites\"): %v", tool, err)
		}
	}
	script := readmeBlock(t, "sh", "register-with-curl")
	const exampleBase = "https://localhost:8443"
	if !strings.Contains(script, exampleBase) {
		t.Fatalf("the walkthrough no longer talks to %s, the example gateway", exampleBase)
	}
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1})
	dir := t.TempDir()
	if err := os.Symlink(g.Sandbox.Dir, filepath.Join(dir, "sandbox")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(script, exampleBase, g.BaseURL))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s\ngateway log:\n%s", err, out, g.Logs())
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "HTTP 201" {
		t.Fatalf("want the registration and HTTP 201, got:\n%s\ngateway log:\n%s", out, g.Logs())
	}
	var reg struct {
		ClientID    string   `json:"client_id"`
		Token       string   `json:"registration_access_token"`
		URI         string   `json:"registration_client_uri"`
		SoftwareID  string   `json:"software_id"`
		AuthMethod  string   `json:"token_endpoint_auth_method"`
		SubjectDN   string   `json:"tls_client_auth_subject_dn"`
		RedirectURI []string `json:"redirect_uris"`
	}
	if err := json.Unmarshal([]byte(strings.Join(lines[:len(lines)-1], "\n")), &reg); err != nil {
		t.Fatalf("the walkthrough printed no registration: %v\n%s", err, out)
	}
	tpp := g.Sandbox.TPP(1)
	if reg.ClientID == "" || reg.Token == "" || reg.SoftwareID != tpp.SoftwareID || reg.AuthMethod != "tls_client_auth" ||
		reg.SubjectDN != tpp.TransportSubjectDN || len(reg.RedirectURI) != 1 || reg.RedirectURI[0] != tpp.RedirectURIs[0] {
		t.Fatalf("unexpected registration: %+v", reg)
	}

	// The registration is real: the gateway serves it to its TPP with the token it returned.
	cert, err := tls.LoadX509KeyPair(tpp.TransportCert, tpp.TransportKey)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := g.Sandbox.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots}}}
	req, _ := http.NewRequestWithContext(gatewaytest.Context(t), http.MethodGet, reg.URI, nil)
	req.Header.Set("Authorization", "Bearer "+reg.Token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: want 200, got %d", reg.URI, resp.StatusCode)
	}
}
