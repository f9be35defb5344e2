package tppclient_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
	"github.com/dcrgate/dcrgate/internal/tppclient/tppclienttest"
)

// One sandbox for the package: building one costs a few RSA key generations.
var (
	sbOnce sync.Once
	sbErr  error
	shared *sandbox.Sandbox
)

func testSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tppclient-sandbox-")
		if err != nil {
			sbErr = err
			return
		}
		shared, sbErr = sandbox.Init(sandbox.Options{Dir: dir, TPPs: 2})
	})
	if sbErr != nil {
		t.Fatal(sbErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		os.RemoveAll(shared.Dir)
	}
	os.Exit(code)
}

func newClient(t *testing.T, endpoint string) (*tppclient.Client, *sandbox.Sandbox) {
	t.Helper()
	sb := testSandbox(t)
	c, err := tppclient.FromSandbox(sb, sb.TPPs[0], endpoint, "")
	if err != nil {
		t.Fatal(err)
	}
	return c, sb
}

func tppJWKS(t *testing.T, tpp *sandbox.TPP) jwk.Set {
	t.Helper()
	b, err := os.ReadFile(tpp.JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestFromSandbox(t *testing.T) {
	c, sb := newClient(t, "https://localhost:8443/register")
	tpp := sb.TPPs[0]
	if c.Audience != "https://localhost:8443" {
		t.Errorf("Audience = %q", c.Audience)
	}
	if c.SoftwareID != tpp.SoftwareID || c.Alg != "PS256" || c.SigningKey.KeyID() != tpp.SigningKID {
		t.Errorf("client = %+v", c)
	}
	if c.CertSubjectDN != tpp.TransportSubjectDN {
		t.Errorf("CertSubjectDN = %q, want %q", c.CertSubjectDN, tpp.TransportSubjectDN)
	}
	if !reflect.DeepEqual(c.RedirectURIs, tpp.RedirectURIs) {
		t.Errorf("RedirectURIs = %v", c.RedirectURIs)
	}
	if ssa, _ := tpp.SSA(); c.SoftwareStatement != ssa {
		t.Error("SoftwareStatement is not the stored SSA")
	}
	if explicit, err := tppclient.FromSandbox(sb, tpp, "https://gw/register", "https://issuer.example"); err != nil || explicit.Audience != "https://issuer.example" {
		t.Errorf("explicit audience: %v %v", explicit, err)
	}
}

func TestClaimsShape(t *testing.T) {
	c, sb := newClient(t, "https://localhost:8443/register")
	tpp := sb.TPPs[0]
	claims := c.Claims()
	want := map[string]any{
		"iss":                          tpp.SoftwareID,
		"aud":                          "https://localhost:8443",
		"redirect_uris":                []string{"https://tpp1.example.com/callback"},
		"token_endpoint_auth_method":   "tls_client_auth",
		"tls_client_auth_subject_dn":   "CN=" + tpp.SoftwareID + ",OU=" + tpp.OrgID + ",O=OpenBanking,C=GB",
		"grant_types":                  []string{"authorization_code", "client_credentials", "refresh_token"},
		"response_types":               []string{"code id_token"},
		"application_type":             "web",
		"id_token_signed_response_alg": "PS256",
		"request_object_signing_alg":   "PS256",
		"scope":                        "openid accounts payments",
		"software_statement":           c.SoftwareStatement,
	}
	for k, v := range want {
		if !reflect.DeepEqual(claims[k], v) {
			t.Errorf("%s = %#v, want %#v", k, claims[k], v)
		}
	}
	iat, exp := claims["iat"].(int64), claims["exp"].(int64)
	if d := time.Since(time.Unix(iat, 0)); d < -time.Second || d > 5*time.Second {
		t.Errorf("iat = %d", iat)
	}
	if exp-iat != 300 {
		t.Errorf("exp - iat = %d, want 300", exp-iat)
	}
	jti := claims["jti"].(string)
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(jti) || c.Claims()["jti"] == jti {
		t.Errorf("jti %q is not a fresh uuid", jti)
	}
	if len(claims) != len(want)+3 {
		t.Errorf("claims has %d entries, want %d: %v", len(claims), len(want)+3, claims)
	}
}

func TestSignVerifiesWithTPPJWKS(t *testing.T) {
	c, sb := newClient(t, "https://localhost:8443/register")
	set := tppJWKS(t, sb.TPPs[0])
	claims := c.Claims()
	token, err := c.Sign(claims, tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(token, jws.WithKeySet(set))
	if err != nil {
		t.Fatalf("request JWS does not verify with the TPP JWKS: %v", err)
	}
	var got map[string]any
	_ = json.Unmarshal(payload, &got)
	if got["jti"] != claims["jti"] || got["iss"] != claims["iss"] {
		t.Errorf("payload = %v", got)
	}
	hdr, _ := tppclient.DecodeHeader(string(token))
	if hdr["alg"] != "PS256" || hdr["kid"] != sb.TPPs[0].SigningKID || hdr["typ"] != "JWT" {
		t.Errorf("header = %v", hdr)
	}
	decoded, _ := tppclient.DecodeClaims(string(token))
	if decoded["jti"] != claims["jti"] {
		t.Error("DecodeClaims does not return the payload")
	}
}

func TestSignOptions(t *testing.T) {
	c, sb := newClient(t, "https://localhost:8443/register")
	tpp := sb.TPPs[0]
	set := tppJWKS(t, tpp)
	header := func(tok []byte) map[string]any {
		h, err := tppclient.DecodeHeader(string(tok))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	t.Run("ES256 with the EC key", func(t *testing.T) {
		ec, alg, err := tppclient.LoadSigningKey(tpp.SigningKeyEC, "", "")
		if err != nil || alg != "ES256" || ec.KeyID() != tpp.SigningKIDEC {
			t.Fatalf("LoadSigningKey: %v alg %s kid %s (want %s)", err, alg, ec.KeyID(), tpp.SigningKIDEC)
		}
		tok, err := c.Sign(c.Claims(), tppclient.SignOptions{Key: ec})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Verify(tok, jws.WithKeySet(set)); err != nil {
			t.Error(err)
		}
		if h := header(tok); h["alg"] != "ES256" || h["kid"] != tpp.SigningKIDEC {
			t.Errorf("header = %v", h)
		}
	})
	t.Run("kid override and omission", func(t *testing.T) {
		other := "not-a-known-kid"
		tok, _ := c.Sign(c.Claims(), tppclient.SignOptions{KID: &other})
		if header(tok)["kid"] != other {
			t.Errorf("header = %v", header(tok))
		}
		if _, err := jws.Verify(tok, jws.WithKeySet(set)); err == nil {
			t.Error("unknown kid verified")
		}
		empty := ""
		tok, _ = c.Sign(c.Claims(), tppclient.SignOptions{KID: &empty})
		if _, has := header(tok)["kid"]; has {
			t.Errorf("kid not omitted: %v", header(tok))
		}
	})
	t.Run("extra headers replace and remove", func(t *testing.T) {
		tok, err := c.Sign(c.Claims(), tppclient.SignOptions{ExtraHeaders: map[string]any{"typ": nil, "crit": []string{"b64"}, "x-test": "1"}})
		if err != nil {
			t.Fatal(err)
		}
		h := header(tok)
		if _, has := h["typ"]; has || h["x-test"] != "1" || h["crit"] == nil {
			t.Errorf("header = %v", h)
		}
	})
	t.Run("alg none", func(t *testing.T) {
		tok, err := c.Sign(c.Claims(), tppclient.SignOptions{Alg: "none"})
		if err != nil {
			t.Fatal(err)
		}
		if h := header(tok); h["alg"] != "none" || !strings.HasSuffix(string(tok), ".") {
			t.Errorf("alg none token %s", tok)
		}
	})
	t.Run("another key", func(t *testing.T) {
		other, _, err := tppclient.LoadSigningKey(sb.TPPs[1].SigningKey, tpp.SigningKID, "PS256")
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := c.Sign(c.Claims(), tppclient.SignOptions{Key: other})
		if header(tok)["kid"] != tpp.SigningKID {
			t.Errorf("header = %v", header(tok))
		}
		if _, err := jws.Verify(tok, jws.WithKeySet(set)); err == nil {
			t.Error("JWS signed by a foreign key verified with the TPP JWKS")
		}
	})
	t.Run("RS256 override", func(t *testing.T) {
		tok, err := c.Sign(c.Claims(), tppclient.SignOptions{Alg: "RS256"})
		if err != nil {
			t.Fatal(err)
		}
		k, _ := set.LookupKeyID(tpp.SigningKID)
		if _, err := jws.Verify(tok, jws.WithKey(jwa.RS256, k)); err != nil {
			t.Errorf("RS256: %v", err)
		}
	})
}

func TestApplyOverrides(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"scope": "openid", "jti": "x", "exp": int64(1)}
	}
	cases := []struct {
		name string
		kv   []string
		want map[string]any
	}{
		{"string", []string{"scope=openid accounts"}, map[string]any{"scope": "openid accounts", "jti": "x", "exp": int64(1)}},
		{"integer", []string{"exp=1900000000"}, map[string]any{"scope": "openid", "jti": "x", "exp": int64(1900000000)}},
		{"float", []string{"exp=1.5"}, map[string]any{"scope": "openid", "jti": "x", "exp": 1.5}},
		{"array", []string{`redirect_uris=["https://a/cb",1]`}, map[string]any{"scope": "openid", "jti": "x", "exp": int64(1), "redirect_uris": []any{"https://a/cb", int64(1)}}},
		{"object", []string{`x={"a":true,"n":2}`}, map[string]any{"scope": "openid", "jti": "x", "exp": int64(1), "x": map[string]any{"a": true, "n": int64(2)}}},
		{"bools and null", []string{"a=true", "b=false", "c=null"}, map[string]any{"scope": "openid", "jti": "x", "exp": int64(1), "a": true, "b": false, "c": nil}},
		{"quoted string stays a string", []string{`scope="123"`}, map[string]any{"scope": "123", "jti": "x", "exp": int64(1)}},
		{"not JSON", []string{"scope=123abc", "jti=1 2", "aud={bad"}, map[string]any{"scope": "123abc", "jti": "1 2", "exp": int64(1), "aud": "{bad"}},
		{"empty value", []string{"scope="}, map[string]any{"scope": "", "jti": "x", "exp": int64(1)}},
		{"value with =", []string{"aud=https://x/?a=b"}, map[string]any{"scope": "openid", "jti": "x", "exp": int64(1), "aud": "https://x/?a=b"}},
		{"remove", []string{"-jti", "-missing"}, map[string]any{"scope": "openid", "exp": int64(1)}},
		{"later wins", []string{"scope=a", "-scope", "scope=b"}, map[string]any{"scope": "b", "jti": "x", "exp": int64(1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := base()
			if err := tppclient.ApplyOverrides(got, tc.kv); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"noequals", "=value", "-"} {
		if err := tppclient.ApplyOverrides(base(), []string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestManagementCallsOverMTLS(t *testing.T) {
	sb := testSandbox(t)
	srv := tppclienttest.NewServer(t, sb, nil)
	c, err := tppclient.FromSandbox(sb, sb.TPPs[0], srv.Endpoint(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wantCert := func(r tppclienttest.Request) {
		t.Helper()
		if r.ClientCert == nil || r.ClientCert.Subject.String() != sb.TPPs[0].TransportSubjectDN {
			t.Errorf("%s %s: client certificate %v", r.Method, r.Path, r.ClientCert)
		}
	}

	body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Register(ctx, body, "", "initial-token")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusCreated || !res.OK() {
		t.Fatalf("register: %d %s", res.Status, res.Body)
	}
	r := srv.Last()
	if r.Method != http.MethodPost || r.Path != "/register" || r.ContentType != "application/jose" || r.Authorization != "Bearer initial-token" || string(r.Body) != string(body) {
		t.Errorf("register request = %+v", r)
	}
	wantCert(r)
	st, err := tppclient.StateFromResponse(res)
	if err != nil || st.RegistrationAccessToken == "" || !strings.HasSuffix(st.RegistrationClientURI, "/register/"+st.ClientID) {
		t.Fatalf("state = %+v, %v", st, err)
	}

	res, err = c.Get(ctx, st.ClientID, st.RegistrationAccessToken)
	if err != nil || res.Status != http.StatusOK || res.JSON["client_id"] != st.ClientID {
		t.Fatalf("get: %v %+v", err, res)
	}
	r = srv.Last()
	if r.Method != http.MethodGet || r.Path != "/register/"+st.ClientID || r.Authorization != "Bearer "+st.RegistrationAccessToken || r.ContentType != "" {
		t.Errorf("get request = %+v", r)
	}
	wantCert(r)

	res, err = c.Update(ctx, st.ClientID, st.RegistrationAccessToken, body)
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("update: %v %+v", err, res)
	}
	r = srv.Last()
	if r.Method != http.MethodPut || r.Path != "/register/"+st.ClientID || r.ContentType != "application/jose" || r.Authorization != "Bearer "+st.RegistrationAccessToken {
		t.Errorf("update request = %+v", r)
	}
	wantCert(r)

	if res, err = c.Get(ctx, st.ClientID, "wrong"); err != nil || res.Status != http.StatusUnauthorized || res.JSON["error"] != "invalid_token" || res.OK() {
		t.Errorf("get with a wrong token: %v %+v", err, res)
	}

	res, err = c.Delete(ctx, st.ClientID, st.RegistrationAccessToken)
	if err != nil || res.Status != http.StatusNoContent || res.JSON != nil || len(res.Body) != 0 {
		t.Fatalf("delete: %v %+v", err, res)
	}
	r = srv.Last()
	if r.Method != http.MethodDelete || r.Path != "/register/"+st.ClientID || r.Authorization != "Bearer "+st.RegistrationAccessToken {
		t.Errorf("delete request = %+v", r)
	}
	wantCert(r)
	if n := len(srv.Requests()); n != 5 {
		t.Errorf("server saw %d requests, want 5", n)
	}
}

func TestServerRejectsClientWithoutSandboxCert(t *testing.T) {
	sb := testSandbox(t)
	srv := tppclienttest.NewServer(t, sb, nil)
	c, _ := tppclient.FromSandbox(sb, sb.TPPs[0], srv.Endpoint(), "")
	c.HTTP = srv.Client() // trusts the server, presents no certificate
	if _, err := c.Register(context.Background(), []byte("x"), "", ""); err == nil {
		t.Error("request without a client certificate succeeded; the test server does not enforce mTLS")
	}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "registration.json")
	want := tppclient.State{ClientID: "c1", RegistrationAccessToken: "tok", RegistrationClientURI: "https://gw/register/c1", Endpoint: "https://gw/register"}
	if err := tppclient.SaveState(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v mode %v", err, fi.Mode())
	}
	got, err := tppclient.LoadState(path)
	if err != nil || got != want {
		t.Errorf("LoadState = %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if _, err := tppclient.StateFromResponse(&tppclient.Response{JSON: map[string]any{"error": "x"}}); err == nil {
		t.Error("StateFromResponse accepted a response without client_id")
	}
}

func TestFromFilesDefaults(t *testing.T) {
	sb := testSandbox(t)
	tpp := sb.TPPs[1]
	c, err := tppclient.FromFiles(tppclient.Files{
		Cert: tpp.TransportCert, Key: tpp.TransportKey, CA: sb.Files.CABundle, SSA: tpp.SSAFile, SigningKey: tpp.SigningKeyEC,
	}, "https://gw.example:9443/register", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.SoftwareID != tpp.SoftwareID || c.Alg != "ES256" || c.SigningKey.KeyID() != tpp.SigningKIDEC || c.Audience != "https://gw.example:9443" {
		t.Errorf("client = %+v", c)
	}
	if _, err := tppclient.FromFiles(tppclient.Files{}, "https://gw/register", ""); err == nil {
		t.Error("no transport certificate accepted")
	}
	if _, err := tppclient.DefaultAudience("/register"); err == nil {
		t.Error("relative endpoint accepted")
	}
}
