package jose

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/cert"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Keys are generated once per test binary: RSA generation dominates test time otherwise.
var (
	keysOnce   sync.Once
	rsaKey     *rsa.PrivateKey
	ecKey      *ecdsa.PrivateKey
	attackerEC *ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if attackerEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

// mapSource is a KeySource over a fixed map; err, when set, simulates an outage.
type mapSource struct {
	keys map[string]jwk.Key
	err  error
}

func (m mapSource) Key(_ context.Context, kid string) (jwk.Key, error) {
	if m.err != nil {
		return nil, m.err
	}
	k, ok := m.keys[kid]
	if !ok {
		return nil, fmt.Errorf("%w: not in the test map", ErrUnknownKID)
	}
	return k, nil
}

// publicJWK converts a raw key to a public JWK with the given kid and extra fields.
func publicJWK(t testing.TB, raw any, kid string, fields map[string]any) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if k, err = jwk.PublicKeyOf(k); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	for name, v := range fields {
		if err := k.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func defaultSource(t testing.TB) mapSource {
	testKeys(t)
	return mapSource{keys: map[string]jwk.Key{
		"rsa1": publicJWK(t, rsaKey, "rsa1", nil),
		"ec1":  publicJWK(t, ecKey, "ec1", nil),
	}}
}

var defaultAlgs = []jwa.SignatureAlgorithm{jwa.PS256, jwa.ES256}

func baseClaims() map[string]any {
	return map[string]any{"iss": "tpp", "aud": "aspsp", "iat": 1700000000, "exp": 1700000300}
}

// sign produces a compact JWS with jwx, using the given protected header members.
func sign(t testing.TB, alg jwa.SignatureAlgorithm, key any, hdr map[string]any, claims map[string]any) []byte {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	for name, v := range hdr {
		if err := h.Set(name, v); err != nil {
			t.Fatalf("set header %s: %v", name, err)
		}
	}
	tok, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func enc(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// handToken builds header.payload.signature from raw JSON strings, bypassing jwx.
func handToken(header, payload string, sig []byte) []byte {
	return []byte(base64.RawURLEncoding.EncodeToString([]byte(header)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." +
		base64.RawURLEncoding.EncodeToString(sig))
}

func hs256Token(secret []byte, hdr, claims map[string]any) []byte {
	input := enc(hdr) + "." + enc(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return []byte(input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
}

func TestVerifyGood(t *testing.T) {
	src := defaultSource(t)
	for _, tc := range []struct {
		name string
		alg  jwa.SignatureAlgorithm
		key  any
		kid  string
	}{
		{"PS256", jwa.PS256, rsaKey, "rsa1"},
		{"ES256", jwa.ES256, ecKey, "ec1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, tc.alg, tc.key, map[string]any{"kid": tc.kid, "typ": "JWT"}, baseClaims())
			hdr, claims, err := Verify(context.Background(), tok, defaultAlgs, src)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if hdr.Alg != string(tc.alg) || hdr.Kid != tc.kid || hdr.Typ != "JWT" {
				t.Errorf("header = %+v", hdr)
			}
			if claims["iss"] != "tpp" {
				t.Errorf("iss = %v", claims["iss"])
			}
			if _, isNumber := claims["iat"].(json.Number); !isNumber {
				t.Errorf("iat is %T, want json.Number", claims["iat"])
			}
		})
	}
}

func TestVerifyPrivateKeyInSourceIsUsedAsPublic(t *testing.T) {
	testKeys(t)
	priv, err := jwk.FromRaw(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	_ = priv.Set(jwk.KeyIDKey, "ec1")
	src := mapSource{keys: map[string]jwk.Key{"ec1": priv}}
	tok := sign(t, jwa.ES256, ecKey, map[string]any{"kid": "ec1"}, baseClaims())
	if _, _, err := Verify(context.Background(), tok, defaultAlgs, src); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	src := defaultSource(t)
	ctx := context.Background()
	good := sign(t, jwa.PS256, rsaKey, map[string]any{"kid": "rsa1"}, baseClaims())
	goodParts := strings.Split(string(good), ".")

	rsaPubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPubDER})
	rsaPubJWK, _ := json.Marshal(src.keys["rsa1"])

	tamperedSig := func() []byte {
		sig, _ := base64.RawURLEncoding.DecodeString(goodParts[2])
		sig[10] ^= 0x01
		return []byte(goodParts[0] + "." + goodParts[1] + "." + base64.RawURLEncoding.EncodeToString(sig))
	}()
	tamperedPayload := func() []byte {
		c := baseClaims()
		c["iss"] = "evil"
		return []byte(goodParts[0] + "." + enc(c) + "." + goodParts[2])
	}()
	jsonSerialization := func() []byte {
		b, _ := json.Marshal(map[string]any{"protected": goodParts[0], "payload": goodParts[1], "signature": goodParts[2]})
		return b
	}()
	oversized := func() []byte {
		c := baseClaims()
		c["pad"] = strings.Repeat("a", MaxTokenSize)
		return sign(t, jwa.PS256, rsaKey, map[string]any{"kid": "rsa1"}, c)
	}()
	// With b64=false the payload segment is signed as is; a payload that happens to be
	// valid base64url yields a token jwx would verify with a different payload than ours.
	b64FalseToken := func() []byte {
		h := jws.NewHeaders()
		_ = h.Set("kid", "rsa1")
		_ = h.Set("b64", false)
		tok, err := jws.Sign([]byte(enc(baseClaims())), jws.WithKey(jwa.PS256, rsaKey, jws.WithProtectedHeaders(h)))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	attackerJWK := publicJWK(t, attackerEC, "ec1", nil)
	attackerWithOwnKid := publicJWK(t, attackerEC, "attacker", nil)

	cases := []struct {
		name  string
		token []byte
		algs  []jwa.SignatureAlgorithm
		src   KeySource
		noSrc bool // pass a nil KeySource
		want  error
	}{
		{name: "alg none, empty signature", token: handToken(`{"alg":"none","kid":"rsa1"}`, `{"iss":"tpp"}`, nil), want: ErrAlgNotAllowed},
		{name: "alg none, with signature", token: handToken(`{"alg":"none","kid":"rsa1"}`, `{"iss":"tpp"}`, []byte("x")), want: ErrAlgNotAllowed},
		{name: "alg none even if listed", token: handToken(`{"alg":"none","kid":"rsa1"}`, `{"iss":"tpp"}`, nil),
			algs: []jwa.SignatureAlgorithm{jwa.NoSignature, jwa.PS256}, want: ErrAlgNotAllowed},
		{name: "HS256 with RSA public key PEM as secret", token: hs256Token(rsaPubPEM, map[string]any{"alg": "HS256", "kid": "rsa1"}, baseClaims()), want: ErrAlgNotAllowed},
		{name: "HS256 with RSA public key DER as secret, HS256 listed by careless caller",
			token: hs256Token(rsaPubDER, map[string]any{"alg": "HS256", "kid": "rsa1"}, baseClaims()),
			algs:  []jwa.SignatureAlgorithm{jwa.HS256, jwa.PS256}, want: ErrAlgNotAllowed},
		{name: "HS256 with RSA JWK JSON as secret", token: hs256Token(rsaPubJWK, map[string]any{"alg": "HS256", "kid": "rsa1"}, baseClaims()), want: ErrAlgNotAllowed},
		{name: "alg not in list", token: good, algs: []jwa.SignatureAlgorithm{jwa.ES256}, want: ErrAlgNotAllowed},
		{name: "empty alg list", token: good, algs: []jwa.SignatureAlgorithm{}, want: ErrAlgNotAllowed},
		{name: "missing kid", token: sign(t, jwa.PS256, rsaKey, nil, baseClaims()), want: ErrMissingKID},
		{name: "empty kid", token: sign(t, jwa.PS256, rsaKey, map[string]any{"kid": ""}, baseClaims()), want: ErrMissingKID},
		{name: "unknown kid", token: sign(t, jwa.PS256, rsaKey, map[string]any{"kid": "nope"}, baseClaims()), want: ErrUnknownKID},
		{name: "key use enc", token: good, src: mapSource{keys: map[string]jwk.Key{"rsa1": publicJWK(t, rsaKey, "rsa1", map[string]any{"use": "enc"})}}, want: ErrKeyNotUsable},
		{name: "key_ops without verify", token: good, src: mapSource{keys: map[string]jwk.Key{"rsa1": publicJWK(t, rsaKey, "rsa1", map[string]any{"key_ops": []string{"encrypt"}})}}, want: ErrKeyNotUsable},
		{name: "key alg mismatch", token: good, algs: []jwa.SignatureAlgorithm{jwa.PS256, jwa.RS256},
			src: mapSource{keys: map[string]jwk.Key{"rsa1": publicJWK(t, rsaKey, "rsa1", map[string]any{"alg": "RS256"})}}, want: ErrKeyNotUsable},
		{name: "RSA key with ES256 header", token: sign(t, jwa.ES256, ecKey, map[string]any{"kid": "rsa1"}, baseClaims()), want: ErrKeyNotUsable},
		{name: "EC key with PS256 header", token: sign(t, jwa.PS256, rsaKey, map[string]any{"kid": "ec1"}, baseClaims()), want: ErrKeyNotUsable},
		{name: "P-256 key with ES384 header", token: handToken(`{"alg":"ES384","kid":"ec1"}`, `{}`, make([]byte, 96)),
			algs: []jwa.SignatureAlgorithm{jwa.ES384}, want: ErrKeyNotUsable},
		{name: "tampered payload", token: tamperedPayload, want: ErrBadSignature},
		{name: "tampered signature", token: tamperedSig, want: ErrBadSignature},
		{name: "signature by another key", token: sign(t, jwa.ES256, attackerEC, map[string]any{"kid": "ec1"}, baseClaims()), want: ErrBadSignature},
		{name: "JSON serialization", token: jsonSerialization, want: ErrMalformed},
		{name: "2 parts", token: []byte(goodParts[0] + "." + goodParts[1]), want: ErrMalformed},
		{name: "4 parts", token: []byte(string(good) + "." + goodParts[2]), want: ErrMalformed},
		{name: "whitespace inside", token: []byte(goodParts[0] + ".\n" + goodParts[1] + "." + goodParts[2]), want: ErrMalformed},
		{name: "trailing newline", token: append(append([]byte{}, good...), '\n'), want: ErrMalformed},
		{name: "padding", token: []byte(goodParts[0] + "==." + goodParts[1] + "." + goodParts[2]), want: ErrMalformed},
		{name: "standard base64 alphabet", token: []byte(strings.ReplaceAll(string(good), "_", "/")), want: ErrMalformed},
		{name: "oversized", token: oversized, want: ErrMalformed},
		{name: "empty", token: nil, want: ErrMalformed},
		{name: "header not JSON", token: handToken(`alg=PS256`, `{}`, []byte("s")), want: ErrMalformed},
		{name: "header is an array", token: handToken(`["PS256"]`, `{}`, []byte("s")), want: ErrMalformed},
		{name: "header alg not a string", token: handToken(`{"alg":1,"kid":"rsa1"}`, `{}`, []byte("s")), want: ErrMalformed},
		{name: "header without alg", token: handToken(`{"kid":"rsa1"}`, `{}`, []byte("s")), want: ErrMalformed},
		{name: "header duplicate alg", token: handToken(`{"alg":"HS256","alg":"PS256","kid":"rsa1"}`, `{}`, []byte("s")), want: ErrMalformed},
		{name: "header trailing data", token: handToken(`{"alg":"PS256","kid":"rsa1"}x`, `{}`, []byte("s")), want: ErrMalformed},
		{name: "header invalid UTF-8", token: handToken("{\"alg\":\"PS256\",\"kid\":\"\xff\"}", `{}`, []byte("s")), want: ErrMalformed},
		{name: "payload not an object", token: handToken(`{"alg":"PS256","kid":"rsa1"}`, `["iss"]`, []byte("s")), want: ErrMalformed},
		{name: "payload a string", token: handToken(`{"alg":"PS256","kid":"rsa1"}`, `"iss"`, []byte("s")), want: ErrMalformed},
		{name: "payload not JSON", token: handToken(`{"alg":"PS256","kid":"rsa1"}`, `iss=tpp`, []byte("s")), want: ErrMalformed},
		{name: "payload duplicate claim", token: handToken(`{"alg":"PS256","kid":"rsa1"}`, `{"iss":"a","iss":"b"}`, []byte("s")), want: ErrMalformed},
		{name: "payload too deep", token: handToken(`{"alg":"PS256","kid":"rsa1"}`, `{"a":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`, []byte("s")), want: ErrMalformed},
		{name: "empty payload", token: []byte(goodParts[0] + ".." + goodParts[2]), want: ErrMalformed},
		{name: "crit", token: sign(t, jwa.PS256, rsaKey, map[string]any{"kid": "rsa1", "crit": []string{"exp"}, "exp": 1}, baseClaims()), want: ErrMalformed},
		{name: "b64 false with unencoded payload", token: sign(t, jwa.PS256, rsaKey, map[string]any{"kid": "rsa1", "b64": false}, baseClaims()), want: ErrMalformed},
		{name: "b64 false over a base64-looking payload", token: b64FalseToken, want: ErrMalformed},
		{name: "jwk header with attacker key, attacker kid",
			token: sign(t, jwa.ES256, attackerEC, map[string]any{"kid": "attacker", "jwk": attackerWithOwnKid}, baseClaims()), want: ErrUnknownKID},
		{name: "jwk header with attacker key, victim kid",
			token: sign(t, jwa.ES256, attackerEC, map[string]any{"kid": "ec1", "jwk": attackerJWK}, baseClaims()), want: ErrBadSignature},
		{name: "x5c header with attacker certificate",
			token: sign(t, jwa.ES256, attackerEC, map[string]any{"kid": "ec1", "x5c": selfSignedCert(t, attackerEC)}, baseClaims()), want: ErrBadSignature},
		{name: "key source down", token: good, src: mapSource{err: errors.New("connection refused")}, want: ErrKeyUnavailable},
		{name: "nil key source", token: good, noSrc: true, want: ErrKeyUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			algs := tc.algs
			if algs == nil {
				algs = defaultAlgs
			}
			ks := tc.src
			if ks == nil {
				ks = src
			}
			if tc.noSrc {
				ks = nil
			}
			hdr, claims, err := Verify(ctx, tc.token, algs, ks)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if claims != nil || hdr.Raw != nil {
				t.Errorf("a rejected token returned header %v / claims %v", hdr, claims)
			}
			t.Logf("%v", err)
		})
	}
}

func selfSignedCert(t testing.TB, key *ecdsa.PrivateKey) *cert.Chain {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "attacker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var chain cert.Chain
	if err := chain.AddString(base64.StdEncoding.EncodeToString(der)); err != nil {
		t.Fatal(err)
	}
	return &chain
}

func TestVerifyWeakRSAKeyRefused(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	src := mapSource{keys: map[string]jwk.Key{"weak": publicJWK(t, weak, "weak", nil)}}
	tok := sign(t, jwa.PS256, weak, map[string]any{"kid": "weak"}, baseClaims())
	if _, _, err := Verify(context.Background(), tok, defaultAlgs, src); !errors.Is(err, ErrKeyNotUsable) {
		t.Fatalf("err = %v, want ErrKeyNotUsable", err)
	}
}

// TestVerifyNeverFetchesHeaderURLs serves a JWKS with the attacker's key at the jku and
// x5u URLs and checks that nothing ever asks for it.
func TestVerifyNeverFetchesHeaderURLs(t *testing.T) {
	src := defaultSource(t)
	var hits atomic.Int64
	attackerSet := jwk.NewSet()
	_ = attackerSet.AddKey(publicJWK(t, attackerEC, "ec1", nil))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(attackerSet)
	}))
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(srv.Config.Handler)
	defer tlsSrv.Close()

	for _, hdr := range []map[string]any{
		{"kid": "ec1", "jku": srv.URL + "/jwks.json"},
		{"kid": "ec1", "jku": tlsSrv.URL + "/jwks.json"},
		{"kid": "ec1", "x5u": tlsSrv.URL + "/cert.pem"},
		{"kid": "attacker", "jku": tlsSrv.URL + "/jwks.json", "x5u": srv.URL + "/cert.pem"},
	} {
		tok := sign(t, jwa.ES256, attackerEC, hdr, baseClaims())
		_, _, err := Verify(context.Background(), tok, defaultAlgs, src)
		if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownKID) {
			t.Errorf("header %v: err = %v, want bad signature or unknown kid", hdr, err)
		}
	}
	// A legitimately signed token carrying jku still verifies with the configured key only.
	tok := sign(t, jwa.ES256, ecKey, map[string]any{"kid": "ec1", "jku": tlsSrv.URL + "/jwks.json"}, baseClaims())
	if _, _, err := Verify(context.Background(), tok, defaultAlgs, src); err != nil {
		t.Errorf("legit token with jku: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("header URLs were fetched %d times, want 0", n)
	}
}

func TestErrorMessageNamesAlgs(t *testing.T) {
	tok := hs256Token([]byte("k"), map[string]any{"alg": "HS256", "kid": "rsa1"}, baseClaims())
	_, _, err := Verify(context.Background(), tok, defaultAlgs, defaultSource(t))
	if err == nil || !strings.Contains(err.Error(), `alg "HS256" is not allowed (allowed: PS256, ES256)`) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseUnverified(t *testing.T) {
	testKeys(t)
	tok := sign(t, jwa.ES256, ecKey, map[string]any{"kid": "ec1", "typ": "JWT", "cty": "x", "crit": []string{"exp"}, "exp": 1}, map[string]any{"n": json.Number("12345678901234567890")})
	hdr, claims, err := ParseUnverified(tok)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Alg != "ES256" || hdr.Kid != "ec1" || hdr.Typ != "JWT" || hdr.Cty != "x" || len(hdr.Crit) != 1 || hdr.Crit[0] != "exp" {
		t.Errorf("header = %+v", hdr)
	}
	if n, _ := claims["n"].(json.Number); n.String() != "12345678901234567890" {
		t.Errorf("large integer not kept exactly: %v", claims["n"])
	}
	// ParseUnverified does not check signatures: an "alg":"none" token parses.
	if _, _, err := ParseUnverified(handToken(`{"alg":"none"}`, `{}`, nil)); err != nil {
		t.Errorf("none token: %v", err)
	}
	for _, bad := range []string{`{"alg":"ES256","crit":[]}`, `{"alg":"ES256","crit":"exp"}`, `{"alg":"ES256","kid":7}`, `{"alg":"ES256","typ":null}`} {
		if _, _, err := ParseUnverified(handToken(bad, `{}`, nil)); !errors.Is(err, ErrMalformed) {
			t.Errorf("header %s: err = %v, want ErrMalformed", bad, err)
		}
	}
	// Non-canonical base64 (non-zero trailing bits) is refused so each token has one form.
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{}`)) // "e30"
	nonCanonical := enc(map[string]any{"alg": "ES256"}) + "." + payload[:2] + "1" + ".c2ln"
	if _, _, err := ParseUnverified([]byte(nonCanonical)); !errors.Is(err, ErrMalformed) {
		t.Errorf("non-canonical base64: err = %v", err)
	}
}

func TestParseAlgs(t *testing.T) {
	got, err := ParseAlgs([]string{"PS256", "ES256", "PS256", "EdDSA"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[PS256 ES256 EdDSA]" {
		t.Errorf("got %v", got)
	}
	for _, bad := range [][]string{nil, {"none"}, {"PS256", "HS256"}, {"HS384"}, {"HS512"}, {"ps256"}, {"XX1"}, {""}, {"ES256K"}} {
		if _, err := ParseAlgs(bad); !errors.Is(err, ErrAlgNotAllowed) {
			t.Errorf("ParseAlgs(%q) err = %v, want ErrAlgNotAllowed", bad, err)
		}
	}
}

func TestNumericDate(t *testing.T) {
	_, claims, err := ParseUnverified(handToken(`{"alg":"ES256"}`,
		`{"iat":1700000000,"frac":1700000000.5,"exp":1.7e9,"zero":0,"neg":-5,"str":"1700000000","null":null,"huge":1e300,"big":99999999999999999999}`, nil))
	if err != nil {
		t.Fatal(err)
	}
	if tm, ok, err := NumericDate(claims, "iat"); err != nil || !ok || !tm.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("iat = %v %v %v", tm, ok, err)
	}
	if tm, ok, err := NumericDate(claims, "frac"); err != nil || !ok || !tm.Equal(time.Unix(1700000000, 5e8)) {
		t.Errorf("frac = %v %v %v", tm, ok, err)
	}
	if tm, ok, err := NumericDate(claims, "exp"); err != nil || !ok || !tm.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("exp = %v %v %v", tm, ok, err)
	}
	if _, ok, err := NumericDate(claims, "nbf"); ok || err != nil {
		t.Errorf("absent: ok=%v err=%v", ok, err)
	}
	for _, name := range []string{"zero", "neg", "str", "null", "huge", "big"} {
		if _, ok, err := NumericDate(claims, name); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ok=%v err=%v, want ErrMalformed", name, ok, err)
		}
	}
	// Hand-built maps with float64/int values are read the same way.
	if tm, _, err := NumericDate(map[string]any{"iat": float64(1700000000)}, "iat"); err != nil || tm.Unix() != 1700000000 {
		t.Errorf("float64: %v %v", tm, err)
	}
	if tm, _, err := NumericDate(map[string]any{"iat": 1700000000}, "iat"); err != nil || tm.Unix() != 1700000000 {
		t.Errorf("int: %v %v", tm, err)
	}
}

func TestStringClaims(t *testing.T) {
	_, claims, err := ParseUnverified(handToken(`{"alg":"ES256"}`,
		`{"iss":"tpp","n":1,"aud":"a","auds":["a","b"],"mixed":["a",1],"redirect_uris":"https://x","empty":[]}`, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok, err := StringClaim(claims, "iss"); s != "tpp" || !ok || err != nil {
		t.Errorf("iss: %q %v %v", s, ok, err)
	}
	if _, ok, err := StringClaim(claims, "n"); !ok || !errors.Is(err, ErrMalformed) {
		t.Errorf("n: %v %v", ok, err)
	}
	if _, ok, err := StringClaim(claims, "sub"); ok || err != nil {
		t.Errorf("absent: %v %v", ok, err)
	}
	if l, ok, err := StringsClaim(claims, "aud"); fmt.Sprint(l) != "[a]" || !ok || err != nil {
		t.Errorf("aud single string: %v %v %v", l, ok, err)
	}
	if l, ok, err := StringsClaim(claims, "auds"); fmt.Sprint(l) != "[a b]" || !ok || err != nil {
		t.Errorf("auds: %v %v %v", l, ok, err)
	}
	if l, ok, err := StringsClaim(claims, "empty"); l == nil || len(l) != 0 || !ok || err != nil {
		t.Errorf("empty: %v %v %v", l, ok, err)
	}
	for _, name := range []string{"mixed", "redirect_uris", "n"} {
		if _, ok, err := StringsClaim(claims, name); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ok=%v err=%v, want ErrMalformed", name, ok, err)
		}
	}
	for _, tc := range []struct {
		claims string
		want   []string
		ok     bool
		err    bool
	}{
		{`{"aud":"a"}`, []string{"a"}, true, false},
		{`{"aud":"a"}`, []string{"b", "a"}, true, false},
		{`{"aud":["x","a"]}`, []string{"a"}, true, false},
		{`{"aud":["x","y"]}`, []string{"a"}, false, false},
		{`{"aud":"A"}`, []string{"a"}, false, false},
		{`{"aud":""}`, []string{""}, false, false},
		{`{}`, []string{"a"}, false, false},
		{`{"aud":1}`, []string{"a"}, false, true},
		{`{"aud":["a",null]}`, []string{"a"}, false, true},
	} {
		_, c, err := ParseUnverified(handToken(`{"alg":"ES256"}`, tc.claims, nil))
		if err != nil {
			t.Fatal(err)
		}
		ok, err := AudienceContains(c, tc.want)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("AudienceContains(%s, %v) = %v, %v", tc.claims, tc.want, ok, err)
		}
	}
}

func fuzzSeeds(f *testing.F) {
	testKeys(f)
	f.Add(sign(f, jwa.PS256, rsaKey, map[string]any{"kid": "rsa1"}, baseClaims()))
	f.Add(sign(f, jwa.ES256, ecKey, map[string]any{"kid": "ec1", "crit": []string{"x"}, "x": 1}, baseClaims()))
	f.Add(handToken(`{"alg":"none","kid":"rsa1"}`, `{"iss":"tpp"}`, nil))
	f.Add(handToken(`{"alg":"ES256","kid":"ec1"}`, `{"a":[1,{"b":null}],"c":1e400}`, []byte("sig")))
	f.Add(hs256Token([]byte("k"), map[string]any{"alg": "HS256", "kid": "rsa1"}, baseClaims()))
	f.Add([]byte(`{"protected":"e30","payload":"e30","signature":""}`))
	f.Add([]byte("a.b.c"))
	f.Add([]byte(".."))
}

func FuzzParseUnverified(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, token []byte) {
		hdr, claims, err := ParseUnverified(token)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if hdr.Alg == "" || hdr.Raw == nil || claims == nil {
			t.Fatalf("accepted token with header %+v claims %v", hdr, claims)
		}
	})
}

func FuzzVerify(f *testing.F) {
	fuzzSeeds(f)
	src := defaultSource(f)
	sentinels := []error{ErrMalformed, ErrAlgNotAllowed, ErrMissingKID, ErrUnknownKID, ErrKeyNotUsable, ErrBadSignature, ErrKeyUnavailable}
	f.Fuzz(func(t *testing.T, token []byte) {
		_, claims, err := Verify(context.Background(), token, defaultAlgs, src)
		if err == nil {
			if claims == nil {
				t.Fatal("verified token without claims")
			}
			return
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error wraps no sentinel: %v", err)
	})
}

func TestLongHeaderValuesClippedInErrors(t *testing.T) {
	long := strings.Repeat("A", 20000)
	for _, hdr := range []string{`{"alg":"` + long + `","kid":"k"}`, `{"alg":"ES256","kid":"` + long + `"}`} {
		_, _, err := Verify(context.Background(), handToken(hdr, `{}`, []byte("s")), defaultAlgs, defaultSource(t))
		if err == nil || len(err.Error()) > 300 {
			t.Fatalf("err (%d bytes) = %.300v", len(err.Error()), err)
		}
	}
}
