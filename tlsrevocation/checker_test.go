package tlsrevocation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/sandbox"
)

// env is a sandbox whose CRL distribution point and OCSP responder are in-process servers.
type env struct {
	sb       *sandbox.Sandbox
	ocsp     *gatewaytest.OCSPResponder
	crlFetch atomic.Int64
	crlDown  atomic.Bool
	crlFile  atomic.Value // string: the file served at the distribution point
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{ocsp: gatewaytest.StartOCSPResponder(t)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sandbox/crl/issuing.crl" {
			http.NotFound(w, r)
			return
		}
		e.crlFetch.Add(1)
		if e.crlDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		http.ServeFile(w, r, e.crlFile.Load().(string))
	}))
	t.Cleanup(srv.Close)
	sb, err := sandbox.Init(sandbox.Options{Dir: filepath.Join(t.TempDir(), "sb"), TPPs: 2, BaseURL: srv.URL, OCSPURL: e.ocsp.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.sb = sb
	e.crlFile.Store(sb.Files.IssuingCRL)
	e.ocsp.SetIssuer(sb.IssuingCA(), sb.IssuingKey())
	return e
}

// chain is TPP n's verified chain: transport certificate, issuing CA, root.
func (e *env) chain(t *testing.T, n int) []*x509.Certificate {
	t.Helper()
	certs, err := sandbox.ReadCertificates(e.sb.TPP(n).TransportCert)
	if err != nil {
		t.Fatal(err)
	}
	root, err := sandbox.ReadCertificates(e.sb.Files.RootCA)
	if err != nil {
		t.Fatal(err)
	}
	return append(certs, root[0])
}

func testConfig() checkerConfig {
	return checkerConfig{ocsp: true, distributionPoints: true, maxBytes: defaultMaxSize, tls: &tls.Config{MinVersion: tls.VersionTLS12},
		cache: cacheConfig{maxEntries: 100, ttl: time.Minute, retry: time.Minute, timeout: 5 * time.Second}}
}

func TestCRLRevokedAndGood(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.sb.RevokeTransportCert(e.sb.TPP(1), 1); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ocsp = false
	ch := newChecker(cfg)

	res := ch.Check(context.Background(), [][]*x509.Certificate{e.chain(t, 1)})
	if res.Revoked == nil {
		t.Fatalf("TPP 1 not found revoked: %+v", res)
	}
	a := res.Revoked.Answer
	if a.Kind != SourceCRL || a.Location != e.sb.CRLURL() || a.Reason != 1 || !res.Revoked.Leaf || a.RevokedAt.IsZero() {
		t.Fatalf("answer = %+v (leaf %v), want the CRL at %s, keyCompromise", a, res.Revoked.Leaf, e.sb.CRLURL())
	}

	res = ch.Check(context.Background(), [][]*x509.Certificate{e.chain(t, 2)})
	if res.Revoked != nil || len(res.Unknown) != 0 || res.Checked != 1 {
		t.Fatalf("TPP 2: %+v, want good (the issuing CA names no source and is not checked)", res)
	}
	if n := e.ocsp.Requests.Load(); n != 0 {
		t.Fatalf("OCSP is off but the responder had %d requests", n)
	}
}

func TestOCSPAnswersFirst(t *testing.T) {
	e := newEnv(t)
	e.ocsp.Revoke(e.chain(t, 1)[0].SerialNumber, 4)
	ch := newChecker(testConfig())

	res := ch.Check(context.Background(), [][]*x509.Certificate{e.chain(t, 1)})
	if res.Revoked == nil || res.Revoked.Answer.Kind != SourceOCSP || res.Revoked.Answer.Location != e.ocsp.URL || res.Revoked.Answer.Reason != 4 {
		t.Fatalf("TPP 1: %+v, want revoked by OCSP (superseded)", res.Revoked)
	}
	res = ch.Check(context.Background(), [][]*x509.Certificate{e.chain(t, 2)})
	if res.Revoked != nil || len(res.Unknown) != 0 || res.Checked != 1 {
		t.Fatalf("TPP 2: %+v, want good", res)
	}
	if n := e.crlFetch.Load(); n != 0 {
		t.Fatalf("the CRL was fetched %d times although OCSP answered", n)
	}
}

func TestOCSPDownFallsBackToCRL(t *testing.T) {
	e := newEnv(t)
	e.ocsp.SetDown(true)
	if _, _, err := e.sb.RevokeTransportCert(e.sb.TPP(1), 1); err != nil {
		t.Fatal(err)
	}
	ch := newChecker(testConfig())
	res := ch.Check(context.Background(), [][]*x509.Certificate{e.chain(t, 1)})
	if res.Revoked == nil || res.Revoked.Answer.Kind != SourceCRL {
		t.Fatalf("%+v, want revoked by the CRL", res)
	}
	if e.ocsp.Requests.Load() != 1 {
		t.Fatalf("OCSP requests = %d, want 1", e.ocsp.Requests.Load())
	}
}

func TestSourcesDownIsUnknownAndRetriedAfterInterval(t *testing.T) {
	e := newEnv(t)
	e.ocsp.SetDown(true)
	e.crlDown.Store(true)
	ch := newChecker(testConfig())
	now := time.Now()
	ch.cache.now = func() time.Time { return now }

	chain := [][]*x509.Certificate{e.chain(t, 2)}
	res := ch.Check(context.Background(), chain)
	if res.Revoked != nil || len(res.Unknown) != 1 || !res.Unknown[0].Leaf {
		t.Fatalf("%+v, want the leaf unknown", res)
	}
	msg := errors.Join(res.Unknown[0].Errors...).Error()
	for _, want := range []string{"ocsp " + e.ocsp.URL + ": status 503", "crl " + e.sb.CRLURL() + ": status 503"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("errors %q lack %q", msg, want)
		}
	}
	// Within the retry interval, a failing source is not asked again.
	ch.Check(context.Background(), chain)
	if e.ocsp.Requests.Load() != 1 || e.crlFetch.Load() != 1 {
		t.Fatalf("fetches = ocsp %d, crl %d within the retry interval, want 1 each", e.ocsp.Requests.Load(), e.crlFetch.Load())
	}
	// After it, and with the sources back, the answer comes.
	e.ocsp.SetDown(false)
	e.crlDown.Store(false)
	now = now.Add(time.Minute + time.Second)
	res = ch.Check(context.Background(), chain)
	if len(res.Unknown) != 0 || res.Checked != 1 {
		t.Fatalf("%+v, want good once the sources answer", res)
	}
}

