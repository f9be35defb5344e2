package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/internal/jose"
)

// testKey is an EC P-256 key pair with a kid; EC keeps key generation fast.
type testKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newTestKey(t testing.TB, kid string) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, priv: priv}
}

func (k testKey) public(t testing.TB) jwk.Key {
	t.Helper()
	pub, err := jwk.FromRaw(&k.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Set(jwk.KeyIDKey, k.kid)
	return pub
}

func (k testKey) sign(t testing.TB, claims map[string]any) []byte {
	t.Helper()
	payload, _ := json.Marshal(claims)
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, k.kid)
	tok, err := jws.Sign(payload, jws.WithKey(jwa.ES256, k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func setJSON(t testing.TB, keys ...testKey) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k.public(t)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer is a TLS origin whose response can be changed between requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	status int
	body   []byte
	header http.Header
	delay  time.Duration
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{status: http.StatusOK, body: body, header: http.Header{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	if r.URL.Path == "/redirect" {
		http.Redirect(w, r, "/jwks", http.StatusFound)
		return
	}
	s.mu.Lock()
	status, body, header, delay := s.status, s.body, s.header.Clone(), s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	for name, values := range header {
		w.Header()[name] = values
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *jwksServer) set(status int, body []byte, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
	if header == nil {
		header = http.Header{}
	}
	s.header = header
}

func (s *jwksServer) setDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

func (s *jwksServer) host() string { return strings.TrimPrefix(s.URL, "https://") }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestFetcher(t *testing.T, srv *jwksServer, cfg FetcherConfig) (*Fetcher, *fakeClock) {
	t.Helper()
	if cfg.RootCAs == nil && srv != nil {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		cfg.RootCAs = pool
	}
	f := NewFetcher(cfg)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.now = clock.Now
	t.Cleanup(f.client.CloseIdleConnections)
	return f, clock
}

func wantHits(t *testing.T, srv *jwksServer, want int64) {
	t.Helper()
	if got := srv.hits.Load(); got != want {
		t.Fatalf("origin hits = %d, want %d", got, want)
	}
}

func mustKey(t *testing.T, f *Fetcher, url, kid string) jwk.Key {
	t.Helper()
	key, err := f.Key(context.Background(), url, kid)
	if err != nil {
		t.Fatalf("Key(%s): %v", kid, err)
	}
	if key.KeyID() != kid {
		t.Fatalf("got kid %q, want %q", key.KeyID(), kid)
	}
	return key
}

func TestFetchAndCacheHit(t *testing.T) {
	k1, k2 := newTestKey(t, "k1"), newTestKey(t, "k2")
	srv := newJWKSServer(t, setJSON(t, k1, k2))
	f, _ := newTestFetcher(t, srv, FetcherConfig{})
	url := srv.URL + "/jwks"
	mustKey(t, f, url, "k1")
	mustKey(t, f, url, "k2")
	mustKey(t, f, url, "k1")
	wantHits(t, srv, 1)
}

func TestCacheLifetime(t *testing.T) {
	k1 := newTestKey(t, "k1")
	for _, tc := range []struct {
		name   string
		header http.Header
		fresh  time.Duration // still cached after this long
		stale  time.Duration // refetched after this long
	}{
		{"max-age honoured", http.Header{"Cache-Control": {"public, max-age=300"}}, 299 * time.Second, 301 * time.Second},
		{"max-age less Age", http.Header{"Cache-Control": {"max-age=300"}, "Age": {"200"}}, 99 * time.Second, 101 * time.Second},
		{"max-age below MinTTL", http.Header{"Cache-Control": {"max-age=5"}}, 59 * time.Second, 61 * time.Second},
		{"max-age above MaxTTL", http.Header{"Cache-Control": {"max-age=999999999999999999999"}}, 24*time.Hour - time.Second, 24*time.Hour + time.Second},
		{"no-store clamped to MinTTL", http.Header{"Cache-Control": {"no-store"}}, 59 * time.Second, 61 * time.Second},
		{"no-cache clamped to MinTTL", http.Header{"Cache-Control": {"max-age=3600, no-cache"}}, 59 * time.Second, 61 * time.Second},
		{"invalid max-age is stale", http.Header{"Cache-Control": {"max-age=soon"}}, 59 * time.Second, 61 * time.Second},
		{"Expires", http.Header{"Date": {"Thu, 01 Jan 2026 00:00:00 GMT"}, "Expires": {"Thu, 01 Jan 2026 00:10:00 GMT"}}, 9 * time.Minute, 11 * time.Minute},
		{"Expires in the past", http.Header{"Expires": {"Mon, 01 Jan 2024 00:00:00 GMT"}}, 59 * time.Second, 61 * time.Second},
		{"invalid Expires", http.Header{"Expires": {"0"}}, 59 * time.Second, 61 * time.Second},
		{"max-age beats Expires", http.Header{"Cache-Control": {"max-age=120"}, "Expires": {"Mon, 01 Jan 2024 00:00:00 GMT"}}, 119 * time.Second, 121 * time.Second},
		{"no headers: DefaultTTL", nil, 59 * time.Minute, 61 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, setJSON(t, k1))
			srv.set(http.StatusOK, setJSON(t, k1), tc.header)
			f, clock := newTestFetcher(t, srv, FetcherConfig{})
			url := srv.URL + "/jwks"
			mustKey(t, f, url, "k1")
			clock.Advance(tc.fresh)
			mustKey(t, f, url, "k1")
			wantHits(t, srv, 1)
			clock.Advance(tc.stale - tc.fresh)
			mustKey(t, f, url, "k1")
			wantHits(t, srv, 2)
		})
	}
}

func TestUnknownKIDRefetchRateLimitedAndRotation(t *testing.T) {
	k1, k2 := newTestKey(t, "k1"), newTestKey(t, "k2")
	srv := newJWKSServer(t, setJSON(t, k1))
	f, clock := newTestFetcher(t, srv, FetcherConfig{RefreshOnUnknownKIDInterval: time.Minute})
	url := srv.URL + "/jwks"
	ctx := context.Background()

	mustKey(t, f, url, "k1")
	// The set was fetched just now: an unknown kid does not refetch yet.
	if _, err := f.Key(ctx, url, "k2"); !errors.Is(err, jose.ErrUnknownKID) {
		t.Fatalf("err = %v, want ErrUnknownKID", err)
	}
	wantHits(t, srv, 1)

	clock.Advance(61 * time.Second)
	if _, err := f.Key(ctx, url, "k2"); !errors.Is(err, jose.ErrUnknownKID) {
		t.Fatalf("err = %v, want ErrUnknownKID", err)
	}
	wantHits(t, srv, 2)
	for range 10 {
		clock.Advance(5 * time.Second)
		if _, err := f.Key(ctx, url, "made-up"); !errors.Is(err, jose.ErrUnknownKID) {
			t.Fatalf("err = %v, want ErrUnknownKID", err)
		}
	}
	wantHits(t, srv, 2)

	// The signer rotates in k2; the next permitted refetch picks it up.
	srv.set(http.StatusOK, setJSON(t, k2), nil)
	clock.Advance(11 * time.Second)
	mustKey(t, f, url, "k2")
	wantHits(t, srv, 3)
	if _, err := f.Key(ctx, url, "k1"); !errors.Is(err, jose.ErrUnknownKID) {
		t.Fatalf("rotated-out k1: err = %v, want ErrUnknownKID", err)
	}
	wantHits(t, srv, 3)
}

func TestStaleServedWhileOriginFails(t *testing.T) {
	k1 := newTestKey(t, "k1")
	srv := newJWKSServer(t, setJSON(t, k1))
	f, clock := newTestFetcher(t, srv, FetcherConfig{RefreshOnUnknownKIDInterval: time.Minute})
	url := srv.URL + "/jwks"
	mustKey(t, f, url, "k1")

	for _, failure := range []struct {
		status int
		body   string
	}{
		{http.StatusInternalServerError, "oops"},
		{http.StatusOK, "not json"},
		{http.StatusOK, `{"keys":[]}`},
	} {
		srv.set(failure.status, []byte(failure.body), nil)
		before := srv.hits.Load()
		clock.Advance(2 * time.Hour) // well past the 1h default lifetime
		mustKey(t, f, url, "k1")
		wantHits(t, srv, before+1)
		// The origin is retried at most once per interval, stale set served meanwhile.
		clock.Advance(30 * time.Second)
		mustKey(t, f, url, "k1")
		wantHits(t, srv, before+1)
		clock.Advance(31 * time.Second)
		mustKey(t, f, url, "k1")
		wantHits(t, srv, before+2)
	}

	// Recovery: a good response is cached again with its own lifetime.
	srv.set(http.StatusOK, setJSON(t, k1), http.Header{"Cache-Control": {"max-age=600"}})
	clock.Advance(61 * time.Second)
	mustKey(t, f, url, "k1")
	hits := srv.hits.Load()
	clock.Advance(599 * time.Second)
	mustKey(t, f, url, "k1")
	wantHits(t, srv, hits)
}

func TestNoCachedSetIsAnError(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.set(http.StatusInternalServerError, []byte(strings.Repeat("x", 64)+"SECRET-INTERNAL-DETAIL"), nil)
	f, _ := newTestFetcher(t, srv, FetcherConfig{})
	_, err := f.Key(context.Background(), srv.URL+"/jwks", "k1")
	if !errors.Is(err, ErrFetch) || !errors.Is(err, jose.ErrKeyUnavailable) {
		t.Fatalf("err = %v, want ErrFetch and ErrKeyUnavailable", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error quotes the response body beyond its prefix: %v", err)
	}
	t.Log(err)
}

func TestTooLargeBodyRefused(t *testing.T) {
	k1 := newTestKey(t, "k1")
	set := setJSON(t, k1)
	padded := []byte(strings.Replace(string(set), `{"keys":`, `{"padding":"`+strings.Repeat("p", 2048)+`","keys":`, 1))
	if _, err := ParseSet(padded); err != nil {
		t.Fatalf("padded set should be valid on its own: %v", err)
	}
	srv := newJWKSServer(t, padded)
	chunked := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Flushing before the end forces chunked encoding: no Content-Length to check.
		_, _ = w.Write(padded[:100])
		w.(http.Flusher).Flush()
		_, _ = w.Write(padded[100:])
	}))
	defer chunked.Close()
	for _, origin := range []*httptest.Server{srv.Server, chunked} {
		pool := x509.NewCertPool()
		pool.AddCert(origin.Certificate())
		f, _ := newTestFetcher(t, nil, FetcherConfig{MaxBytes: 1024, RootCAs: pool})
		_, err := f.Key(context.Background(), origin.URL+"/jwks", "k1")
		if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "1024") {
			t.Fatalf("err = %v, want ErrFetch naming the limit", err)
		}
		t.Log(err)
	}
}

