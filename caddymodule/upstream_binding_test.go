package caddymodule_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// thumbprint is the RFC 8705 x5t#S256 of c's transport certificate.
func thumbprint(t *testing.T, c *tppclient.Client) string {
	t.Helper()
	sum := sha256.Sum256(clientCertificate(t, c).Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// rotatedClient is TPP index's client with a second transport certificate of the same
// software (same subject, new key, same issuing CA), as after a certificate rotation: the
// gateway takes it for the same software, a token bound to the first one is not its.
func rotatedClient(t *testing.T, g *gatewaytest.Gateway, index int) *tppclient.Client {
	t.Helper()
	tpp := g.Sandbox.TPP(index)
	caPEM, err := os.ReadFile(g.Sandbox.Files.IssuingCA)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(g.Sandbox.Files.IssuingKey)
	if err != nil {
		t.Fatal(err)
	}
	caBlock, _ := pem.Decode(caPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if caBlock == nil || keyBlock == nil {
		t.Fatal("issuing CA files are not PEM")
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      sandbox.TransportSubject(tpp.OrgID, tpp.SoftwareID),
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "transport.pem"), filepath.Join(dir, "transport.key")
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), caPEM...)
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := tppclient.FromFiles(tppclient.Files{Cert: certFile, Key: keyFile, CA: g.Sandbox.Files.CABundle,
		SSA: tpp.SSAFile, SigningKey: tpp.SigningKey, KID: tpp.SigningKID, Alg: "PS256", SoftwareID: tpp.SoftwareID},
		g.Endpoint, g.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// resource calls the example backend's protected resource (GET /resource, through the gateway)
// with token, over c's mTLS connection.
func resource(t *testing.T, c *tppclient.Client, base, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/resource", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// registerOB registers c with the OB request as a TPP sends it (never with
// tls_client_certificate_bound_access_tokens): tls_client_auth, or private_key_jwt for
// client credentials only.
func registerOB(t *testing.T, g *gatewaytest.Gateway, c *tppclient.Client, privateKeyJWT bool) (id, rat string) {
	t.Helper()
	claims := c.Claims()
	if privateKeyJWT {
		claims["token_endpoint_auth_method"] = "private_key_jwt"
		claims["token_endpoint_auth_signing_alg"] = "PS256" // clientCredentials signs with the client's key
		claims["grant_types"] = []string{"client_credentials"}
		claims["scope"] = "accounts"
		delete(claims, "tls_client_auth_subject_dn")
		delete(claims, "response_types")
	}
	r, err := c.Register(gatewaytest.Context(t), sign(t, c, claims, tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("register: %v %+v\n%s", err, r, g.Logs())
	}
	if _, ok := r.JSON["tls_client_certificate_bound_access_tokens"]; ok {
		t.Fatalf("the registration shows metadata the TPP did not send: %v", r.JSON)
	}
	return r.JSON["client_id"].(string), r.JSON["registration_access_token"].(string)
}

// TestUpstreamCertificateBoundTokens: OB requests never ask for certificate-bound tokens, yet
// the tokens the backend issues to a tls_client_auth client (and to a private_key_jwt one) are
// bound to the transport certificate they were obtained with, and refused with another one at
// the gateway's management endpoint and at the backend's protected resource.
func TestUpstreamCertificateBoundTokens(t *testing.T) {
	g, as := startUpstream(t)
	ctx := gatewaytest.Context(t)
	c1, c2, c1Rotated := newClient(t, g, 1), newClient(t, g, 2), rotatedClient(t, g, 1)
	id1, rat1 := registerOB(t, g, c1, false)
	id2, _ := registerOB(t, g, c2, true)

	status, tok := clientCredentials(t, c1, g.BaseURL, id1, false)
	if status != http.StatusOK || tok["token_type"] != "Bearer" {
		t.Fatalf("tls_client_auth token: %d %v\n%s", status, tok, as.Logs())
	}
	cc1 := tok["access_token"].(string)
	if status, tok = clientCredentials(t, c2, g.BaseURL, id2, true); status != http.StatusOK {
		t.Fatalf("private_key_jwt token: %d %v\n%s", status, tok, as.Logs())
	}
	cc2 := tok["access_token"].(string)

	// Introspection: each token is bound to the certificate it was obtained with.
	for _, x := range []struct {
		token, client, thumb string
	}{{cc1, id1, thumbprint(t, c1)}, {cc2, id2, thumbprint(t, c2)}} {
		got := introspect(t, g, x.token)
		cnf, _ := got["cnf"].(map[string]any)
		if got["active"] != true || got["client_id"] != x.client || cnf["x5t#S256"] != x.thumb {
			t.Fatalf("introspection of %s's token: %v, want cnf.x5t#S256 %s", x.client, got, x.thumb)
		}
	}
	if thumbprint(t, c1) == thumbprint(t, c1Rotated) {
		t.Fatal("the rotated certificate is the same certificate")
	}

	// The gateway's management endpoint: TPP 1's token works over TPP 1's certificate only;
	// the rotated certificate is TPP 1's software (its registration access token works).
	if r, err := c1.Get(ctx, id1, cc1); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET with the bound token over its certificate: %v %+v", err, r)
	}
	if r, err := c1Rotated.Get(ctx, id1, rat1); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET with the registration access token over the rotated certificate: %v %+v", err, r)
	}
	for name, c := range map[string]*tppclient.Client{"TPP 2's certificate": c2, "TPP 1's other certificate": c1Rotated} {
		if r, err := c.Get(ctx, id1, cc1); err != nil || r.Status != http.StatusUnauthorized || r.JSON["error"] != "invalid_token" {
			t.Fatalf("GET /register/%s with TPP 1's token over %s: %v %+v", id1, name, err, r)
		}
	}

	// The backend's protected resource checks the binding the same way.
	if status, m := resource(t, c1, g.BaseURL, cc1); status != http.StatusOK || m["client_id"] != id1 || m["certificate_bound"] != true {
		t.Fatalf("resource with the bound token over its certificate: %d %v", status, m)
	}
	if status, m := resource(t, c2, g.BaseURL, cc2); status != http.StatusOK || m["client_id"] != id2 || m["certificate_bound"] != true {
		t.Fatalf("resource with TPP 2's token over its certificate: %d %v", status, m)
	}
	for name, x := range map[string]struct {
		c     *tppclient.Client
		token string
	}{"TPP 1's token over TPP 2's certificate": {c2, cc1}, "TPP 1's token over its other certificate": {c1Rotated, cc1},
		"TPP 2's token over TPP 1's certificate": {c1, cc2}} {
		if status, m := resource(t, x.c, g.BaseURL, x.token); status != http.StatusUnauthorized || m["error_description"] != "the access token is bound to another certificate" {
			t.Fatalf("%s: %d %v", name, status, m)
		}
	}
}

// TestUpstreamCertificateBoundTokensOff: with `certificate_bound_access_tokens off` the
// backend issues plain bearer tokens, which its resource takes over any certificate.
func TestUpstreamCertificateBoundTokensOff(t *testing.T) {
	g, as := startUpstreamWith(t, "\t\t\tcertificate_bound_access_tokens off")
	c1, c2 := newClient(t, g, 1), newClient(t, g, 2)
	id1, _ := registerOB(t, g, c1, false)
	status, tok := clientCredentials(t, c1, g.BaseURL, id1, false)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v\n%s", status, tok, as.Logs())
	}
	cc1 := tok["access_token"].(string)
	if got := introspect(t, g, cc1); got["active"] != true || got["cnf"] != nil {
		t.Fatalf("introspection: %v, want an active token without cnf", got)
	}
	if status, m := resource(t, c2, g.BaseURL, cc1); status != http.StatusOK || m["client_id"] != id1 || m["certificate_bound"] != false {
		t.Fatalf("unbound token over another certificate: %d %v", status, m)
	}
}