func TestCachedUntilNextUpdateAndSharedFetch(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.ocsp = false
	ch := newChecker(cfg)
	now := time.Now()
	var mu sync.Mutex
	ch.cache.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if res := ch.Check(context.Background(), [][]*x509.Certificate{e.chain(t, 2)}); res.Checked != 1 {
				t.Errorf("concurrent check: %+v", res)
			}
		})
	}
	wg.Wait()
	if n := e.crlFetch.Load(); n != 1 {
		t.Fatalf("20 concurrent handshakes fetched the CRL %d times, want 1", n)
	}
	// A revocation is not seen before the cached CRL's nextUpdate (cache_max_age refetches
	// earlier: TestCacheMaxAgeRefetchesEarly).
	if _, _, err := e.sb.RevokeTransportCert(e.sb.TPP(2), 1); err != nil {
		t.Fatal(err)
	}
	list, err := e.sb.ReadCRL()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = list.NextUpdate.Add(-time.Minute)
	mu.Unlock()
	if res := ch.Check(context.Background(), [][]*x509.Certificate{e.chain(t, 2)}); res.Revoked != nil || e.crlFetch.Load() != 1 {
		t.Fatalf("before nextUpdate: %+v after %d fetches, want the cached good answer", res, e.crlFetch.Load())
	}
}

func TestCacheMaxAgeRefetchesEarly(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.ocsp = false
	cfg.cache.maxAge = time.Minute
	ch := newChecker(cfg)
	now := time.Now()
	ch.cache.now = func() time.Time { return now }
	chain := [][]*x509.Certificate{e.chain(t, 1)}
	if res := ch.Check(context.Background(), chain); res.Checked != 1 {
		t.Fatalf("%+v", res)
	}
	if _, _, err := e.sb.RevokeTransportCert(e.sb.TPP(1), 1); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute + time.Second)
	if res := ch.Check(context.Background(), chain); res.Revoked == nil || e.crlFetch.Load() != 2 {
		t.Fatalf("after cache_max_age: %+v after %d fetches, want revoked from a second fetch", res, e.crlFetch.Load())
	}
	// A failing refetch keeps the CRL (valid until its nextUpdate).
	e.crlDown.Store(true)
	now = now.Add(time.Minute + time.Second)
	if res := ch.Check(context.Background(), chain); res.Revoked == nil || e.crlFetch.Load() != 3 {
		t.Fatalf("refetch failing: %+v after %d fetches, want the cached CRL to still decide", res, e.crlFetch.Load())
	}
}

