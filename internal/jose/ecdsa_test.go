package jose

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// A DER-encoded ECDSA signature (what `openssl dgst -sha256 -sign` writes) is refused as a
// bad signature whose message says what JWS wants instead.
func TestVerifyES256DERSignatureHint(t *testing.T) {
	src := defaultSource(t)
	input := enc(map[string]any{"alg": "ES256", "kid": "ec1"}) + "." + enc(baseClaims())
	digest := sha256.Sum256([]byte(input))
	der, err := ecdsa.SignASN1(rand.Reader, ecKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	token := []byte(input + "." + base64.RawURLEncoding.EncodeToString(der))
	_, _, err = Verify(context.Background(), token, defaultAlgs, src)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("want ErrBadSignature, got %v", err)
	}
	if !strings.Contains(err.Error(), "JWS wants R‖S, 64 bytes for ES256") || !strings.Contains(err.Error(), "DER") {
		t.Fatalf("the error must explain the DER form: %v", err)
	}

	// The same signature as R‖S verifies: the encoding is the only problem the hint names.
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64)
	rs.R.FillBytes(raw[:32])
	rs.S.FillBytes(raw[32:])
	if _, _, err := Verify(context.Background(), []byte(input+"."+base64.RawURLEncoding.EncodeToString(raw)), defaultAlgs, src); err != nil {
		t.Fatalf("the R‖S form must verify: %v", err)
	}

	// A wrong R‖S signature gets no DER hint, nor does an RSA signature.
	raw[5] ^= 1
	_, _, err = Verify(context.Background(), []byte(input+"."+base64.RawURLEncoding.EncodeToString(raw)), defaultAlgs, src)
	if !errors.Is(err, ErrBadSignature) || strings.Contains(err.Error(), "DER") {
		t.Fatalf("a wrong R‖S signature: want a plain bad signature, got %v", err)
	}
	if hint := derSignatureHint(jwa.PS256, der); hint != "" {
		t.Fatalf("no hint for RSA algs: %q", hint)
	}
	if hint := derSignatureHint(jwa.ES256, []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01}); hint != "" {
		t.Fatalf("no hint for a truncated DER value: %q", hint)
	}
}
