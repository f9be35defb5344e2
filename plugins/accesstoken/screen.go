package accesstoken

import (
	"context"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// Screen refuses a registration whose single-use register token was already consumed before
// the token is verified or introspected and before any other phase runs (dcr.Screener), so
// that a replayed token costs a look-up rather than signature checks, a key fetch or a call to
// the authorization server.
//
// The keys it looks up are the ones protectRegister would claim: by the token's SHA-256 (a
// token without a usable jti, or an opaque one), and, for a JWT, by the issuer and jti of its
// unverified payload. Unverified, they are whatever the sender wrote, which is safe for a
// look-up that may only refuse: a key is in the once store only because a verified token of
// that issuer and jti was consumed, so a forged payload can at most have its own call refused
// (as it would be after verification anyway); it can neither consume a token nor make one
// pass. The claim committed with the registration stays the one guard.
func (a *AccessToken) Screen(ctx context.Context, x *dcr.Exchange, reg dcr.Registry) error {
	if x.Operation != dcr.OpRegister || a.Register == nil || a.Register.SingleUse == nil || !*a.Register.SingleUse || reg == nil {
		return nil
	}
	token, derr := dcr.BearerToken(x.Request)
	if derr != nil || token == "" || len(token) > MaxTokenLength {
		return nil // Protect answers these with the full rules.
	}
	keys := []string{a.consumedKey(token, nil)}
	if _, claims, err := jose.ParseUnverified([]byte(token)); err == nil {
		if key := a.consumedKey(token, claims); key != keys[0] {
			keys = append(keys, key)
		}
	}
	for _, key := range keys {
		used, err := reg.Seen(ctx, key)
		if err != nil {
			return dcr.Unavailable(err, "the registration store is unavailable")
		}
		if used {
			return errTokenUsed()
		}
	}
	return nil
}
