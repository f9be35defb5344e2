package accesstoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/manage"
)

const testIssuer = "https://as.example"

// issuer is a test authorization server's signing key.
type issuer struct {
	key  *rsa.PrivateKey
	kid  string
	jwks []byte
}

var (
	issuerOnce sync.Once
	sharedKey  *rsa.PrivateKey
)

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	// One RSA key per test process: generating it dominates the run time.
	issuerOnce.Do(func() {
		var err error
		if sharedKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	pub, err := jwk.FromRaw(sharedKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Set(jwk.KeyIDKey, "as-1")
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{key: sharedKey, kid: "as-1", jwks: b}
}

// claims are a valid dcr_register token's claims, changed by change (nil removes).
func (is *issuer) claims(change map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": testIssuer, "aud": "https://gateway.example", "client_id": "onboarding-client",
		"scope": "dcr_register", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": "jti-" + now.Format(time.RFC3339Nano),
	}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// mint signs claims PS256 with the issuer key.
func (is *issuer) mint(t *testing.T, claims map[string]any) string {
	t.Helper()
	return is.mintWith(t, claims, jwa.PS256, is.key, is.kid)
}

func (is *issuer) mintWith(t *testing.T, claims map[string]any, alg jwa.SignatureAlgorithm, key any, kid string) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, kid)
	_ = hdr.Set(jws.TypeKey, "at+jwt")
	var b []byte
	if alg == jwa.NoSignature {
		b, err = jws.Sign(payload, jws.WithInsecureNoSignature(jws.WithProtectedHeaders(hdr)))
	} else {
		b, err = jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// publicKeyPEM is the issuer's public key as PEM bytes: the "secret" of the HS256 confusion attack.
func (is *issuer) publicKeyPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(is.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeCA writes the CA of an httptest TLS server to a PEM file, for trusted_roots.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeECKey(t *testing.T) (string, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "client.key")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, k
}

// provision provisions a from JSON in a throwaway Caddy context.
func provision(t *testing.T, config string) (*AccessToken, error) {
	t.Helper()
	a := new(AccessToken)
	if err := json.Unmarshal([]byte(config), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = a.Cleanup() })
	return a, a.Validate()
}

func mustProvision(t *testing.T, config string) *AccessToken {
	t.Helper()
	a, err := provision(t, config)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// onceStore is an in-memory dcr.OnceStore; the registration methods are not used here.
type onceStore struct {
	dcr.RegistrationStore
	dcr.HistoryStore
	dcr.DenyListStore
	mu   sync.Mutex
	keys map[string]time.Duration
	err  error
}

func (s *onceStore) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false, s.err
	}
	if _, ok := s.keys[key]; ok {
		return false, nil
	}
	if s.keys == nil {
		s.keys = map[string]time.Duration{}
	}
	s.keys[key] = ttl
	return true, nil
}

func (s *onceStore) Seen(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[key]
	return ok, s.err
}

func (s *onceStore) Release(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
	return nil
}

// call is a DCR call put to the protection as the handler's authenticate phase puts it,
// with what the protection returned and, on a management call, the decision of
// manage.Authorize over the built-in registration access token step's vote and the
// protection's.
type call struct {
	*dcr.Exchange
	store dcr.Store

	// Claims, AfterCommit and AccessTokenClaims are what the protection returned.
	Claims            []dcr.OnceClaim
	AfterCommit       []func()
	AccessTokenClaims map[string]any
	// ManagementAuthorized is manage.Authorize's decision; ManagementRefusal the refusal
	// the protection voted (the audit reason).
	ManagementAuthorized bool
	ManagementRefusal    string
}

// exchange is a DCR call with the given Authorization header values.
func exchange(op dcr.Operation, store dcr.Store, auth ...string) *call {
	r := httptest.NewRequest(http.MethodPost, "https://gateway.example/register", nil)
	for _, v := range auth {
		r.Header.Add("Authorization", v)
	}
	return &call{Exchange: &dcr.Exchange{Operation: op, Request: r, Now: time.Now()}, store: store}
}

// protect runs a on the call.
func (c *call) protect(ctx context.Context, a *AccessToken) error {
	res, err := a.Protect(ctx, c.Exchange, dcr.ReadOnly(c.store))
	c.Claims, c.AfterCommit, c.AccessTokenClaims = res.Once, res.AfterCommit, res.AccessTokenClaims
	c.ManagementRefusal = res.Vote.Refusal
	if res.Vote != (dcr.Vote{}) && c.Operation == dcr.OpRegister {
		return fmt.Errorf("a vote on register: %+v", res.Vote)
	}
	if c.Operation != dcr.OpRegister {
		rat, _ := manage.RegistrationTokenStep{}.Protect(ctx, c.Exchange, nil)
		c.ManagementAuthorized = manage.Authorize(c.Existing, c.BearerToken, []dcr.Vote{rat.Vote, res.Vote}) == nil
	}
	return err
}

// recorder is an authorization server endpoint that records the forms it was sent.
type recorder struct {
	mu    sync.Mutex
	forms []map[string][]string
	auth  []string
	got   chan string
}

func newRecorder() *recorder { return &recorder{got: make(chan string, 100)} }

func (rec *recorder) record(r *http.Request) {
	_ = r.ParseForm()
	rec.mu.Lock()
	rec.forms = append(rec.forms, r.PostForm)
	rec.auth = append(rec.auth, r.Header.Get("Authorization"))
	rec.mu.Unlock()
	rec.got <- r.PostForm.Get("token")
}

func (rec *recorder) calls() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.forms)
}

// waitToken waits for the endpoint to receive token (revocation runs in the background).
func (rec *recorder) waitToken(t *testing.T, token string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-rec.got:
			if got == token {
				return
			}
		case <-timeout:
			t.Fatal("the token never reached the endpoint")
		}
	}
}

// writeServerPair writes a started httptest TLS server's certificate and key as PEM files.
func writeServerPair(t *testing.T, srv *httptest.Server) (certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(srv.TLS.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