func TestCRLSignedByAnotherCAIsNoAnswer(t *testing.T) {
	e := newEnv(t)
	other, err := sandbox.Init(sandbox.Options{Dir: filepath.Join(t.TempDir(), "other")})
	if err != nil {
		t.Fatal(err)
	}
	// Same issuer name (every sandbox's issuing CA has it), another key: a forged CRL.
	e.crlFile.Store(other.Files.IssuingCRL)
	cfg := testConfig()
	cfg.ocsp = false
	res := newChecker(cfg).Check(context.Background(), [][]*x509.Certificate{e.chain(t, 1)})
	if len(res.Unknown) != 1 || !strings.Contains(errors.Join(res.Unknown[0].Errors...).Error(), "not signed by the certificate's issuer") {
		t.Fatalf("%+v, want unknown: bad signature", res)
	}
}

func TestConfiguredCRLFileIsReadAgainWhenItChanges(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.ocsp, cfg.distributionPoints = false, false
	cfg.crlFiles = []string{e.sb.Files.IssuingCRL}
	ch := newChecker(cfg)
	chain := [][]*x509.Certificate{e.chain(t, 1)}
	if res := ch.Check(context.Background(), chain); res.Checked != 1 {
		t.Fatalf("%+v, want good", res)
	}
	if _, _, err := e.sb.RevokeTransportCert(e.sb.TPP(1), 5); err != nil {
		t.Fatal(err)
	}
	res := ch.Check(context.Background(), chain)
	if res.Revoked == nil || res.Revoked.Answer.Location != e.sb.Files.IssuingCRL || res.Revoked.Answer.Reason != 5 {
		t.Fatalf("%+v, want revoked by the file", res)
	}
	if e.crlFetch.Load() != 0 {
		t.Fatal("the distribution point was fetched although it is off")
	}
}

func TestLeafWithoutSources(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.ocsp, cfg.distributionPoints = false, false
	res := newChecker(cfg).Check(context.Background(), [][]*x509.Certificate{e.chain(t, 1)})
	if len(res.Unknown) != 1 || !errors.Is(res.Unknown[0].Errors[0], errNoSource) {
		t.Fatalf("%+v, want the leaf unknown for want of a source", res)
	}
}

