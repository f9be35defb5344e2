package accesstoken

import (
	"context"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/manage"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// authorizeManagement is access_token's vote on a read/update/delete (see manage.Authorize):
// a grant for a valid client-credentials token of the path client where Manage accepts one;
// a refusal of a registration access token where Manage excludes it, and of any other token
// it was asked to judge and found wanting (the reason is for the audit log; the caller gets
// the uniform 401). It abstains on a registration access token Manage accepts: the built-in
// manage.RegistrationTokenStep grants that.
func (a *AccessToken) authorizeManagement(ctx context.Context, x *dcr.Exchange) (dcr.Result, error) {
	methods := manage.Methods(a.Manage)
	isRegistrationToken := manage.RegistrationToken(x.BearerToken, x.Existing)
	refuse := func(reason string) (dcr.Result, error) { return dcr.Result{Vote: dcr.Refuse(reason)}, nil }
	switch {
	case isRegistrationToken && methods.Accepts(x.Operation, MethodRegistrationToken):
		return dcr.Result{}, nil
	case x.BearerToken == "":
		return refuse(manage.ReasonNoToken)
	case isRegistrationToken:
		return refuse("the registration access token is not accepted for " + string(x.Operation) + " (manage)")
	case !methods.Accepts(x.Operation, MethodClientCredentials):
		return refuse(manage.ReasonNotTheToken)
	case len(x.BearerToken) > MaxTokenLength:
		return refuse("the access token is longer than the limit")
	}
	// The token is verified before anything depends on whether the client exists, so that a
	// verifier that is down answers 503 for known and unknown clients alike.
	claims, derr := a.verifier.Verify(ctx, x.BearerToken, x.Now)
	if derr != nil {
		if derr.Status >= 500 {
			return dcr.Result{}, derr
		}
		why := derr.Description
		if derr.Cause != nil {
			why = derr.Cause.Error() // what is wrong with the token; never the token itself
		}
		return refuse("the access token is neither this client_id's registration access token nor a valid client-credentials token: " + why)
	}
	if x.Existing == nil {
		// OB DCR v3.2: a valid token presented for an unknown client is revoked (the call is
		// refused by manage.Authorize).
		a.revokeInBackground(x.BearerToken, "presented for an unknown client")
		return dcr.Result{}, nil
	}
	client, _ := a.tokenClient(claims)
	if err := manage.ClientCredentialsToken(client, claims, x.Existing, x.ClientCert); err != nil {
		return refuse(err.Error())
	}
	return dcr.Result{Vote: dcr.Grant(), AccessTokenClaims: claims}, nil
}

// tokenClient is the client a token was issued to: client_claim of a JWT, client_id of an
// introspection answer.
func (a *AccessToken) tokenClient(claims map[string]any) (string, bool) {
	name := a.ClientClaim
	if a.Introspection != nil {
		name = "client_id"
	}
	v, ok, err := jose.StringClaim(claims, name)
	if err != nil || !ok || v == "" {
		return "", false
	}
	return v, true
}
