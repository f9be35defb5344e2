package jose

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// MinRSABits is the smallest RSA modulus accepted for verification (OBIE and FAPI both
// require 2048-bit keys).
const MinRSABits = 2048

// supportedAlgs are the asymmetric algorithms Verify can check. HMAC is absent on
// purpose: a shared secret cannot be published in a JWKS, and allowing HS* is what makes
// the RSA-public-key-as-HMAC-secret confusion attack possible.
var supportedAlgs = []jwa.SignatureAlgorithm{
	jwa.PS256, jwa.PS384, jwa.PS512,
	jwa.RS256, jwa.RS384, jwa.RS512,
	jwa.ES256, jwa.ES384, jwa.ES512,
	jwa.EdDSA,
}

// ParseAlgs turns configured algorithm names into an allow-list for Verify.
//
// Names are case-sensitive as in RFC 7518. "none" and HS256/384/512 are refused, as is
// any name not in the supported set (PS*, RS*, ES256/384/512, EdDSA) and an empty list.
// Duplicates are dropped; order is kept.
func ParseAlgs(names []string) ([]jwa.SignatureAlgorithm, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: the algorithm list is empty", ErrAlgNotAllowed)
	}
	out := make([]jwa.SignatureAlgorithm, 0, len(names))
	for _, name := range names {
		alg := jwa.SignatureAlgorithm(name)
		switch {
		case alg == jwa.NoSignature:
			return nil, fmt.Errorf(`%w: alg "none" is never allowed (unsigned tokens)`, ErrAlgNotAllowed)
		case alg == jwa.HS256 || alg == jwa.HS384 || alg == jwa.HS512:
			return nil, fmt.Errorf(`%w: alg %q is never allowed (HMAC needs a shared secret)`, ErrAlgNotAllowed, name)
		case !slices.Contains(supportedAlgs, alg):
			return nil, fmt.Errorf("%w: unknown alg %q (supported: %s)", ErrAlgNotAllowed, name, algList(supportedAlgs))
		}
		if !slices.Contains(out, alg) {
			out = append(out, alg)
		}
	}
	return out, nil
}

// Verify parses a compact JWS and verifies it with the key the KeySource holds for the
// header kid. It returns the header and claims only when the signature is valid.
//
// The header alg must be in algs (a non-supported entry in algs, such as "none" or
// HS256, is ignored rather than trusted, so callers that skip ParseAlgs stay safe). The
// header must carry a kid, must not carry crit (no extension is understood), and must
// not set b64. Keys in jwk, jku, x5u or x5c header parameters are ignored: nothing is
// fetched and only the KeySource supplies keys. The key must allow signature use, match
// the alg if it names one, and fit the alg by type, curve and size.
func Verify(ctx context.Context, token []byte, algs []jwa.SignatureAlgorithm, keys KeySource) (Header, map[string]any, error) {
	p, err := Parse(token)
	if err != nil {
		return Header{}, nil, err
	}
	return p.Verify(ctx, algs, keys)
}

// Verify checks p as the package-level Verify does, without decoding the token again.
func (parsed *Parsed) Verify(ctx context.Context, algs []jwa.SignatureAlgorithm, keys KeySource) (Header, map[string]any, error) {
	p := parsed.parts
	hdr := p.header

	alg := jwa.SignatureAlgorithm(hdr.Alg)
	if !slices.Contains(algs, alg) || !slices.Contains(supportedAlgs, alg) {
		return Header{}, nil, fmt.Errorf("%w: alg %q is not allowed (allowed: %s)", ErrAlgNotAllowed, clip(hdr.Alg), algList(usable(algs)))
	}
	if len(hdr.Crit) > 0 {
		return Header{}, nil, fmt.Errorf("%w: critical header parameter(s) %s are not understood", ErrMalformed, quoteList(hdr.Crit))
	}
	// RFC 7797 unencoded payloads change what is signed; this package never accepts them,
	// and jwx would otherwise honour b64=false even without crit.
	if v, ok := hdr.Raw["b64"]; ok && v != true {
		return Header{}, nil, fmt.Errorf(`%w: header parameter "b64" other than true is not accepted`, ErrMalformed)
	}
	if hdr.Kid == "" {
		return Header{}, nil, fmt.Errorf("%w: header has no kid", ErrMissingKID)
	}
	if keys == nil {
		return Header{}, nil, fmt.Errorf("%w: no key source configured", ErrKeyUnavailable)
	}

	kid := clip(hdr.Kid) // for messages only
	key, err := keys.Key(ctx, hdr.Kid)
	switch {
	case errors.Is(err, ErrUnknownKID):
		return Header{}, nil, fmt.Errorf("looking up kid %q: %w", kid, err)
	case errors.Is(err, ErrKeyUnavailable):
		return Header{}, nil, fmt.Errorf("looking up kid %q: %w", kid, err)
	case err != nil:
		return Header{}, nil, fmt.Errorf("%w: looking up kid %q: %w", ErrKeyUnavailable, kid, err)
	case key == nil:
		return Header{}, nil, fmt.Errorf("%w: key source returned no key for kid %q", ErrKeyUnavailable, kid)
	}
	pub, err := usableKey(key, kid, alg)
	if err != nil {
		return Header{}, nil, err
	}

	// The signature is checked over the signing input as sent, with the one key the KeySource
	// gave: jwx's jws.Verify would re-encode the protected header it decoded, and so refuse a
	// correctly signed header whose JSON has whitespace around it (`echo '{…}' | base64`).
	// Nothing is fetched or picked from the token; b64=false and crit were refused above.
	if err := pub.Validate(); err != nil {
		return Header{}, nil, fmt.Errorf("%w: key %q: %v", ErrKeyNotUsable, kid, err)
	}
	verifier, err := jws.NewVerifier(alg)
	if err != nil {
		return Header{}, nil, fmt.Errorf("%w: alg %q: %v", ErrAlgNotAllowed, alg, err)
	}
	// The verifier is given the crypto key the JWK holds: what it would take out of the JWK
	// itself, after making another copy of it. A key Raw cannot read is left to the verifier,
	// which refuses it as it always did.
	var raw any
	if pub.Raw(&raw) != nil {
		raw = pub
	}
	if err := verifier.Verify(p.signingInput, p.sig, raw); err != nil {
		if hint := derSignatureHint(alg, p.sig); hint != "" {
			return Header{}, nil, fmt.Errorf("%w: signature does not verify with key %q (%s): %s", ErrBadSignature, kid, alg, hint)
		}
		return Header{}, nil, fmt.Errorf("%w: signature does not verify with key %q (%s)", ErrBadSignature, kid, alg)
	}
	return hdr, p.claims, nil
}