func TestHTTPRefused(t *testing.T) {
	var hits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer plain.Close()
	f, _ := newTestFetcher(t, nil, FetcherConfig{})
	if _, err := f.Key(context.Background(), plain.URL+"/jwks", "k1"); !errors.Is(err, ErrNotHTTPS) {
		t.Fatalf("Key: err = %v, want ErrNotHTTPS", err)
	}
	host := strings.TrimPrefix(plain.URL, "http://")
	if _, err := f.Source(plain.URL+"/jwks", []string{host}); !errors.Is(err, ErrNotHTTPS) {
		t.Fatalf("Source: err = %v, want ErrNotHTTPS", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("plain http origin hit %d times", n)
	}
}

func TestHostNotAllowed(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, newTestKey(t, "k1")))
	f, _ := newTestFetcher(t, srv, FetcherConfig{})
	if _, err := f.Source(srv.URL+"/jwks", []string{"keystore.openbanking.org.uk"}); !errors.Is(err, ErrHostNotAllowed) {
		t.Fatalf("err = %v, want ErrHostNotAllowed", err)
	}
	src, err := f.Source(srv.URL+"/jwks", []string{"keystore.openbanking.org.uk", srv.host()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Key(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	wantHits(t, srv, 1)
}

func TestCheckURL(t *testing.T) {
	allowed := []string{"keystore.openbanking.org.uk", "*.example.com", "Alt.Example.org:8443"}
	for _, tc := range []struct {
		url  string
		want error
	}{
		{"https://keystore.openbanking.org.uk/org/ss.jwks", nil},
		{"HTTPS://KEYSTORE.openbanking.org.uk/x", nil},
		{"https://a.example.com/jwks", nil},
		{"https://a.b.example.com/jwks", nil},
		{"https://alt.example.org:8443/jwks", nil},
		{"http://keystore.openbanking.org.uk/x", ErrNotHTTPS},
		{"ftp://keystore.openbanking.org.uk/x", ErrNotHTTPS},
		{"//keystore.openbanking.org.uk/x", ErrNotHTTPS},
		{"keystore.openbanking.org.uk/x", ErrNotHTTPS},
		{"https://keystore.openbanking.org.uk:443/x", ErrHostNotAllowed},
		{"https://example.com/jwks", ErrHostNotAllowed},
		{"https://evilexample.com/jwks", ErrHostNotAllowed},
		{"https://a.example.com.evil.net/jwks", ErrHostNotAllowed},
		{"https://a.example.com:8443/jwks", ErrHostNotAllowed},
		{"https://alt.example.org/jwks", ErrHostNotAllowed},
		{"https://keystore.openbanking.org.uk.evil.net/x", ErrHostNotAllowed},
		{"https://user:pw@keystore.openbanking.org.uk/x", ErrInvalidURL},
		{"https://keystore.openbanking.org.uk@evil.net/x", ErrInvalidURL},
		{"https://keystore.openbanking.org.uk/x#frag", ErrInvalidURL},
		{"https:///x", ErrInvalidURL},
		{"https://:443/x", ErrInvalidURL},
		{"https://keystore.openbanking.org.uk/\x00", ErrInvalidURL},
		{"https:keystore.openbanking.org.uk", ErrInvalidURL},
	} {
		err := CheckURL(tc.url, allowed)
		if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("CheckURL(%q) = %v, want %v", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("error leaks userinfo: %v", err)
		}
	}
	if err := CheckURL("https://keystore.openbanking.org.uk/x", nil); !errors.Is(err, ErrHostNotAllowed) {
		t.Errorf("empty allow-list: %v", err)
	}
	if err := CheckURL("https://a.example.com/x", []string{"*."}); !errors.Is(err, ErrHostNotAllowed) {
		t.Errorf(`"*." pattern: %v`, err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, newTestKey(t, "k1")))
	f, _ := newTestFetcher(t, srv, FetcherConfig{})
	_, err := f.Key(context.Background(), srv.URL+"/redirect", "k1")
	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("err = %v, want ErrFetch about a redirect", err)
	}
	wantHits(t, srv, 1) // only /redirect itself, never /jwks
}

func TestTimeout(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, newTestKey(t, "k1")))
	srv.setDelay(10 * time.Second)
	f, _ := newTestFetcher(t, srv, FetcherConfig{Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := f.Key(context.Background(), srv.URL+"/jwks", "k1")
	if !errors.Is(err, ErrFetch) || !errors.Is(err, jose.ErrKeyUnavailable) {
		t.Fatalf("err = %v, want ErrFetch", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("took %v with a 200ms timeout", elapsed)
	}
}

func TestCallerContextCancels(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, newTestKey(t, "k1")))
	srv.setDelay(10 * time.Second)
	f, _ := newTestFetcher(t, srv, FetcherConfig{Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.Key(ctx, srv.URL+"/jwks", "k1")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, jose.ErrKeyUnavailable) {
		t.Fatalf("err = %v, want DeadlineExceeded and ErrKeyUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("took %v after the caller's deadline", elapsed)
	}
}

func TestConcurrentCallsShareOneFetch(t *testing.T) {
	k1 := newTestKey(t, "k1")
	srv := newJWKSServer(t, setJSON(t, k1))
	srv.setDelay(100 * time.Millisecond)
	f, _ := newTestFetcher(t, srv, FetcherConfig{})
	url := srv.URL + "/jwks"
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := f.Key(context.Background(), url, "k1"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantHits(t, srv, 1)
}

func TestConcurrentUnknownKIDShareOneRefetch(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, newTestKey(t, "k1")))
	f, clock := newTestFetcher(t, srv, FetcherConfig{})
	url := srv.URL + "/jwks"
	mustKey(t, f, url, "k1")
	clock.Advance(2 * time.Minute)
	srv.setDelay(100 * time.Millisecond)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := f.Key(context.Background(), url, "nope-"+strconv.Itoa(i)); !errors.Is(err, jose.ErrUnknownKID) {
				t.Errorf("err = %v", err)
			}
		})
	}
	wg.Wait()
	wantHits(t, srv, 2)
}

