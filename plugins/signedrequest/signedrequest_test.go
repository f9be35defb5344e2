package signedrequest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/envelope"
	"github.com/dcrgate/dcrgate/dcr/jwtclaims"
	"github.com/dcrgate/dcrgate/internal/jose"
	"github.com/dcrgate/dcrgate/internal/keyset"
	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

var sb *sandbox.Sandbox

// TestMain makes one sandbox for the package: RSA key generation dominates otherwise.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dcrgate-signedrequest-")
	if err != nil {
		panic(err)
	}
	if sb, err = sandbox.Init(sandbox.Options{Dir: dir, TPPs: 1}); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func fixture(t *testing.T) (*sandbox.Sandbox, *tppclient.Client) {
	t.Helper()
	c, err := tppclient.FromSandbox(sb, sb.TPP(1), "https://bank.example/register", "https://bank.example")
	if err != nil {
		t.Fatal(err)
	}
	return sb, c
}

func provisioned(t *testing.T, s *SignedRequest) *SignedRequest {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := s.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Cleanup() })
	return s
}

func exchange(body []byte, softwareID string) *dcr.Exchange {
	return &dcr.Exchange{
		Operation:         dcr.OpRegister,
		Now:               time.Now(),
		Body:              body,
		SoftwareStatement: &dcr.SoftwareStatement{SoftwareID: softwareID},
	}
}

func TestProtect(t *testing.T) {
	sb, c := fixture(t)
	s := provisioned(t, &SignedRequest{Audience: []string{"https://bank.example", "bank-id"},
		Keys: &keyset.Config{File: sb.TPP(1).JWKSFile}})
	now := time.Now().Unix()

	cases := []struct {
		name   string
		change map[string]any
		opts   tppclient.SignOptions
		want   string // substring of the error description; "" = accepted
	}{
		{"good", nil, tppclient.SignOptions{}, ""},
		{"aud as an array naming us", map[string]any{"aud": []string{"other", "bank-id"}}, tppclient.SignOptions{}, ""},
		{"ES256 key", nil, tppclient.SignOptions{Alg: "ES256", Key: ecKey(t, sb)}, ""},
		{"iss not the software_id", map[string]any{"iss": "x"}, tppclient.SignOptions{}, "iss"},
		{"iss missing", map[string]any{"iss": nil}, tppclient.SignOptions{}, "iss is required"},
		{"aud missing", map[string]any{"aud": nil}, tppclient.SignOptions{}, "aud is required"},
		{"aud wrong", map[string]any{"aud": "https://evil.example"}, tppclient.SignOptions{}, "aud does not name"},
		{"aud a number", map[string]any{"aud": 5}, tppclient.SignOptions{}, "aud must be"},
		{"iat missing", map[string]any{"iat": nil}, tppclient.SignOptions{}, "iat is required"},
		{"iat in the future", map[string]any{"iat": now + 300, "exp": now + 600}, tppclient.SignOptions{}, "iat is in the future"},
		{"iat within leeway", map[string]any{"iat": now + 10, "exp": now + 600}, tppclient.SignOptions{}, ""},
		{"iat too old", map[string]any{"iat": now - 2*3600, "exp": now + 60}, tppclient.SignOptions{}, "iat is older"},
		{"exp missing", map[string]any{"exp": nil}, tppclient.SignOptions{}, "exp is required"},
		{"exp past", map[string]any{"iat": now - 600, "exp": now - 120}, tppclient.SignOptions{}, "expired"},
		{"exp before iat", map[string]any{"iat": now, "exp": now - 1}, tppclient.SignOptions{}, "exp must be after iat"},
		{"lifetime too long", map[string]any{"exp": now + 2*3600}, tppclient.SignOptions{}, "more than"},
		{"nbf in the future", map[string]any{"nbf": now + 600}, tppclient.SignOptions{}, "nbf"},
		{"jti missing", map[string]any{"jti": nil}, tppclient.SignOptions{}, "jti is required"},
		{"jti empty", map[string]any{"jti": ""}, tppclient.SignOptions{}, "jti is required"},
		{"jti a number", map[string]any{"jti": 7}, tppclient.SignOptions{}, "jti is required"},
		{"jti too long", map[string]any{"jti": strings.Repeat("a", jwtclaims.MaxJTILength+1)}, tppclient.SignOptions{}, "longer than"},
		{"alg none", nil, tppclient.SignOptions{Alg: "none"}, "signature"},
		{"no kid", nil, tppclient.SignOptions{KID: new(string)}, "signature"},
		{"RS256 not allowed", nil, tppclient.SignOptions{Alg: "RS256"}, "signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := c.Claims()
			for k, v := range tc.change {
				if v == nil {
					delete(claims, k)
				} else {
					claims[k] = v
				}
			}
			body, err := c.Sign(claims, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			x := exchange(body, c.SoftwareID)
			res, err := s.Protect(context.Background(), x, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if res.RequestClaims == nil || res.RequestKeyID == "" || len(res.Once) != 1 {
					t.Fatalf("accepted without returning the claims: %+v", res)
				}
				if c := res.Once[0]; c.Key != envelope.ReplayKey(claims["iss"].(string), claims["jti"].(string)) || c.TTL <= 0 || c.TTL > 2*time.Hour || c.Reject == nil {
					t.Fatalf("replay claim %+v", c)
				}
				return
			}
			var e *dcr.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != dcr.CodeInvalidClientMetadata || !strings.Contains(e.Description, tc.want) {
				t.Fatalf("got %v, want 400 invalid_client_metadata with %q", err, tc.want)
			}
			if len(res.Once) != 0 || res.RequestClaims != nil {
				t.Fatal("a rejected request must return nothing")
			}
		})
	}
}

