package accesstoken

import (
	"context"
	"crypto/subtle"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// authorizeManagement decides which tokens authorize a read/update/delete. The handler refuses
// the call unless x.ManagementAuthorized is true once the authenticating protections ran, with
// the same 401 whether the client is unknown or the token wrong.
func (a *AccessToken) authorizeManagement(ctx context.Context, x *dcr.Exchange) error {
	x.ManagementAuthorized = x.RegistrationTokenValid && a.accepts(x.Operation, MethodRegistrationToken)
	if x.ManagementAuthorized || !a.accepts(x.Operation, MethodClientCredentials) || x.BearerToken == "" {
		return nil
	}
	if len(x.BearerToken) > MaxTokenLength {
		return nil
	}
	// The token is verified before anything depends on whether the client exists, so that a
	// verifier that is down answers 503 for known and unknown clients alike.
	claims, derr := a.verifier.Verify(ctx, x.BearerToken, x.Now)
	if derr != nil {
		if derr.Status >= 500 {
			return derr
		}
		return nil // refused with the handler's generic 401
	}
	if x.Existing == nil {
		// OB DCR v3.2: a valid token presented for an unknown client is revoked.
		a.revokeInBackground(x.BearerToken, "presented for an unknown client")
		return nil
	}
	client, ok := a.tokenClient(claims)
	if !ok || subtle.ConstantTimeCompare([]byte(client), []byte(x.Existing.ClientID)) != 1 {
		return nil // another client's token
	}
	if !boundToCaller(claims, x.ClientCert) {
		return nil // bound to another certificate than the caller's (RFC 8705 §3)
	}
	x.AccessTokenClaims = claims
	x.ManagementAuthorized = true
	return nil
}

// tokenClient is the client a token was issued to: client_claim of a JWT, client_id of an
// introspection answer.
func (a *AccessToken) tokenClient(claims map[string]any) (string, bool) {
	name := a.ClientClaim
	if a.Introspection != nil {
		name = "client_id"
	}
	v, ok, err := jose.StringClaim(claims, name)
	return v, err == nil && ok && v != ""
}