func TestEvictionBound(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, newTestKey(t, "k1")))
	f, _ := newTestFetcher(t, srv, FetcherConfig{MaxEntries: 2})
	for _, p := range []string{"/a", "/b", "/c"} {
		mustKey(t, f, srv.URL+p, "k1")
	}
	wantHits(t, srv, 3)
	mustKey(t, f, srv.URL+"/c", "k1") // cached
	mustKey(t, f, srv.URL+"/b", "k1") // cached
	wantHits(t, srv, 3)
	mustKey(t, f, srv.URL+"/a", "k1") // evicted as the oldest
	wantHits(t, srv, 4)
	if n := len(f.entries); n != 2 {
		t.Fatalf("%d entries cached, bound is 2", n)
	}
}

func TestFetcherSourceVerifiesWithJose(t *testing.T) {
	k1 := newTestKey(t, "k1")
	attacker := newTestKey(t, "k1")
	srv := newJWKSServer(t, setJSON(t, k1))
	f, _ := newTestFetcher(t, srv, FetcherConfig{})
	src, err := f.Source(srv.URL+"/jwks", []string{srv.host()})
	if err != nil {
		t.Fatal(err)
	}
	algs := []jwa.SignatureAlgorithm{jwa.ES256}
	if _, _, err := jose.Verify(context.Background(), k1.sign(t, map[string]any{"iss": "tpp"}), algs, src); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, _, err := jose.Verify(context.Background(), attacker.sign(t, map[string]any{"iss": "tpp"}), algs, src); !errors.Is(err, jose.ErrBadSignature) {
		t.Fatalf("attacker token: err = %v, want ErrBadSignature", err)
	}
	srv.set(http.StatusServiceUnavailable, nil, nil)
	f2, _ := newTestFetcher(t, srv, FetcherConfig{})
	src2, _ := f2.Source(srv.URL+"/jwks", []string{srv.host()})
	if _, _, err := jose.Verify(context.Background(), k1.sign(t, map[string]any{}), algs, src2); !errors.Is(err, jose.ErrKeyUnavailable) {
		t.Fatalf("origin down: err = %v, want ErrKeyUnavailable", err)
	}
}