func TestFetchLimits(t *testing.T) {
	big := make([]byte, 2048)
	var httpsURL string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write(big)
		case "/big-chunked": // no Content-Length: the limit applies while reading
			_, _ = w.Write(big[:512])
			w.(http.Flusher).Flush()
			_, _ = w.Write(big[512:])
		case "/to-http":
			http.Redirect(w, r, strings.Replace(httpsURL, "https:", "http:", 1)+"/big", http.StatusFound)
		case "/to-https":
			http.Redirect(w, r, "/small", http.StatusFound)
		case "/small":
			_, _ = w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	httpsURL = srv.URL
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	f := newFetcher(5*time.Second, 1024, &tls.Config{RootCAs: pool})
	ctx := context.Background()
	if _, err := f.get(ctx, srv.URL+"/big"); err == nil || !strings.Contains(err.Error(), "limit is 1024") {
		t.Fatalf("big: %v", err)
	}
	if _, err := f.get(ctx, srv.URL+"/big-chunked"); err == nil || !strings.Contains(err.Error(), "larger than 1024") {
		t.Fatalf("big, chunked: %v", err)
	}
	if _, err := f.get(ctx, srv.URL+"/to-http"); err == nil || !strings.Contains(err.Error(), "another scheme") {
		t.Fatalf("redirect to http: %v", err)
	}
	if b, err := f.get(ctx, srv.URL+"/to-https"); err != nil || string(b) != "ok" {
		t.Fatalf("redirect within https: %q %v", b, err)
	}
	if _, err := f.get(ctx, "ldap://ldap.example.com/cn=crl"); !errors.Is(err, errNotHTTP) {
		t.Fatalf("ldap: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache(cacheConfig{maxEntries: 3, ttl: time.Minute, retry: time.Minute, timeout: time.Second})
	for i := range 10 {
		_, _ = c.get(context.Background(), fmt.Sprint(i), func(context.Context) (any, time.Time, error) { return i, time.Time{}, nil })
	}
	if c.len() != 3 {
		t.Fatalf("cache holds %d entries, want 3", c.len())
	}
}

// verifier builds a Verifier around a checker with an observed logger.
func verifier(t *testing.T, failMode string, cfg checkerConfig) (*Verifier, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	return &Verifier{FailMode: failMode, ctx: caddy.Context{Context: context.Background()}, logger: zap.New(core), checker: newChecker(cfg)}, logs
}

func TestVerifierRefusesRevokedWithLogLine(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.sb.RevokeTransportCert(e.sb.TPP(1), 1); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ocsp = false
	v, logs := verifier(t, "", cfg)
	chain := e.chain(t, 1)
	err := v.VerifyClientCertificate([][]byte{chain[0].Raw}, [][]*x509.Certificate{chain})
	if !errors.Is(err, ErrRevoked) {
		t.Fatalf("err = %v, want ErrRevoked", err)
	}
	entries := logs.FilterMessage("TLS handshake refused: client certificate revoked").All()
	if len(entries) != 1 || entries[0].Level != zapcore.ErrorLevel {
		t.Fatalf("log = %v", logs.All())
	}
	f := entries[0].ContextMap()
	want := map[string]any{
		"subject": e.sb.TPP(1).TransportSubjectDN, "serial": e.sb.TPP(1).TransportSerial,
		"issuer": chain[0].Issuer.String(), "source": "crl", "source_location": e.sb.CRLURL(),
		"reason": "keyCompromise", "reason_code": int64(1),
	}
	for k, w := range want {
		if f[k] != w {
			t.Errorf("log field %s = %v, want %v", k, f[k], w)
		}
	}
	if chain2 := e.chain(t, 2); v.VerifyClientCertificate([][]byte{chain2[0].Raw}, [][]*x509.Certificate{chain2}) != nil {
		t.Fatal("TPP 2 refused")
	}
}

func TestVerifierFailModes(t *testing.T) {
	e := newEnv(t)
	e.ocsp.SetDown(true)
	e.crlDown.Store(true)
	chain := e.chain(t, 2)

	hard, logs := verifier(t, "", testConfig())
	if err := hard.VerifyClientCertificate([][]byte{chain[0].Raw}, [][]*x509.Certificate{chain}); !errors.Is(err, ErrStatusUnknown) {
		t.Fatalf("hard: err = %v, want ErrStatusUnknown", err)
	}
	if n := logs.FilterMessageSnippet("(fail_mode hard)").FilterLevelExact(zapcore.ErrorLevel).Len(); n != 1 {
		t.Fatalf("hard: log = %v", logs.All())
	}

	soft, logs := verifier(t, FailSoft, testConfig())
	if err := soft.VerifyClientCertificate([][]byte{chain[0].Raw}, [][]*x509.Certificate{chain}); err != nil {
		t.Fatalf("soft: err = %v, want accepted", err)
	}
	warn := logs.FilterMessageSnippet("(fail_mode soft)").FilterLevelExact(zapcore.WarnLevel).All()
	if len(warn) != 1 || warn[0].ContextMap()["serial"] != e.sb.TPP(2).TransportSerial {
		t.Fatalf("soft: log = %v", logs.All())
	}

	// A revoked certificate is refused in either mode.
	e.ocsp.SetDown(false)
	e.ocsp.Revoke(chain[0].SerialNumber, 1)
	soft2, _ := verifier(t, FailSoft, testConfig())
	if err := soft2.VerifyClientCertificate([][]byte{chain[0].Raw}, [][]*x509.Certificate{chain}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("soft, revoked: err = %v", err)
	}
}

func TestVerifierWithoutVerifiedChains(t *testing.T) {
	e := newEnv(t)
	chain := e.chain(t, 1)
	v, _ := verifier(t, "", testConfig())
	if err := v.VerifyClientCertificate([][]byte{chain[0].Raw}, nil); !errors.Is(err, ErrStatusUnknown) {
		t.Fatalf("err = %v, want refused (nothing verified, no issuer)", err)
	}
}
