package accesstoken

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/jwtclaims"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// protectRegister requires a verified token with the configured scopes on POST and, for a
// single-use token, returns its consumption with the registration's other one-time keys.
func (a *AccessToken) protectRegister(ctx context.Context, x *dcr.Exchange, reg dcr.Registry) (dcr.Result, error) {
	token, derr := dcr.BearerToken(x.Request)
	if derr != nil {
		return dcr.Result{}, derr
	}
	if token == "" {
		return dcr.Result{}, dcr.InvalidToken("an access token with scope %s is required (Authorization: Bearer)", strings.Join(a.Register.Scopes, " "))
	}
	if len(token) > MaxTokenLength {
		return dcr.Result{}, badToken("the token is longer than %d bytes", MaxTokenLength)
	}
	claims, derr := a.verifier.Verify(ctx, token, x.Now)
	if derr != nil {
		return dcr.Result{}, derr
	}
	if missing := missingScopes(claims, a.Register.Scopes); len(missing) > 0 {
		return dcr.Result{}, insufficientScope(a.Register.Scopes, missing)
	}
	res := dcr.Result{AccessTokenClaims: claims}
	if *a.Register.SingleUse {
		key := a.consumedKey(token, claims)
		// Refusing a used token now spares the signature checks; the claim committed after
		// every check is what makes the token single use under concurrency.
		if used, err := reg.Seen(ctx, key); err != nil {
			return dcr.Result{}, dcr.Unavailable(err, "the registration store is unavailable")
		} else if used {
			return dcr.Result{}, errTokenUsed()
		}
		res.Once = []dcr.OnceClaim{{Key: key, TTL: a.consumedTTL(claims, x.Now), Reject: errTokenUsed()}}
	}
	if a.Register.Revoke {
		res.AfterCommit = []func(){func() { a.revokeInBackground(token, "used for a registration") }}
	}
	return res, nil
}

func errTokenUsed() *dcr.Error {
	return dcr.InvalidToken("the access token is not valid").WithCause(errUsed)
}

// errUsed is the logged cause of refusing a consumed token; the caller is told only that the
// token is not valid.
var errUsed = errors.New("the single-use access token was already used")

// consumedKey names a used token in the once store: by issuer and jti when it has a jti (a jti
// is unique per issuer) no longer than jwtclaims.MaxJTILength, else by the token's SHA-256.
func (a *AccessToken) consumedKey(token string, claims map[string]any) string {
	if jti, ok, err := jose.StringClaim(claims, "jti"); err == nil && ok && jti != "" && len(jti) <= jwtclaims.MaxJTILength {
		iss, _, _ := jose.StringClaim(claims, "iss")
		if iss == "" {
			iss = a.Issuer
		}
		return "access_token\x00jti\x00" + iss + "\x00" + jti
	}
	sum := sha256.Sum256([]byte(token))
	return "access_token\x00sha256\x00" + hex.EncodeToString(sum[:])
}

// consumedTTL remembers a used token until it expires (it is refused afterwards anyway), or
// for consumed_ttl when it has no exp.
func (a *AccessToken) consumedTTL(claims map[string]any, now time.Time) time.Duration {
	if exp, ok, err := jose.NumericDate(claims, "exp"); err == nil && ok {
		return jwtclaims.Times{Expiry: exp}.RememberFor(now, time.Duration(a.Leeway))
	}
	return max(time.Duration(a.Register.ConsumedTTL), time.Second)
}

// tokenScopes reads scope: a space-delimited string (RFC 6749, RFC 7662, RFC 9068), or an
// array of strings as some servers issue.
func tokenScopes(claims map[string]any) []string {
	switch s := claims["scope"].(type) {
	case string:
		return strings.Fields(s)
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			if v, ok := e.(string); ok {
				out = append(out, v)
			}
		}
		return out
	}
	return nil
}

func missingScopes(claims map[string]any, want []string) []string {
	have := tokenScopes(claims)
	var missing []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			missing = append(missing, w)
		}
	}
	return missing
}

// insufficientScope is the RFC 6750 §3.1 403.
func insufficientScope(required, missing []string) *dcr.Error {
	scope := strings.Join(required, " ")
	return &dcr.Error{
		Status:      http.StatusForbidden,
		Code:        dcr.CodeInsufficientScope,
		Description: "the access token lacks the scope " + strings.Join(missing, " "),
		Header:      http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="` + scope + `"`}},
	}
}