func TestStatic(t *testing.T) {
	k1 := newTestKey(t, "k1")
	set, err := ParseSet(setJSON(t, k1))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStatic(set)
	if key, err := s.Key(context.Background(), "k1"); err != nil || key.KeyID() != "k1" {
		t.Fatalf("Key(k1) = %v, %v", key, err)
	}
	for _, kid := range []string{"k2", ""} {
		if _, err := s.Key(context.Background(), kid); !errors.Is(err, jose.ErrUnknownKID) {
			t.Fatalf("Key(%q): err = %v, want ErrUnknownKID", kid, err)
		}
	}
	tok := k1.sign(t, map[string]any{"iss": "tpp"})
	if _, _, err := jose.Verify(context.Background(), tok, []jwa.SignatureAlgorithm{jwa.ES256}, s); err != nil {
		t.Fatalf("Verify with static source: %v", err)
	}
	if _, err := NewStatic(nil).Key(context.Background(), "k1"); !errors.Is(err, jose.ErrUnknownKID) {
		t.Fatalf("nil set: %v", err)
	}
}

func TestParseSet(t *testing.T) {
	k1, k2 := newTestKey(t, "k1"), newTestKey(t, "k2")
	if set, err := ParseSet(setJSON(t, k1, k2)); err != nil || set.Len() != 2 {
		t.Fatalf("ParseSet = %v, %v", set, err)
	}

	privJWK, _ := jwk.FromRaw(k1.priv)
	_ = privJWK.Set(jwk.KeyIDKey, "k1")
	privJSON, _ := json.Marshal(map[string]any{"keys": []any{privJWK}})
	octJWK, _ := jwk.FromRaw([]byte("shared-secret-shared-secret-32by"))
	_ = octJWK.Set(jwk.KeyIDKey, "oct")
	octJSON, _ := json.Marshal(map[string]any{"keys": []any{octJWK}})
	noKid, _ := jwk.FromRaw(&k1.priv.PublicKey)
	noKidJSON, _ := json.Marshal(map[string]any{"keys": []any{noKid}})
	single, _ := json.Marshal(k1.public(t))
	dup := []byte(strings.Replace(string(setJSON(t, k1, k2)), `"kid":"k2"`, `"kid":"k1"`, 1))
	encDup := func() []byte {
		enc := k2.public(t)
		_ = enc.Set(jwk.KeyIDKey, "k1")
		_ = enc.Set(jwk.KeyUsageKey, "enc")
		b, _ := json.Marshal(map[string]any{"keys": []any{enc, k1.public(t)}})
		return b
	}()
	many := func() []byte {
		keys := make([]any, MaxKeys+1)
		for i := range keys {
			k := k1.public(t)
			_ = k.Set(jwk.KeyIDKey, fmt.Sprintf("k%d", i))
			keys[i] = k
		}
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}()
	badEC := []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"bad","x":"AAAA","y":"AAAA"}]}`)

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"private key", privJSON},
		{"symmetric key", octJSON},
		{"missing kid", noKidJSON},
		{"single JWK, not a set", single},
		{"empty keys", []byte(`{"keys":[]}`)},
		{"null keys", []byte(`{"keys":null}`)},
		{"no keys member", []byte(`{}`)},
		{"not JSON", []byte(`<html>`)},
		{"array", []byte(`[]`)},
		{"duplicate signing kid", dup},
		{"too many keys", many},
		{"invalid EC point", badEC},
		{"too large", append([]byte(`{"keys":[],"p":"`), make([]byte, MaxSetSize)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSet(tc.data)
			if !errors.Is(err, ErrInvalidSet) {
				t.Fatalf("err = %v, want ErrInvalidSet", err)
			}
			t.Log(err)
		})
	}

	// A kid shared by an encryption key and a signing key resolves to the signing key.
	set, err := ParseSet(encDup)
	if err != nil {
		t.Fatalf("enc+sig sharing a kid: %v", err)
	}
	key, err := NewStatic(set).Key(context.Background(), "k1")
	if err != nil || key.KeyUsage() == "enc" {
		t.Fatalf("Key(k1) = %v (use %q), %v", key, key.KeyUsage(), err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(good, setJSON(t, newTestKey(t, "k1")), 0o600); err != nil {
		t.Fatal(err)
	}
	if set, err := LoadFile(good); err != nil || set.Len() != 1 {
		t.Fatalf("LoadFile = %v, %v", set, err)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"keys":[]}`), 0o600)
	if _, err := LoadFile(bad); !errors.Is(err, ErrInvalidSet) || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// When every waiter has given up, the shared fetch is cancelled; a caller arriving after
// that must get a fetch of its own rather than the cancelled one's error.
func TestAbandonedFetchNotJoined(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, newTestKey(t, "k1")))
	srv.setDelay(300 * time.Millisecond)
	f, _ := newTestFetcher(t, srv, FetcherConfig{})
	url := srv.URL + "/jwks"
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.Key(ctx, url, "k1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first caller: err = %v", err)
	}
	mustKey(t, f, url, "k1")
}

func TestLongKidClippedInErrors(t *testing.T) {
	set, err := ParseSet(setJSON(t, newTestKey(t, "k1")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewStatic(set).Key(context.Background(), strings.Repeat("A", 10000))
	if !errors.Is(err, jose.ErrUnknownKID) || len(err.Error()) > 300 {
		t.Fatalf("err (%d bytes) = %.300v", len(err.Error()), err)
	}
}

func FuzzParseSet(f *testing.F) {
	f.Add(setJSON(f, newTestKey(f, "k1")))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"o","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","x":"AAAA"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseSet(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSet) {
				t.Fatalf("error does not wrap ErrInvalidSet: %v", err)
			}
			return
		}
		if set.Len() == 0 {
			t.Fatal("accepted an empty set")
		}
		for i := range set.Len() {
			key, _ := set.Key(i)
			if key.KeyID() == "" {
				t.Fatal("accepted a key without kid")
			}
			if private, _ := jwk.IsPrivateKey(key); private {
				t.Fatal("accepted a private key")
			}
		}
	})
}

func TestCancelledContextStartsNoFetch(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, newTestKey(t, "k1")))
	f, clock := newTestFetcher(t, srv, FetcherConfig{})
	url := srv.URL + "/jwks"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Key(ctx, url, "k1"); !errors.Is(err, context.Canceled) || !errors.Is(err, jose.ErrKeyUnavailable) {
		t.Fatalf("no cache: err = %v", err)
	}
	wantHits(t, srv, 0)
	mustKey(t, f, url, "k1")
	clock.Advance(2 * time.Hour)
	// An expired set is still served to a caller that has given up; no fetch starts.
	if _, err := f.Key(ctx, url, "k1"); err != nil {
		t.Fatalf("cached: err = %v", err)
	}
	wantHits(t, srv, 1)
}
