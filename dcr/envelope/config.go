// Package envelope applies the Open Banking UK DCR v3.2 request-envelope rules to a verified
// registration request: the claims that make the signed request a one-time message from the
// software named in its software statement to this authorization server (iss, aud, iat, exp,
// nbf, jti) and the header facts the signature check leaves behind (alg, kid).
//
// The JWS itself is verified by package internal/jose before these rules run: compact
// serialization only, alg in the allow-list (never none or HS*), kid required, keys only from
// the configured source (never from jwk, jku, x5u or x5c headers), key use sig. Check takes the
// verified claims and header and runs Rules in order; the first problem is a 400
// invalid_client_metadata *dcr.Error whose description names the claim. A request that passes
// yields the replay claim (a one-time key per issuer and jti) for the handler to commit with
// the registration's other one-time keys, so a replay is refused atomically, not by a look-up.
//
// Decisions where the specification leaves room:
//
//   - iss is compared with the SSA's software_id only when a software statement was verified
//     (a deployment with configured request keys and no software_statement protection has
//     none); it is always required.
//   - aud may be a string or an array; one member must be one of Config.Audience exactly.
//   - iat and exp are both required, exp must be after iat and at most MaxLifetime after it,
//     iat at most MaxAge old; every comparison with the clock allows Leeway (the rule shared
//     with software statements and access tokens, jwtclaims.CheckTimes). nbf is optional.
//   - jti is a non-empty string of at most jwtclaims.MaxJTILength bytes, remembered per issuer
//     until exp plus Leeway (after that the request is refused as expired anyway).
package envelope

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dcrgate/dcrgate/internal/jose"
)

// Defaults of Config.
const (
	DefaultLeeway      = 30 * time.Second
	DefaultMaxAge      = time.Hour
	DefaultMaxLifetime = time.Hour
)

// DefaultAlgorithms are the request signing algorithms accepted when none are configured.
var DefaultAlgorithms = []string{"PS256", "ES256"}

// Config holds what a deployment accepts in a request envelope. Empty fields take the defaults
// listed; Audience has none and is required.
type Config struct {
	// Audience lists the identifiers of this ASPSP accepted in aud.
	Audience []string
	// Algorithms allowed for the request signature. Default PS256, ES256.
	Algorithms []string
	// Leeway for clock skew on iat, exp and nbf. Default 30s.
	Leeway time.Duration
	// MaxAge refuses a request whose iat is older than this. Default 1h.
	MaxAge time.Duration
	// MaxLifetime refuses a request whose exp is more than this after its iat. Default 1h. It
	// also bounds how long a jti is remembered.
	MaxLifetime time.Duration
}

// SetDefaults fills every empty field with its default. It never changes a set value.
func (c *Config) SetDefaults() {
	if len(c.Algorithms) == 0 {
		c.Algorithms = slices.Clone(DefaultAlgorithms)
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
}

// Validate reports a configuration that could not work or would weaken the rules. It checks
// c as SetDefaults would complete it, without changing c.
func (c *Config) Validate() error {
	d := *c
	d.SetDefaults()
	if len(d.Audience) == 0 {
		return errors.New("audience is required (this ASPSP's identifiers accepted in aud)")
	}
	if slices.Contains(d.Audience, "") {
		return errors.New("audience: an empty identifier names nobody")
	}
	if d.Leeway < 0 || d.MaxAge < 0 || d.MaxLifetime < 0 {
		return errors.New("durations must not be negative")
	}
	if _, err := jose.ParseAlgs(d.Algorithms); err != nil {
		return fmt.Errorf("algorithms: %w", err)
	}
	return nil
}
