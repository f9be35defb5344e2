package jwks

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/internal/jose"
)

// MaxRevokedKeys bounds the keys of one revoked key set. A revoked set only grows, so it may
// hold more than a published key set (MaxKeys), but the fetch size limit still applies.
const MaxRevokedKeys = 1000

// Listed is one key of a revoked key set (an OB directory's software_jwks_revoked_endpoint or
// org_jwks_revoked_endpoint): its kid and its RFC 7638 SHA-256 thumbprint, base64url. Either
// names the revoked key.
type Listed struct {
	KeyID      string
	Thumbprint string
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of key, base64url without padding: the name
// of a key that does not depend on its kid.
func Thumbprint(key jwk.Key) (tp string, err error) {
	// jwx panics on some malformed keys (an EC point larger than its curve); a key that
	// cannot be named is an error, never a crash.
	defer func() {
		if r := recover(); r != nil {
			tp, err = "", fmt.Errorf("jwks: thumbprint of key %q: malformed key", clip(key.KeyID()))
		}
	}()
	sum, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwks: thumbprint of key %q: %w", clip(key.KeyID()), err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// RevokedSet returns the keys listed in the revoked key set at url, fetched and cached under
// the rules of the key sets (https only, no redirects, the size limit and timeout, the
// lifetime from cache headers, one fetch per URL in flight, the last good set served while a
// refresh fails). It does not check a host allow-list: the caller checked url (CheckURL)
// where it took it from.
//
// Unlike a key set, a revoked set may be empty ({"keys": []} is the usual answer: nothing is
// revoked), and its keys are only named, never used to verify, so a key without kid counts
// by its thumbprint. The error wraps ErrFetch and jose.ErrKeyUnavailable when no set could be
// obtained.
func (f *Fetcher) RevokedSet(ctx context.Context, url string) ([]Listed, error) {
	if _, err := checkURLShape(url); err != nil {
		return nil, err
	}
	k := setKey{url: url, revoked: true}
	fetched, fetchErr := f.fetchIfDue(ctx, k, func(e *entry, now time.Time) bool {
		return e == nil || !now.Before(e.refreshAt)
	})
	f.mu.Lock()
	e := f.entries[k]
	var listed []Listed
	if e != nil {
		listed = e.listed
	}
	f.mu.Unlock()
	if e == nil {
		if fetchErr == nil {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%w: waiting for revoked key set %s: %w", jose.ErrKeyUnavailable, clip(url), err)
			}
			fetchErr = fmt.Errorf("%w: %w: no revoked key set for %s", ErrFetch, jose.ErrKeyUnavailable, clip(url))
		}
		return nil, fetchErr
	}
	if !fetched {
		stats.cacheHits.Add(1)
	}
	return listed, nil
}

// parseRevoked reads a revoked key set: a {"keys": [...]} JWK Set, possibly empty, of at most
// MaxRevokedKeys keys, each a valid JWK whose thumbprint can be computed.
func parseRevoked(data []byte) ([]Listed, error) {
	var shape struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &shape); err != nil {
		return nil, fmt.Errorf("%w: not a JSON key set: %v", ErrInvalidSet, jsonErr(err))
	}
	if shape.Keys == nil {
		return nil, fmt.Errorf(`%w: no "keys" array`, ErrInvalidSet)
	}
	if len(shape.Keys) > MaxRevokedKeys {
		return nil, fmt.Errorf("%w: %d revoked keys, limit is %d", ErrInvalidSet, len(shape.Keys), MaxRevokedKeys)
	}
	listed := make([]Listed, 0, len(shape.Keys))
	for i, raw := range shape.Keys {
		key, err := jwk.ParseKey(raw)
		if err == nil {
			err = key.Validate()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: revoked key %d: %v", ErrInvalidSet, i, err)
		}
		tp, err := Thumbprint(key)
		if err != nil {
			return nil, fmt.Errorf("%w: revoked key %d: %v", ErrInvalidSet, i, err)
		}
		listed = append(listed, Listed{KeyID: key.KeyID(), Thumbprint: tp})
	}
	return listed, nil
}
