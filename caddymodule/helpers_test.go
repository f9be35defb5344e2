package caddymodule_test

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

func mustPool(t *testing.T, sb *sandbox.Sandbox) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(sb.Files.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

func readJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not JSON (%d): %q", resp.StatusCode, b)
	}
	return m
}

func readJSONOrText(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
