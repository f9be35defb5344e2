package caddymodule

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
	_ "github.com/dcrgate/dcrgate/plugins/mtls"
	// The default policy is loaded by its module ID, which only an import registers.
	_ "github.com/dcrgate/dcrgate/plugins/policy"
	_ "github.com/dcrgate/dcrgate/plugins/signedrequest"
	_ "github.com/dcrgate/dcrgate/plugins/softwarestatement"
	_ "github.com/dcrgate/dcrgate/registrars/local"
	"github.com/dcrgate/dcrgate/storage/caddystorage"
)

// inProcess is the handler provisioned in this process with the sandbox protections, the
// embedded store on a temp dir, and an HTTPS server for the TPP JWKS: the whole POST pipeline
// without the network in between.
type inProcess struct {
	h      *Handler
	sb     *sandbox.Sandbox
	tpp    *tppclient.Client
	cert   *x509.Certificate
	store  *caddystorage.Store
	cancel context.CancelFunc
}

func newInProcess(tb testing.TB) *inProcess {
	tb.Helper()
	return newInProcessAt(tb, "")
}

// newInProcessAt keeps the store's files under dataDir ("" = the test's temp dir), e.g. on a
// tmpfs to take the disk's fsync out of a measurement.
func newInProcessAt(tb testing.TB, dataDir string) *inProcess {
	tb.Helper()
	return newInProcessWith(tb, dataDir, "")
}

// newInProcessWith configures extra protections (JSON objects, each followed by a comma)
// ahead of the sandbox ones.
func newInProcessWith(tb testing.TB, dataDir, extra string) *inProcess {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	dir := tb.TempDir()
	sb, err := sandbox.Init(sandbox.Options{Dir: filepath.Join(dir, "sandbox"), TPPs: 1, BaseURL: fmt.Sprintf("https://localhost:%d", port)})
	if err != nil {
		tb.Fatal(err)
	}
	srvCert, err := tls.LoadX509KeyPair(sb.Files.ServerCert, sb.Files.ServerKey)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.StripPrefix("/sandbox/jwks/", http.FileServer(http.Dir(filepath.Join(sb.Dir, "jwks")))))
	srv.Listener = l
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)

	// No default policy: the pipeline benchmark registers b.N clients for one software, far
	// beyond the default limit; BenchmarkPipelineWithPolicy measures the policy on its own.
	cfg := fmt.Sprintf(`{
		"default_policy": false,
		"protections": [%s
			{"protection": "mtls"},
			{"protection": "software_statement",
			 "directories": [{"issuer": %q, "keys": {"file": %q}, "jwks_hosts": ["localhost:%d"], "software_modes": ["Test"]}],
			 "fetch": {"trusted_roots": [%q]}},
			{"protection": "signed_request", "audience": ["https://localhost"], "fetch": {"trusted_roots": [%q]}}
		]
	}`, extra, sandbox.DirectoryIssuer, sb.Files.DirectoryJWKS, port, sb.Files.CABundle, sb.Files.CABundle)
	h := new(Handler)
	if err := json.Unmarshal([]byte(cfg), h); err != nil {
		tb.Fatal(err)
	}
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	store := caddystorage.New(&certmagic.FileStorage{Path: dataDir}, "dcr")
	h.store = store
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		tb.Fatal(err)
	}
	// Without a Caddy config the context hands out a development logger; the tests assert on
	// responses, not on log lines.
	h.logger = zap.NewNop()
	h.audit.log = zap.NewNop()
	c, err := tppclient.FromSandbox(sb, sb.TPP(1), "https://localhost/register", "https://localhost")
	if err != nil {
		tb.Fatal(err)
	}
	certs, err := sandbox.ReadCertificates(sb.TPP(1).TransportCert)
	if err != nil {
		tb.Fatal(err)
	}
	return &inProcess{h: h, sb: sb, tpp: c, cert: certs[0], store: store, cancel: cancel}
}

