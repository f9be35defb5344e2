package bench

import (
	"crypto/x509"
	"os"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
)

func mustPool(t *testing.T, g *gatewaytest.Gateway) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(g.Sandbox.Files.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA in the sandbox bundle")
	}
	return pool
}
