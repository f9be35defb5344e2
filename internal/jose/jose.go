// Package jose parses and verifies compact JWS tokens (software statements, request
// objects, private_key_jwt assertions) against an explicit algorithm allow-list.
//
// The package is deliberately narrow:
//
//   - Only the compact serialization is accepted. The JSON serialization, unsecured
//     ("none") tokens and HMAC algorithms can never verify.
//   - Keys come only from a KeySource chosen by the caller. The jwk, jku, x5u and x5c
//     header parameters are ignored, so a token can never bring or point at its own key.
//   - Header and payload are parsed by a strict JSON reader: invalid UTF-8, duplicate
//     member names, trailing data and excessive nesting are rejected, so two JSON
//     parsers can never disagree about what a signed token says.
//
// All JSON numbers in Header.Raw and in the claims map are json.Number values (the
// decoder runs with UseNumber) so that large integers survive unchanged; use
// NumericDate to read iat, exp and nbf.
package jose

import (
	"context"
	"errors"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Sentinel errors. Every error returned by this package wraps exactly one of them and
// states precisely what is wrong, so callers can map a failure to a protocol error code
// with errors.Is and still log a useful reason.
var (
	// ErrMalformed: the token is not a well-formed compact JWS with JSON object header
	// and payload, or it uses a header feature this package refuses (crit, b64).
	ErrMalformed = errors.New("jose: malformed token")
	// ErrAlgNotAllowed: the header alg is not in the allow-list (this includes "none"
	// and HS*, which are never allowed), or an allow-list was refused.
	ErrAlgNotAllowed = errors.New("jose: algorithm not allowed")
	// ErrMissingKID: the header has no kid, so no key can be chosen.
	ErrMissingKID = errors.New("jose: missing kid")
	// ErrUnknownKID: the KeySource has no key with the header kid.
	ErrUnknownKID = errors.New("jose: unknown kid")
	// ErrKeyNotUsable: the key named by kid exists but may not verify this token: its
	// use or key_ops exclude signature verification, its alg differs from the header
	// alg, its type or curve does not fit the alg, or it is too weak.
	ErrKeyNotUsable = errors.New("jose: key not usable for this token")
	// ErrBadSignature: the signature does not verify with the selected key.
	ErrBadSignature = errors.New("jose: bad signature")
	// ErrKeyUnavailable: the KeySource could not answer (network, origin failure); the
	// token may be fine and a retry may succeed.
	ErrKeyUnavailable = errors.New("jose: key unavailable")
)

// MaxTokenSize bounds the size of a token accepted by ParseUnverified and Verify.
const MaxTokenSize = 64 << 10

// Header is the decoded protected header of a compact JWS.
type Header struct {
	Alg  string
	Kid  string
	Typ  string
	Cty  string
	Crit []string
	// Raw holds every header member as decoded (numbers are json.Number).
	Raw map[string]any
}

// KeySource supplies verification keys by kid.
//
// Key returns an error wrapping ErrUnknownKID when the source is healthy but has no key
// with that kid. Any other error means the source could not answer and is reported by
// Verify as ErrKeyUnavailable.
type KeySource interface {
	Key(ctx context.Context, kid string) (jwk.Key, error)
}
