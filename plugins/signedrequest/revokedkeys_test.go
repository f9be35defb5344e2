package signedrequest

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/revokedkeys"
	"github.com/dcrgate/dcrgate/internal/jwks"
	"github.com/dcrgate/dcrgate/internal/keyset"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// revokedServer serves revoked key sets by path; a path set to "" answers 503.
type revokedServer struct {
	*httptest.Server
	mu   sync.Mutex
	sets map[string]string
}

func newRevokedServer(t *testing.T) (*revokedServer, keyset.FetchConfig) {
	t.Helper()
	rs := &revokedServer{sets: map[string]string{}}
	rs.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		body := rs.sets[r.URL.Path]
		rs.mu.Unlock()
		if body == "" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(rs.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	var tc tlsclient.Config
	if err := tc.AddTrustedFiles(ca); err != nil {
		t.Fatal(err)
	}
	// A distinct fetch config per test: the pooled fetcher (and its cache) is its own.
	return rs, keyset.FetchConfig{TLS: &tc, CacheTTL: 1}
}

func (rs *revokedServer) set(path, body string) {
	rs.mu.Lock()
	rs.sets[path] = body
	rs.mu.Unlock()
}

func (rs *revokedServer) sources() []dcr.RevokedKeySet {
	return []dcr.RevokedKeySet{
		{Claim: dcr.ClaimSoftwareJWKSRevoked, URL: rs.URL + "/sw.revoked.json"},
		{Claim: dcr.ClaimOrgJWKSRevoked, URL: rs.URL + "/org.revoked.json"},
	}
}

// revokedSetOf is a revoked set listing the TPP's signing key as published.
func revokedSetOf(t *testing.T, kid string) string {
	t.Helper()
	data, err := os.ReadFile(sb.TPP(1).JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := set.LookupKeyID(kid)
	if !ok {
		t.Fatalf("no key %q", kid)
	}
	out := jwk.NewSet()
	_ = out.AddKey(key)
	b, _ := json.Marshal(out)
	return string(b)
}

func TestRevokedSigningKey(t *testing.T) {
	_, c := fixture(t)
	kid := sb.TPP(1).SigningKID
	listed := revokedSetOf(t, kid)
	// The same key under another kid: found by its thumbprint.
	renamed := strings.Replace(listed, `"kid":"`+kid+`"`, `"kid":"renamed"`, 1)
	if renamed == listed {
		t.Fatal("could not rename the listed key")
	}
	for _, tc := range []struct {
		name        string
		mode        string
		sw, org     string // served bodies; "" = down
		status      int    // 0 = accepted
		want        string
		checked     bool
		unavailable int
	}{
		{"nothing revoked", "", `{"keys":[]}`, `{"keys":[]}`, 0, "", true, 0},
		{"listed by kid in the org set", "", `{"keys":[]}`, listed, 400, `the request signing key "` + kid + `" is revoked: it is listed (by kid) in the revoked key set at `, true, 0},
		{"listed by thumbprint", "", renamed, `{"keys":[]}`, 400, "listed (by thumbprint)", true, 0},
		{"a set down, hard", revokedkeys.FailHard, `{"keys":[]}`, "", 503, "cannot be fetched", true, 1},
		{"both down, default hard", "", "", "", 503, "cannot be fetched", false, 2},
		{"both down, soft", revokedkeys.FailSoft, "", "", 0, "", false, 2},
		{"listed and the other down, soft", revokedkeys.FailSoft, "", listed, 400, "is revoked", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, fetch := newRevokedServer(t)
			rs.set("/sw.revoked.json", tc.sw)
			rs.set("/org.revoked.json", tc.org)
			s := provisioned(t, &SignedRequest{Audience: []string{"https://bank.example"}, Fetch: fetch,
				Keys: &keyset.Config{File: sb.TPP(1).JWKSFile}, RevokedKeys: RevokedKeys{FailMode: tc.mode}})
			body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			x := exchange(body, c.SoftwareID)
			x.SoftwareStatement.RevokedKeySets = rs.sources()
			res, err := s.Protect(context.Background(), x, nil)
			if tc.status != 0 {
				var e *dcr.Error
				if !errors.As(err, &e) || e.Status != tc.status || !strings.Contains(e.Description, tc.want) {
					t.Fatalf("got %v, want %d with %q", err, tc.status, tc.want)
				}
				if tc.status == 400 && (e.Code != dcr.CodeInvalidClientMetadata || !strings.Contains(e.Description, rs.URL)) {
					t.Fatalf("400 = %+v", e)
				}
				if tc.status == 503 && e.Header.Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
				if res.SigningKey != nil || len(res.Once) != 0 {
					t.Fatal("a rejected request must return nothing")
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			k := res.SigningKey
			if k == nil || k.KeyID != kid || k.Thumbprint == "" || len(k.RevokedKeySets) != 2 {
				t.Fatalf("signing key = %+v", k)
			}
			wantMode := tc.mode
			if wantMode == "" {
				wantMode = revokedkeys.FailHard
			}
			if k.Revocation.Checked != tc.checked || len(k.Revocation.Unavailable) != tc.unavailable || len(k.Revocation.Sources) != 2 || k.Revocation.FailMode != wantMode {
				t.Fatalf("revocation facts = %+v", k.Revocation)
			}
		})
	}
}

// An SSA without revoked key sets: nothing to look up, recorded as not checked.
func TestNoRevokedKeySets(t *testing.T) {
	_, c := fixture(t)
	s := provisioned(t, &SignedRequest{Audience: []string{"https://bank.example"}, Keys: &keyset.Config{File: sb.TPP(1).JWKSFile}})
	body, _ := c.Sign(c.Claims(), tppclient.SignOptions{})
	res, err := s.Protect(context.Background(), exchange(body, c.SoftwareID), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.SigningKey == nil || res.SigningKey.Revocation.Checked || len(res.SigningKey.Revocation.Sources) != 0 {
		t.Fatalf("signing key = %+v", res.SigningKey)
	}
}

// The request keys come from the SSA's embedded key set when it carries one.
func TestEmbeddedKeys(t *testing.T) {
	_, c := fixture(t)
	s := provisioned(t, &SignedRequest{Audience: []string{"https://bank.example"}})
	set, err := jwks.LoadFile(sb.TPP(1).JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := c.Sign(c.Claims(), tppclient.SignOptions{})
	x := exchange(body, c.SoftwareID)
	x.SoftwareStatement.EmbeddedKeys = jwks.NewStatic(set)
	x.SoftwareStatement.JWKSURI = "https://127.0.0.1:1/never-fetched.json"
	res, err := s.Protect(context.Background(), x, nil)
	if err != nil || res.SigningKey == nil || res.SigningKey.KeyID != sb.TPP(1).SigningKID {
		t.Fatalf("embedded keys: %+v, %v", res, err)
	}
	// A request signed with a key the embedded set does not hold is refused.
	other, _ := c.Sign(c.Claims(), tppclient.SignOptions{Alg: "ES256", Key: ecKey(t, sb), KID: ptr("not-embedded")})
	x = exchange(other, c.SoftwareID)
	x.SoftwareStatement.EmbeddedKeys = jwks.NewStatic(set)
	var e *dcr.Error
	if _, err := s.Protect(context.Background(), x, nil); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Fatalf("unknown kid: %v", err)
	}
}

// On a management call the registering key is looked up again: revoked → a refusal whose
// audit reason says revoked; fine or nothing stored → no vote.
func TestRegisteringKeyStep(t *testing.T) {
	rs, fetch := newRevokedServer(t)
	rs.set("/sw.revoked.json", `{"keys":[]}`)
	rs.set("/org.revoked.json", `{"keys":[]}`)
	s := provisioned(t, &SignedRequest{Audience: []string{"https://bank.example"}, Fetch: fetch})
	steps := s.CompanionSteps()
	if len(steps) != 1 || steps[0].Phase() != dcr.PhaseAuthenticate {
		t.Fatalf("companion steps = %+v", steps)
	}
	step := steps[0]
	kid := sb.TPP(1).SigningKID
	existing := &dcr.Registration{ClientID: "c1", SigningKey: &dcr.RegisteredKey{KeyID: kid, Thumbprint: "tp", RevokedKeySets: rs.sources()}}
	vote := func(op dcr.Operation, rec *dcr.Registration) (dcr.Vote, error) {
		res, err := step.Protect(context.Background(), &dcr.Exchange{Operation: op, Existing: rec}, nil)
		return res.Vote, err
	}
	for _, op := range []dcr.Operation{dcr.OpRead, dcr.OpUpdate, dcr.OpDelete} {
		if v, err := vote(op, existing); v != (dcr.Vote{}) || err != nil {
			t.Fatalf("%s, not revoked: %+v, %v", op, v, err)
		}
	}
	// A set is cached for its lifetime (at least a minute): a revocation shows at the next
	// fetch, here a set not fetched before.
	rs.set("/now.revoked.json", revokedSetOf(t, kid))
	revoked := existing.Clone()
	revoked.SigningKey.RevokedKeySets[1].URL = rs.URL + "/now.revoked.json"
	for _, op := range []dcr.Operation{dcr.OpRead, dcr.OpUpdate, dcr.OpDelete} {
		v, err := vote(op, revoked)
		if err != nil || v.Grant || !strings.HasPrefix(v.Refusal, "revoked: ") || !strings.Contains(v.Refusal, kid) {
			t.Fatalf("%s, revoked: %+v, %v", op, v, err)
		}
	}
	// Nothing to look up: register, an unknown client, a registration stored without its key.
	for _, rec := range []*dcr.Registration{nil, {ClientID: "old"}} {
		if v, err := vote(dcr.OpRead, rec); v != (dcr.Vote{}) || err != nil {
			t.Fatalf("nothing stored: %+v, %v", v, err)
		}
	}
	if v, err := vote(dcr.OpRegister, existing); v != (dcr.Vote{}) || err != nil {
		t.Fatalf("register: %+v, %v", v, err)
	}
	// The sets down under hard fail: the call cannot be decided (503).
	rs.set("/sw.revoked.json", "")
	rs.set("/org.revoked.json", "")
	if _, err := vote(dcr.OpRead, &dcr.Registration{ClientID: "c2", SigningKey: &dcr.RegisteredKey{KeyID: kid,
		RevokedKeySets: []dcr.RevokedKeySet{{Claim: dcr.ClaimOrgJWKSRevoked, URL: rs.URL + "/never-served.json"}}}}); dcr.AsError(err).Status != http.StatusServiceUnavailable {
		t.Fatalf("sets down: %v", err)
	}
}

func ptr(s string) *string { return &s }