func TestProtectSkipsReadAndDelete(t *testing.T) {
	s := provisioned(t, &SignedRequest{Audience: []string{"a"}})
	for _, op := range []dcr.Operation{dcr.OpRead, dcr.OpDelete} {
		if _, err := s.Protect(context.Background(), &dcr.Exchange{Operation: op}, nil); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
}

type failingSource struct{}

func (failingSource) Key(context.Context, string) (jwk.Key, error) {
	return nil, errors.Join(jose.ErrKeyUnavailable, errors.New("connection refused"))
}

// A configured key source that is down is our outage (503); the TPP's own JWKS endpoint being
// down is the TPP's problem (400).
func TestKeySourceDown(t *testing.T) {
	_, c := fixture(t)
	s := provisioned(t, &SignedRequest{Audience: []string{"https://bank.example"}})
	s.keys = failingSource{}
	body, _ := c.Sign(c.Claims(), tppclient.SignOptions{})
	var e *dcr.Error
	if _, err := s.Protect(context.Background(), exchange(body, c.SoftwareID), nil); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("configured source down: %v", err)
	}

	s.keys = nil // keys from the SSA's software_jwks_endpoint, which nobody serves here
	x := exchange(body, c.SoftwareID)
	x.SoftwareStatement.JWKSURI = "https://127.0.0.1:1/jwks.json"
	x.SoftwareStatement.AllowedHosts = []string{"127.0.0.1:1"}
	if _, err := s.Protect(context.Background(), x, nil); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Fatalf("TPP endpoint down: %v", err)
	}
	x.SoftwareStatement.AllowedHosts = []string{"elsewhere.example"}
	if _, err := s.Protect(context.Background(), x, nil); !errors.As(err, &e) || e.Code != dcr.CodeInvalidSoftwareStatement {
		t.Fatalf("TPP endpoint on a host the directory does not allow: %v", err)
	}
}

