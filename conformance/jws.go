package conformance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// SignJWS returns the compact JWS (RFC 7515) of claims signed with key under alg (PS256,
// ES256 or RS256), with kid and typ JWT in the protected header. RS256 is here because the
// tool sends it in DCR-004, to be refused.
func SignJWS(alg, kid string, key crypto.Signer, claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch alg {
	case "PS256", "RS256":
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return "", fmt.Errorf("%s needs an RSA key, have %T", alg, key)
		}
		if alg == "PS256" {
			// RFC 7518 §3.5: the salt is as long as the hash.
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
		}
	case "ES256":
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k.Curve.Params().BitSize != 256 {
			return "", fmt.Errorf("ES256 needs a P-256 key, have %T", key)
		}
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k, digest[:])
		if err == nil {
			// RFC 7518 §3.4: R and S as 32-byte big-endian integers, concatenated.
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	default:
		return "", fmt.Errorf("unsupported alg %q", alg)
	}
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// jwsPayload decodes the payload of a compact JWS without verifying it: the TPP reads its own
// SSA, which it got from its directory.
func jwsPayload(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS: want three parts")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return claims, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
