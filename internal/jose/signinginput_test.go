package jose

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
)

// RFC 7515 §5.2 verifies the signing input as sent: a protected header whose JSON has
// whitespace around it (what `echo '{...}' | base64` or jq without -j produce) verifies when
// it was signed as it is, and fails when a byte of it changes.
func TestVerifyHeaderWithSurroundingWhitespace(t *testing.T) {
	src := defaultSource(t)
	header := base64.RawURLEncoding.EncodeToString([]byte(" {\"alg\":\"PS256\",\"kid\":\"rsa1\"}\n"))
	input := header + "." + enc(baseClaims())
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		t.Fatal(err)
	}
	token := input + "." + base64.RawURLEncoding.EncodeToString(sig)
	hdr, claims, err := Verify(context.Background(), []byte(token), defaultAlgs, src)
	if err != nil || hdr.Kid != "rsa1" || claims["iss"] != "tpp" {
		t.Fatalf("a correctly signed header with whitespace must verify: %v %+v %v", err, hdr, claims)
	}
	other := base64.RawURLEncoding.EncodeToString([]byte("{\"alg\":\"PS256\",\"kid\":\"rsa1\"}\n"))
	if _, _, err := Verify(context.Background(), []byte(other+"."+enc(baseClaims())+"."+base64.RawURLEncoding.EncodeToString(sig)), defaultAlgs, src); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("the signature covers the header bytes as sent: want ErrBadSignature, got %v", err)
	}
}