func TestValidate(t *testing.T) {
	if err := (&SignedRequest{}).Validate(); err == nil {
		t.Fatal("audience must be required")
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := (&SignedRequest{Audience: []string{"a"}, Algorithms: []string{"HS256"}}).Provision(ctx); err == nil {
		t.Fatal("HS256 must be refused")
	}
	if err := (&SignedRequest{Audience: []string{"a"}, Algorithms: []string{"none"}}).Provision(ctx); err == nil {
		t.Fatal("none must be refused")
	}
}

func ecKey(t *testing.T, sb *sandbox.Sandbox) jwk.Key {
	t.Helper()
	k, _, err := tppclient.LoadSigningKey(sb.TPP(1).SigningKeyEC, sb.TPP(1).SigningKIDEC, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// seenRegistry is a Registry whose once store holds the keys in used; it counts look-ups.
type seenRegistry struct {
	used    map[string]bool
	err     error
	lookups int
}

func (r *seenRegistry) Get(context.Context, string) (*dcr.Registration, error) {
	return nil, dcr.ErrNotFound
}

func (r *seenRegistry) CountBySoftware(context.Context, string, string) (int, error) {
	return 0, nil
}

func (r *seenRegistry) Denied(context.Context, string, string) (dcr.Denial, error) {
	return dcr.Denial{}, nil
}

func (r *seenRegistry) Seen(_ context.Context, key string) (bool, error) {
	r.lookups++
	return r.used[key], r.err
}

// TestScreen: a request whose (iss, jti) was used is refused from its unverified claims with
// the commit's answer, whatever its signature; anything else passes the screen untouched.
func TestScreen(t *testing.T) {
	_, c := fixture(t)
	// No key source at all: the screen must not need one.
	s := provisioned(t, &SignedRequest{Audience: []string{"https://bank.example"}})
	claims := c.Claims()
	body, err := c.Sign(claims, tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A signature nobody could verify: the screen decides without looking at it.
	dot := strings.LastIndexByte(string(body), '.')
	forged := append(append([]byte{}, body[:dot+1]...), "AAAA"...)
	key := envelope.ReplayKey(claims["iss"].(string), claims["jti"].(string))
	x := &dcr.Exchange{Operation: dcr.OpRegister, Body: forged}

	reg := &seenRegistry{used: map[string]bool{key: true}}
	err = s.Screen(context.Background(), x, reg)
	var e *dcr.Error
	if !errors.As(err, &e) || !reflectDeepEqual(e, envelope.ReplayRejection(claims["jti"].(string))) {
		t.Fatalf("used jti: %v, want the replay refusal", err)
	}
	x.Operation = dcr.OpUpdate
	if err := s.Screen(context.Background(), x, reg); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Fatalf("used jti on update: %v", err)
	}

	noJTI := c.Claims()
	delete(noJTI, "jti")
	noJTIBody, err := c.Sign(noJTI, tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		op   dcr.Operation
		reg  *seenRegistry
		body []byte
		want int // look-ups
	}{
		"unused jti":          {dcr.OpRegister, &seenRegistry{used: map[string]bool{}}, forged, 1},
		"same jti, other iss": {dcr.OpRegister, &seenRegistry{used: map[string]bool{envelope.ReplayKey("other", claims["jti"].(string)): true}}, forged, 1},
		"no jti":              {dcr.OpRegister, &seenRegistry{used: map[string]bool{key: true}}, noJTIBody, 0},
		"not a JWS":           {dcr.OpRegister, &seenRegistry{used: map[string]bool{key: true}}, []byte("{}"), 0},
		"read":                {dcr.OpRead, &seenRegistry{used: map[string]bool{key: true}}, forged, 0},
		"delete":              {dcr.OpDelete, &seenRegistry{used: map[string]bool{key: true}}, forged, 0},
	} {
		x := &dcr.Exchange{Operation: tc.op, Body: tc.body}
		if err := s.Screen(context.Background(), x, tc.reg); err != nil || tc.reg.lookups != tc.want {
			t.Errorf("%s: %v after %d look-ups, want none after %d", name, err, tc.reg.lookups, tc.want)
		}
	}

	down := &seenRegistry{err: errors.New("connection refused")}
	x.Operation = dcr.OpRegister
	if err := s.Screen(context.Background(), x, down); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("store down: %v, want 503", err)
	}
}

func reflectDeepEqual(a, b *dcr.Error) bool {
	return a.Status == b.Status && a.Code == b.Code && a.Description == b.Description
}
