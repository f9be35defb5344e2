package redis_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/redistest"
	"github.com/dcrgate/dcrgate/internal/sandbox"
)

// tlsRedis starts a real redis-server that speaks only TLS on its TLS port and requires a
// client certificate, with the sandbox's localhost server certificate and its CAs.
func tlsRedis(t *testing.T) (*redistest.Server, int, *sandbox.Sandbox) {
	t.Helper()
	sb, err := sandbox.Init(sandbox.Options{Dir: t.TempDir(), TPPs: 1})
	if err != nil {
		t.Fatal(err)
	}
	tlsPort := gatewaytest.FreePort(t)
	srv := redistest.New(t, gatewaytest.FreePort(t),
		"--tls-port", fmt.Sprint(tlsPort),
		"--tls-cert-file", sb.Files.ServerCert, "--tls-key-file", sb.Files.ServerKey,
		"--tls-ca-cert-file", sb.Files.CABundle, "--tls-auth-clients", "yes")
	srv.Start()
	return srv, tlsPort, sb
}

// claimWorks reports whether a one-time-key claim goes through the store within a short time.
func claimWorks(t *testing.T, config string) error {
	t.Helper()
	s, err := provision(t, config)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	_, err = s.Claim(t.Context(), fmt.Sprintf("tls-test-%d", time.Now().UnixNano()), time.Minute)
	return err
}

// TestTLSOptions: the tls_* (reverse_proxy) JSON and the previous release's tls object both
// connect to a real TLS Redis with a client certificate; no client certificate or an
// untrusted server is refused.
func TestTLSOptions(t *testing.T) {
	_, port, sb := tlsRedis(t)
	tpp := sb.TPP(1)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	modern := fmt.Sprintf(`{"address":%q,"dial_timeout":"2s","tls":{"ca":{"provider":"file","pem_files":[%q]},
		"client_certificate_file":%q,"client_certificate_key_file":%q,"server_name":"localhost"}}`,
		addr, sb.Files.CABundle, tpp.TransportCert, tpp.TransportKey)
	if err := claimWorks(t, modern); err != nil {
		t.Fatalf("reverse_proxy-style tls: %v", err)
	}
	legacy := fmt.Sprintf(`{"address":%q,"dial_timeout":"2s","tls":{"ca":%q,"cert":%q,"key":%q,"server_name":"localhost"}}`,
		addr, sb.Files.CABundle, tpp.TransportCert, tpp.TransportKey)
	if err := claimWorks(t, legacy); err != nil {
		t.Fatalf("deprecated tls fields: %v", err)
	}
	noCert := fmt.Sprintf(`{"address":%q,"dial_timeout":"2s","read_timeout":"1s","tls":{"ca":{"provider":"file","pem_files":[%q]},"server_name":"localhost"}}`,
		addr, sb.Files.CABundle)
	if err := claimWorks(t, noCert); err == nil {
		t.Error("a TLS Redis that requires a client certificate accepted a client without one")
	}
	systemRoots := fmt.Sprintf(`{"address":%q,"dial_timeout":"2s","tls":{"client_certificate_file":%q,"client_certificate_key_file":%q,"server_name":"localhost"}}`,
		addr, tpp.TransportCert, tpp.TransportKey)
	if err := claimWorks(t, systemRoots); err == nil {
		t.Error("the sandbox server certificate was trusted with the system roots")
	}
}

// TestTLSRotationMakesNewClient: the pooled client is keyed by the contents of the files its
// TLS configuration reads. After the CA file is replaced by another CA, a store provisioned
// with the same configuration (as `caddy reload` does) uses the new file and is refused by
// the server, while the store provisioned before keeps its working client.
func TestTLSRotationMakesNewClient(t *testing.T) {
	_, port, sb := tlsRedis(t)
	tpp := sb.TPP(1)
	ca := filepath.Join(t.TempDir(), "redis-ca.pem")
	copyFile(t, sb.Files.CABundle, ca)
	config := fmt.Sprintf(`{"address":"127.0.0.1:%d","dial_timeout":"2s","read_timeout":"1s","tls":{"ca":{"provider":"file","pem_files":[%q]},
		"client_certificate_file":%q,"client_certificate_key_file":%q,"server_name":"localhost"}}`,
		port, ca, tpp.TransportCert, tpp.TransportKey)
	before, err := provision(t, config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := before.Claim(t.Context(), "rotation-1", time.Minute); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}

	other, err := sandbox.Init(sandbox.Options{Dir: t.TempDir(), TPPs: 1})
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, other.Files.CABundle, ca)
	if err := claimWorks(t, config); err == nil {
		t.Fatal("after the CA file was rotated to another CA, a new store still trusted the old one (pooled by path, not contents)")
	}
	if _, err := before.Claim(t.Context(), "rotation-2", time.Minute); err != nil {
		t.Fatalf("the store provisioned before the rotation lost its client: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
