package accesstoken

import (
	"context"
	"crypto/subtle"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// authorizeManagement decides which tokens authorize a read/update/delete. The handler refuses
// the call unless x.ManagementAuthorized is true once the authenticating protections ran, with
// the same 401 whether the client is unknown or the token wrong; the reason a token did not
// authorize the call goes to x.RefuseManagement, for the audit log.
func (a *AccessToken) authorizeManagement(ctx context.Context, x *dcr.Exchange) error {
	x.ManagementAuthorized = x.RegistrationTokenValid && a.accepts(x.Operation, MethodRegistrationToken)
	if x.ManagementAuthorized {
		return nil
	}
	switch {
	case x.BearerToken == "":
		x.RefuseManagement("no access token was sent")
		return nil
	case x.RegistrationTokenValid:
		x.RefuseManagement("the registration access token is not accepted for " + string(x.Operation) + " (manage)")
		return nil
	case !a.accepts(x.Operation, MethodClientCredentials):
		x.RefuseManagement("the access token is not the registration access token of this client_id")
		return nil
	case len(x.BearerToken) > MaxTokenLength:
		x.RefuseManagement("the access token is longer than the limit")
		return nil
	}
	// The token is verified before anything depends on whether the client exists, so that a
	// verifier that is down answers 503 for known and unknown clients alike.
	claims, derr := a.verifier.Verify(ctx, x.BearerToken, x.Now)
	if derr != nil {
		if derr.Status >= 500 {
			return derr
		}
		why := derr.Description
		if derr.Cause != nil {
			why = derr.Cause.Error() // what is wrong with the token; never the token itself
		}
		x.RefuseManagement("the access token is neither this client_id's registration access token nor a valid client-credentials token: " + why)
		return nil // refused with the handler's generic 401
	}
	if x.Existing == nil {
		// OB DCR v3.2: a valid token presented for an unknown client is revoked.
		a.revokeInBackground(x.BearerToken, "presented for an unknown client")
		return nil
	}
	client, ok := a.tokenClient(claims)
	if !ok {
		x.RefuseManagement("the client-credentials token names no client")
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(client), []byte(x.Existing.ClientID)) != 1 {
		x.RefuseManagement("the client-credentials token was issued to another client")
		return nil
	}
	if !boundToCaller(claims, x.ClientCert) {
		x.RefuseManagement("the client-credentials token is bound to another certificate than the caller's (RFC 8705 §3)")
		return nil
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