// do sends one request through the handler, as if over mTLS with TPP 1's certificate.
func (p *inProcess) do(method, path string, body []byte, bearer string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "https://localhost"+path, bytes.NewReader(body))
	r.TLS.PeerCertificates = []*x509.Certificate{p.cert}
	if body != nil {
		r.Header.Set("Content-Type", "application/jose")
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	next := nextHandler(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	if err := p.h.ServeHTTP(w, r, next); err != nil {
		panic(err)
	}
	return w
}

type nextHandler func(http.ResponseWriter, *http.Request) error

func (f nextHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

func (p *inProcess) signedRequest(tb testing.TB, change map[string]any) []byte {
	tb.Helper()
	return p.signedRequestWith(tb, change, tppclient.SignOptions{})
}

func (p *inProcess) signedRequestWith(tb testing.TB, change map[string]any, o tppclient.SignOptions) []byte {
	tb.Helper()
	claims := p.tpp.Claims()
	for k, v := range change {
		claims[k] = v
	}
	b, err := p.tpp.Sign(claims, o)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func decode(tb testing.TB, w *httptest.ResponseRecorder) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		tb.Fatalf("status %d, body not JSON: %q", w.Code, w.Body.String())
	}
	return m
}

// TestLifecycleInProcess drives register, read, update and delete through the handler.
func TestLifecycleInProcess(t *testing.T) {
	p := newInProcess(t)
	w := p.do(http.MethodPost, "/register", p.signedRequest(t, nil), "")
	if w.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	reg := decode(t, w)
	id, _ := reg["client_id"].(string)
	token, _ := reg["registration_access_token"].(string)
	if id == "" || token == "" {
		t.Fatalf("no client_id or token in %v", reg)
	}
	// The OB response shape: metadata, SSA claims flattened, software_statement.
	for _, k := range []string{"software_id", "org_id", "org_name", "software_roles", "software_statement", "redirect_uris", "scope", "client_id_issued_at", "registration_client_uri"} {
		if _, ok := reg[k]; !ok {
			t.Errorf("response lacks %s", k)
		}
	}
	if reg["registration_client_uri"] != "https://localhost/register/"+id {
		t.Errorf("registration_client_uri %v", reg["registration_client_uri"])
	}
	if _, ok := reg["client_secret"]; ok {
		t.Error("client_secret issued for tls_client_auth")
	}
	rec, err := p.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.RegistrationTokenHash == token || rec.RegistrationTokenHash == "" {
		t.Fatal("the token must be stored hashed")
	}

	w = p.do(http.MethodGet, "/register/"+id, nil, token)
	if w.Code != http.StatusOK || decode(t, w)["client_id"] != id {
		t.Fatalf("get: %d %s", w.Code, w.Body)
	}
	if _, ok := decode(t, w)["registration_access_token"]; ok {
		t.Fatal("GET must not return the registration access token")
	}
	if w = p.do(http.MethodGet, "/register/"+id, nil, token+"x"); w.Code != http.StatusUnauthorized {
		t.Fatalf("get with a wrong token: %d", w.Code)
	}

	w = p.do(http.MethodPut, "/register/"+id, p.signedRequest(t, map[string]any{"scope": "openid accounts"}), token)
	if w.Code != http.StatusOK || decode(t, w)["scope"] != "accounts openid" && decode(t, w)["scope"] != "openid accounts" {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	rec2, _ := p.store.Get(context.Background(), id)
	if rec2.Version != rec.Version+1 {
		t.Fatalf("version %d after update, want %d", rec2.Version, rec.Version+1)
	}

	if w = p.do(http.MethodDelete, "/register/"+id, nil, token); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if w = p.do(http.MethodGet, "/register/"+id, nil, token); w.Code != http.StatusUnauthorized {
		t.Fatalf("get after delete: %d", w.Code)
	}
	// Not a DCR path: untouched, to the next handler.
	if w = p.do(http.MethodGet, "/accounts", nil, ""); w.Code != http.StatusTeapot {
		t.Fatalf("pass-through: %d", w.Code)
	}
	// A path below a client_id is one Caddy's path matcher takes for {endpoint}/*: refused
	// with a JSON error, not passed on to the backend (it used to be).
	if w = p.do(http.MethodGet, "/register/a/b", nil, ""); w.Code != http.StatusNotFound || decode(t, w)["error"] != "invalid_request" {
		t.Fatalf("deeper path must be refused, not passed on: %d %s", w.Code, w.Body)
	}
	// Spellings of the endpoint reach the pipeline, not the next handler.
	for _, path := range []string{"/register/", "//register", "/REGISTER", "/./register", "/register%2F"} {
		if w = p.do(http.MethodPost, path, p.signedRequest(t, nil), ""); w.Code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
		}
	}
}
