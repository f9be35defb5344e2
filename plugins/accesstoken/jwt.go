package accesstoken

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/jwtclaims"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// verifier turns a bearer token into its verified claims. It answers 401 invalid_token for a
// token that is not acceptable and 503 when it cannot tell (a key source or introspection
// endpoint that is down), never a bare error.
type verifier interface {
	Verify(ctx context.Context, token string, now time.Time) (map[string]any, *dcr.Error)
}

// badToken is the 401 of a token that does not verify. The reason goes to the log only: the
// caller learns that its token was refused, not which check refused it.
func badToken(format string, args ...any) *dcr.Error {
	return dcr.InvalidToken("the access token is not valid").WithCause(fmt.Errorf(format, args...))
}

// jwtVerifier verifies JWT access tokens (RFC 9068 shaped) against a key source.
type jwtVerifier struct {
	keys     jose.KeySource
	algs     []jwa.SignatureAlgorithm
	issuer   string
	audience []string
	leeway   time.Duration
}

func (a *AccessToken) newJWTVerifier(ctx caddy.Context) (*jwtVerifier, error) {
	names := a.Algorithms
	if len(names) == 0 {
		names = []string{"PS256", "ES256"}
	}
	algs, err := jose.ParseAlgs(names)
	if err != nil {
		return nil, fmt.Errorf("algorithms: %w", err)
	}
	if a.fetcher, err = a.Fetch.Acquire(ctx); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	keys, err := a.Keys.Open(a.fetcher.Fetcher)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return &jwtVerifier{keys: keys, algs: algs, issuer: a.Issuer, audience: a.Audience, leeway: time.Duration(a.Leeway)}, nil
}

// Verify checks the signature (alg allow-list, kid from the configured keys only), then iss,
// aud, exp, nbf and iat.
func (v *jwtVerifier) Verify(ctx context.Context, token string, now time.Time) (map[string]any, *dcr.Error) {
	if strings.Count(token, ".") != 2 {
		return nil, badToken("not a compact JWS")
	}
	_, claims, err := jose.Verify(ctx, []byte(token), v.algs, v.keys)
	if err != nil {
		if errors.Is(err, jose.ErrKeyUnavailable) {
			return nil, dcr.Unavailable(err, "the access token cannot be verified right now")
		}
		return nil, badToken("%w", err)
	}
	iss, ok, err := jose.StringClaim(claims, "iss")
	if err != nil || !ok || iss != v.issuer {
		return nil, badToken("iss is not the configured issuer")
	}
	if derr := checkTimes(claims, now, v.leeway, true); derr != nil {
		return nil, derr
	}
	if derr := checkAudience(claims, v.audience); derr != nil {
		return nil, derr
	}
	return claims, nil
}

// checkTimes applies exp (required if expRequired), nbf and iat with leeway: the rule every
// token shares (jwtclaims.CheckTimes), with no age or lifetime limit of its own.
func checkTimes(claims map[string]any, now time.Time, leeway time.Duration, expRequired bool) *dcr.Error {
	if _, terr := jwtclaims.CheckTimes(claims, now, jwtclaims.TimeRules{Leeway: leeway, RequireExpiry: expRequired}); terr != nil {
		return badToken("%w", terr)
	}
	return nil
}

// checkAudience requires aud to name one of want when want is set (then an absent aud fails
// too: the operator asked for tokens meant for this gateway).
func checkAudience(claims map[string]any, want []string) *dcr.Error {
	if len(want) == 0 {
		return nil
	}
	ok, err := jose.AudienceContains(claims, want)
	if err != nil || !ok {
		return badToken("aud does not name this gateway")
	}
	return nil
}
