package jose

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// parseCompactReference is parseCompact as it was before the parts shared one buffer and the
// JSON texts one string: each part decoded into a buffer of its own, each object decoded by
// decodeObject (which copies every string it returns, see jsonParser.slice). parseCompact must
// give the same header, claims, signature, signing input and error on every token.
func parseCompactReference(token []byte) (*compactParts, error) {
	if len(token) == 0 {
		return nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token is %d bytes, limit is %d", ErrMalformed, len(token), MaxTokenSize)
	}
	if token[0] == '{' {
		return nil, fmt.Errorf("%w: JSON serialization is not accepted, only compact serialization", ErrMalformed)
	}
	for i, c := range token {
		if compactChars[c] {
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			return nil, fmt.Errorf("%w: whitespace at byte %d", ErrMalformed, i)
		case '=':
			return nil, fmt.Errorf("%w: base64 padding '=' at byte %d (base64url must be unpadded)", ErrMalformed, i)
		default:
			return nil, fmt.Errorf("%w: character %q at byte %d is not base64url", ErrMalformed, c, i)
		}
	}
	if n := bytes.Count(token, []byte{'.'}) + 1; n != 3 {
		return nil, fmt.Errorf("%w: compact JWS has %d parts, want 3", ErrMalformed, n)
	}
	first := bytes.IndexByte(token, '.')
	second := first + 1 + bytes.IndexByte(token[first+1:], '.')
	rawHeader, rawPayload, rawSig := token[:first], token[first+1:second], token[second+1:]
	if len(rawHeader) == 0 {
		return nil, fmt.Errorf("%w: protected header is empty", ErrMalformed)
	}
	if len(rawPayload) == 0 {
		return nil, fmt.Errorf("%w: payload is empty (detached payloads are not accepted)", ErrMalformed)
	}
	decode := func(s []byte) ([]byte, error) {
		out := make([]byte, b64.DecodedLen(len(s)))
		n, err := b64.Decode(out, s)
		if err != nil {
			return nil, fmt.Errorf("invalid base64url: %v", err)
		}
		return out[:n], nil
	}
	copying := func(data []byte) (map[string]any, error) { return decodeObjectText(data, "") }
	headerJSON, err := decode(rawHeader)
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	rawHdr, err := copying(headerJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	hdr, err := headerFrom(rawHdr)
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	payload, err := decode(rawPayload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	claims, err := copying(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sig, err := decode(rawSig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	return &compactParts{header: hdr, claims: claims, sig: sig, signingInput: token[:second]}, nil
}

// sameParse fails t unless parseCompact and parseCompactReference agree on token.
func sameParse(t *testing.T, token []byte) {
	t.Helper()
	got, gerr := parseCompact(token)
	want, werr := parseCompactReference(token)
	switch {
	case (gerr == nil) != (werr == nil):
		t.Fatalf("%q: error %v, reference %v", token, gerr, werr)
	case gerr != nil:
		if gerr.Error() != werr.Error() {
			t.Fatalf("%q: error %q, reference %q", token, gerr, werr)
		}
	case !reflect.DeepEqual(got.header, want.header), !reflect.DeepEqual(got.claims, want.claims),
		!bytes.Equal(got.sig, want.sig), !bytes.Equal(got.signingInput, want.signingInput):
		t.Fatalf("%q:\n got %+v\nwant %+v", token, got, want)
	}
}

// hostileTokens are tokens made of broken parts: bad base64 in each part (a bad character, a
// lone trailing character, non-zero trailing bits), JSON that is not an object, duplicate
// members at the top and below, numbers beyond any Go type, wrongly typed registered headers,
// invalid UTF-8 and escapes.
func hostileTokens() [][]byte {
	h := func(s string) string { return b64.EncodeToString([]byte(s)) }
	good := h(`{"alg":"PS256","kid":"k"}`)
	payload := h(`{"iss":"tpp"}`)
	var out [][]byte
	for _, parts := range [][3]string{
		{good, payload, "c2ln"},
		{good, payload, ""},
		{good + "A", payload, "c2ln"},           // a lone trailing base64 character
		{good[:len(good)-1] + "B", payload, ""}, // non-zero trailing bits
		{good, payload + "A", "c2ln"},
		{good, payload, "c2lnA"},
		{good, payload, "c2lo"}, // trailing bits
		{"e30", payload, ""},    // {} : no alg
		{h(`[]`), payload, ""},  // header not an object
		{good, h(`[1]`), ""},    // payload not an object
		{good, h(`"s"`), ""},
		{h(`{"alg":"PS256","alg":"ES256"}`), payload, ""},
		{good, h(`{"iss":"a","iss":"b"}`), ""},
		{good, h(`{"o":{"k":1,"k":2}}`), ""},
		{good, h(`{"iss":"a","iss":"b","x":}`), ""}, // a duplicate before a syntax error
		{good, h(`{"x":}`), "c2lnA"},                // a payload error before a signature error
		{h(`{"alg":"PS256","kid":1}`), payload, ""},
		{h(`{"alg":null}`), payload, ""},
		{h(`{"alg":"PS256","crit":"b64"}`), payload, ""},
		{h(`{"alg":"PS256","crit":["b64",1]}`), payload, ""},
		{h(`{"alg":"PS256","typ":["JWT"]}`), h(`{"x":1}`), ""},
		{good, h(`{"n":123456789012345678901234567890e999999,"m":-0.0e-0,"f":1E+2}`), ""},
		{good, h(`{"iat":1e400,"exp":"1700000000","nbf":null,"aud":["a",2]}`), ""},
		{good, h("{\"s\":\"\xff\"}"), ""},
		{h("{\"alg\":\"\xc3\"}"), payload, ""},
		{good, h(`{"s":"\ud800","t":"\u00e9\n\"","\u0069ss":"escaped name"}`), ""},
		{good, h(`{"s":"\x"}`), ""},
		{good, h(" {\"a\" : [ 1 , {\"b\" : null} ] } "), ""},
		{good, h(`{"a":1} x`), ""},
		{good, h(strings.Repeat(`{"a":`, maxJSONDepth+1) + `1` + strings.Repeat(`}`, maxJSONDepth+1)), ""},
		{good, h(`{"long":"` + strings.Repeat("x", 5000) + `"}`), ""},
	} {
		out = append(out, []byte(parts[0]+"."+parts[1]+"."+parts[2]))
	}
	return append(out, []byte(""), []byte("a.b"), []byte("a.b.c.d"), []byte(".b.c"), []byte("a..c"),
		[]byte("a b.c.d"), []byte("a=.b.c"), []byte("{}.b.c"), []byte("a.b.c\n"))
}

func TestParseAgreesWithReference(t *testing.T) {
	testKeys(t)
	for _, tok := range [][]byte{
		sign(t, jwa.PS256, rsaKey, map[string]any{"kid": "rsa1"}, baseClaims()),
		sign(t, jwa.ES256, ecKey, map[string]any{"kid": "ec1", "typ": "JWT", "x": []any{1, "a", nil}}, map[string]any{
			"software_statement": "a.b.c", "redirect_uris": []string{"https://x.example/cb"}, "n": 1.5e300,
			"nested": map[string]any{"k": []any{true, false, nil, map[string]any{}}},
		}),
	} {
		sameParse(t, tok)
		// Every prefix, and every token with one byte changed to a base64url character, a dot
		// or a byte outside the alphabet.
		for i := range tok {
			sameParse(t, tok[:i])
			for _, c := range []byte{'A', '_', '.', '=', '\x00'} {
				changed := bytes.Clone(tok)
				changed[i] = c
				sameParse(t, changed)
			}
		}
	}
	for _, tok := range hostileTokens() {
		sameParse(t, tok)
	}
}

func FuzzParseAgreesWithReference(f *testing.F) {
	fuzzSeeds(f)
	for _, tok := range hostileTokens() {
		f.Add(tok)
	}
	f.Fuzz(sameParse)
}

// TestVerifierGivenRawKeyAgrees: the crypto key Parsed.Verify hands the verifier (the JWK's
// Raw) verifies and refuses exactly what the JWK itself does, for every algorithm family.
func TestVerifierGivenRawKeyAgrees(t *testing.T) {
	testKeys(t)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		alg  jwa.SignatureAlgorithm
		priv any
	}{
		{jwa.PS256, rsaKey}, {jwa.RS256, rsaKey}, {jwa.PS512, rsaKey}, {jwa.ES256, ecKey}, {jwa.EdDSA, edKey},
	} {
		t.Run(c.alg.String(), func(t *testing.T) {
			priv, err := jwk.FromRaw(c.priv)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := usableKey(priv, "k", c.alg)
			if err != nil {
				t.Fatal(err)
			}
			// A private key is reduced to a public one, and a public key is used as it is.
			if private, err := jwk.IsPrivateKey(pub); err != nil || private {
				t.Fatalf("usableKey of a private key: private %v, %v", private, err)
			}
			if again, err := usableKey(pub, "k", c.alg); err != nil || again != pub {
				t.Fatalf("usableKey of a public key: %v, %v", again, err)
			}
			var raw any
			if err := pub.Raw(&raw); err != nil {
				t.Fatal(err)
			}
			verifier, err := jws.NewVerifier(c.alg)
			if err != nil {
				t.Fatal(err)
			}
			tok := sign(t, c.alg, c.priv, map[string]any{"kid": "k"}, baseClaims())
			p, err := parseCompact(tok)
			if err != nil {
				t.Fatal(err)
			}
			for i := range len(p.sig) + 1 {
				sig := bytes.Clone(p.sig)
				if i < len(sig) {
					sig[i] ^= 1 // every signature but the last is broken at one byte
				}
				for _, input := range [][]byte{p.signingInput, append(bytes.Clone(p.signingInput), 'x')} {
					withJWK, withRaw := verifier.Verify(input, sig, pub), verifier.Verify(input, sig, raw)
					if (withJWK == nil) != (withRaw == nil) {
						t.Fatalf("byte %d: with the JWK %v, with its raw key %v", i, withJWK, withRaw)
					}
				}
			}
			// And the whole Verify accepts the token.
			if _, _, err := Verify(context.Background(), tok, []jwa.SignatureAlgorithm{c.alg}, mapSource{keys: map[string]jwk.Key{"k": pub}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBitLenIsBigIntBitLen(t *testing.T) {
	for _, b := range [][]byte{nil, {0}, {0, 0}, {1}, {0x80}, {0, 0x7f, 0}, {0xff, 0xff}, bytes.Repeat([]byte{0xff}, 256), append([]byte{0, 0, 1}, make([]byte, 255)...)} {
		if got, want := bitLen(b), bigBitLen(b); got != want {
			t.Errorf("bitLen(%x) = %d, want %d", b, got, want)
		}
	}
}

func bigBitLen(b []byte) int { return new(big.Int).SetBytes(b).BitLen() }