// usableKey checks that key may verify a token signed with alg and returns its public
// half. A private key is accepted and reduced to its public key.
// kid is used only in messages.
func usableKey(key jwk.Key, kid string, alg jwa.SignatureAlgorithm) (jwk.Key, error) {
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return nil, fmt.Errorf(`%w: key %q has use %q, want "sig"`, ErrKeyNotUsable, kid, use)
	}
	if ops := key.KeyOps(); len(ops) > 0 && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, fmt.Errorf(`%w: key %q has key_ops %v without "verify"`, ErrKeyNotUsable, kid, ops)
	}
	if ka := key.Algorithm(); ka != nil && ka.String() != "" && ka.String() != alg.String() {
		return nil, fmt.Errorf("%w: key %q is for alg %q, token uses %q", ErrKeyNotUsable, kid, ka.String(), alg)
	}
	// A public key is its own public half (PublicKeyOf would copy it, field by field, on every
	// verification); anything else is reduced to its public key.
	pub := key
	if private, err := jwk.IsPrivateKey(key); err != nil || private {
		if pub, err = jwk.PublicKeyOf(key); err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrKeyNotUsable, kid, err)
		}
	}

	switch {
	case strings.HasPrefix(string(alg), "PS"), strings.HasPrefix(string(alg), "RS"):
		rsaKey, ok := pub.(jwk.RSAPublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: alg %q needs an RSA key, key %q has kty %q", ErrKeyNotUsable, alg, kid, pub.KeyType())
		}
		if bits := bitLen(rsaKey.N()); bits < MinRSABits {
			return nil, fmt.Errorf("%w: key %q is RSA-%d, minimum is %d bits", ErrKeyNotUsable, kid, bits, MinRSABits)
		}
	case alg == jwa.ES256 || alg == jwa.ES384 || alg == jwa.ES512:
		want := curveOf(alg)
		ecKey, ok := pub.(jwk.ECDSAPublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: alg %q needs an EC %s key, key %q has kty %q", ErrKeyNotUsable, alg, want, kid, pub.KeyType())
		}
		if ecKey.Crv() != want {
			return nil, fmt.Errorf("%w: alg %q needs curve %s, key %q is on %q", ErrKeyNotUsable, alg, want, kid, ecKey.Crv())
		}
	case alg == jwa.EdDSA:
		okpKey, ok := pub.(jwk.OKPPublicKey)
		if !ok || okpKey.Crv() != jwa.Ed25519 {
			return nil, fmt.Errorf("%w: alg %q needs an OKP Ed25519 key, key %q has kty %q", ErrKeyNotUsable, alg, kid, pub.KeyType())
		}
	default:
		// Unreachable while supportedAlgs and this switch agree; fail closed if they drift.
		return nil, fmt.Errorf("%w: no key rule for alg %q", ErrAlgNotAllowed, alg)
	}
	return pub, nil
}

// curveOf is the curve an ES* algorithm signs on.
func curveOf(alg jwa.SignatureAlgorithm) jwa.EllipticCurveAlgorithm {
	switch alg {
	case jwa.ES256:
		return jwa.P256
	case jwa.ES384:
		return jwa.P384
	default:
		return jwa.P521
	}
}

// bitLen is the bit length of the big-endian unsigned integer b (big.Int's BitLen of
// SetBytes(b), without making the big.Int).
func bitLen(b []byte) int {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0
	}
	return (len(b)-1)*8 + bits.Len8(b[0])
}

func usable(algs []jwa.SignatureAlgorithm) []jwa.SignatureAlgorithm {
	var out []jwa.SignatureAlgorithm
	for _, a := range algs {
		if slices.Contains(supportedAlgs, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func algList(algs []jwa.SignatureAlgorithm) string {
	if len(algs) == 0 {
		return "none configured"
	}
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

func quoteList(list []string) string {
	const maxShown = 5
	q := make([]string, 0, min(len(list), maxShown)+1)
	for _, s := range list[:min(len(list), maxShown)] {
		q = append(q, fmt.Sprintf("%q", clip(s)))
	}
	if len(list) > maxShown {
		q = append(q, fmt.Sprintf("and %d more", len(list)-maxShown))
	}
	return strings.Join(q, ", ")
}

// clip shortens attacker-supplied strings quoted in errors, which end up in logs.
func clip(s string) string {
	const maxLen = 64
	if len(s) <= maxLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxLen], "") + "..."
}
