// Package jwks supplies verification keys to internal/jose from JSON Web Key Sets: a
// Static source for sets given inline or in a file, and a Fetcher that downloads and
// caches sets from https URLs (software statement and client jwks_uri values).
package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/internal/jose"
)

const (
	// MaxSetSize bounds a key set read by ParseSet or LoadFile. The Fetcher applies its
	// own FetcherConfig.MaxBytes instead.
	MaxSetSize = 1 << 20
	// MaxKeys bounds the number of keys in one set; real sets hold a handful, and every
	// key costs parsing and memory for as long as the set is cached.
	MaxKeys = 100
)

// ErrInvalidSet is wrapped by every ParseSet and LoadFile error about the content of a set.
var ErrInvalidSet = errors.New("jwks: invalid key set")

// ParseSet parses a published JSON Web Key Set ({"keys":[...]}) of at most MaxSetSize
// bytes and MaxKeys keys.
//
// It is strict because a set is trusted to say who may sign: the set must hold at least
// one key, every key must have a non-empty kid and pass jwk validation, and the set is
// refused whole when any key carries private key material or is a symmetric (oct) key.
// A published private or shared key is compromised by definition, so rather than strip
// it and keep trusting its public half, the set is rejected and the publisher must fix
// it. Two signature-capable keys with the same kid are refused as ambiguous; a kid shared
// by one signing key and encryption-only keys resolves to the signing key.
func ParseSet(data []byte) (jwk.Set, error) {
	if len(data) > MaxSetSize {
		return nil, fmt.Errorf("%w: %d bytes, limit is %d", ErrInvalidSet, len(data), MaxSetSize)
	}
	set, _, err := parseAndIndex(data)
	return set, err
}

// LoadFile reads and parses a key set file with the rules of ParseSet.
func LoadFile(path string) (jwk.Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSetSize+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: reading %s: %w", path, err)
	}
	set, err := ParseSet(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// parseAndIndex applies the ParseSet rules without the size limit and returns the set
// with its kid index.
func parseAndIndex(data []byte) (jwk.Set, map[string]jwk.Key, error) {
	// jwk.Parse also accepts a lone JWK; a published set must be the {"keys":[...]} form.
	var shape struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &shape); err != nil {
		return nil, nil, fmt.Errorf("%w: not a JSON key set: %v", ErrInvalidSet, jsonErr(err))
	}
	if shape.Keys == nil {
		return nil, nil, fmt.Errorf(`%w: no "keys" array`, ErrInvalidSet)
	}
	if len(shape.Keys) == 0 {
		return nil, nil, fmt.Errorf("%w: the set holds no keys", ErrInvalidSet)
	}
	if len(shape.Keys) > MaxKeys {
		return nil, nil, fmt.Errorf("%w: %d keys, limit is %d", ErrInvalidSet, len(shape.Keys), MaxKeys)
	}
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidSet, err)
	}
	if set.Len() != len(shape.Keys) {
		return nil, nil, fmt.Errorf("%w: parsed %d of %d keys", ErrInvalidSet, set.Len(), len(shape.Keys))
	}
	for i := range set.Len() {
		key, _ := set.Key(i)
		if err := checkPublishedKey(i, key); err != nil {
			return nil, nil, err
		}
	}
	index, err := indexSet(set, true)
	if err != nil {
		return nil, nil, err
	}
	return set, index, nil
}

func checkPublishedKey(i int, key jwk.Key) error {
	kid := clip(key.KeyID()) // for messages only
	if kid == "" {
		return fmt.Errorf("%w: key %d has no kid", ErrInvalidSet, i)
	}
	if key.KeyType() == jwa.OctetSeq {
		return fmt.Errorf("%w: key %q is a symmetric (oct) key; a published set must hold public keys only", ErrInvalidSet, kid)
	}
	private, err := jwk.IsPrivateKey(key)
	if err != nil {
		return fmt.Errorf("%w: key %q: %v", ErrInvalidSet, kid, err)
	}
	if private {
		return fmt.Errorf("%w: key %q contains private key material; a published set must hold public keys only", ErrInvalidSet, kid)
	}
	if err := key.Validate(); err != nil {
		return fmt.Errorf("%w: key %q: %v", ErrInvalidSet, kid, err)
	}
	return nil
}

// indexSet maps kid to key. Keys without kid are skipped (only possible for sets built in
// code, since ParseSet refuses them). Two signing keys with one kid are an error when
// strict, otherwise the first wins.
func indexSet(set jwk.Set, strict bool) (map[string]jwk.Key, error) {
	index := make(map[string]jwk.Key)
	if set == nil {
		return index, nil
	}
	for i := range set.Len() {
		key, _ := set.Key(i)
		kid := key.KeyID()
		if kid == "" {
			continue
		}
		prev, dup := index[kid]
		switch {
		case !dup:
			index[kid] = key
		case signingCapable(prev) && signingCapable(key):
			if strict {
				return nil, fmt.Errorf("%w: two signing keys share kid %q", ErrInvalidSet, clip(kid))
			}
		case signingCapable(key):
			index[kid] = key
		}
	}
	return index, nil
}

// signingCapable reports whether a key's use and key_ops permit signature verification.
func signingCapable(key jwk.Key) bool {
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return false
	}
	ops := key.KeyOps()
	if len(ops) == 0 {
		return true
	}
	for _, op := range ops {
		if op == jwk.KeyOpVerify {
			return true
		}
	}
	return false
}

// jsonErr reduces a JSON error to its kind so no part of the document is echoed back.
func jsonErr(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("the document is a JSON %s, not an object", typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("member %q is a JSON %s", typ.Field, typ.Value)
	default:
		return err.Error()
	}
}

// Static is a KeySource over a fixed set, for keys configured inline or in a file.
type Static struct {
	keys map[string]jwk.Key
}

var _ jose.KeySource = (*Static)(nil)

// NewStatic indexes set by kid. It trusts set as given: parse untrusted input with
// ParseSet or LoadFile first. Keys without a kid cannot be selected and are skipped; if
// two signing keys share a kid, only the first is kept.
func NewStatic(set jwk.Set) *Static {
	index, _ := indexSet(set, false) // cannot fail when not strict
	return &Static{keys: index}
}

// Key returns the key with kid, or an error wrapping jose.ErrUnknownKID.
func (s *Static) Key(_ context.Context, kid string) (jwk.Key, error) {
	if key, ok := s.keys[kid]; ok && kid != "" {
		return key, nil
	}
	return nil, fmt.Errorf("%w: kid %q is not in the configured key set", jose.ErrUnknownKID, clip(kid))
}
