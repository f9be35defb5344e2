// Package jwtclaims holds the checks of registered JWT claims (RFC 7519 §4.1) that every
// token the gateway reads shares: the software statement, the signed registration request and
// JWT access tokens. One rule, one place: iat, exp and nbf are read and compared with the
// clock leeway by CheckTimes, and a jti is bounded by MaxJTILength.
//
// The package phrases no protocol error: each caller turns a *TimeError into its own (an SSA
// problem is invalid_software_statement, a request problem invalid_client_metadata, a token
// problem a 401), using Describe for the text.
package jwtclaims

import (
	"fmt"
	"time"

	"github.com/dcrgate/dcrgate/internal/jose"
)

// MaxJTILength bounds a jti in bytes. A jti becomes a once-store key (request replay, consumed
// access token), so an unbounded one would let a client choose the size of store keys.
const MaxJTILength = 256

// TimeRules say which time claims a token must carry and how old and how long-lived it may be.
// The zero TimeRules requires nothing and applies no leeway; a present claim is always
// checked.
type TimeRules struct {
	// Leeway is allowed for clock skew on every comparison with now.
	Leeway time.Duration
	// RequireIssuedAt and RequireExpiry make iat and exp mandatory.
	RequireIssuedAt bool
	RequireExpiry   bool
	// MaxAge, when positive, refuses an iat older than now - MaxAge - Leeway.
	MaxAge time.Duration
	// MaxLifetime, when positive, bounds the lifetime exp - iat (when both are present) to
	// (0, MaxLifetime]: an exp not after iat is refused too. Without it the order of iat and
	// exp is not checked (a token's issuer may stamp both from clocks that disagree).
	MaxLifetime time.Duration
}

// Times are the time claims CheckTimes read; a zero field is an absent claim.
type Times struct {
	IssuedAt  time.Time
	Expiry    time.Time
	NotBefore time.Time
}

// Problem is what is wrong with a time claim.
type Problem int

// The problems CheckTimes reports, one per rule.
const (
	// Missing: a required claim (iat or exp) is absent.
	Missing Problem = iota + 1
	// Malformed: the claim is not a NumericDate (TimeError.Err says why).
	Malformed
	// IssuedInFuture: iat is after now + Leeway.
	IssuedInFuture
	// TooOld: iat is before now - MaxAge - Leeway.
	TooOld
	// Expired: now is at or after exp + Leeway.
	Expired
	// ExpiryNotAfterIssuedAt: exp is not after iat (checked with MaxLifetime).
	ExpiryNotAfterIssuedAt
	// LifetimeTooLong: exp - iat exceeds MaxLifetime.
	LifetimeTooLong
	// NotYetValid: nbf is after now + Leeway.
	NotYetValid
)

// TimeError is a time claim that fails its rule.
type TimeError struct {
	// Claim is "iat", "exp" or "nbf".
	Claim   string
	Problem Problem
	// Limit is MaxAge for TooOld and MaxLifetime for LifetimeTooLong.
	Limit time.Duration
	// Err is the parse error of a Malformed claim (wraps jose.ErrMalformed).
	Err error
}

// Describe says what is wrong, naming the token as subject ("the request", "the token") where
// the sentence is about the token rather than one claim.
func (e *TimeError) Describe(subject string) string {
	switch e.Problem {
	case Missing:
		return e.Claim + " is required and must be a NumericDate"
	case Malformed:
		return e.Claim + " must be a NumericDate"
	case IssuedInFuture:
		return "iat is in the future"
	case TooOld:
		return fmt.Sprintf("iat is older than %s", e.Limit)
	case Expired:
		return subject + " has expired (exp is in the past)"
	case ExpiryNotAfterIssuedAt:
		return "exp must be after iat"
	case LifetimeTooLong:
		return fmt.Sprintf("exp is more than %s after iat", e.Limit)
	case NotYetValid:
		return subject + " is not valid yet (nbf)"
	}
	return e.Claim + " is not acceptable"
}

func (e *TimeError) Error() string { return e.Describe("the token") }

func (e *TimeError) Unwrap() error { return e.Err }

// CheckTimes reads iat, exp and nbf from claims and applies rules at now, in this order: iat
// (present if required, not in the future, not older than MaxAge), exp (present if required,
// not past, after iat and within MaxLifetime of it when MaxLifetime is set), nbf (not in the
// future). Every comparison
// with now allows rules.Leeway. The first failure is returned; on success the claims read.
func CheckTimes(claims map[string]any, now time.Time, rules TimeRules) (Times, *TimeError) {
	var t Times
	leeway := rules.Leeway

	iat, ok, err := jose.NumericDate(claims, "iat")
	switch {
	case err != nil:
		return Times{}, &TimeError{Claim: "iat", Problem: Malformed, Err: err}
	case !ok && rules.RequireIssuedAt:
		return Times{}, &TimeError{Claim: "iat", Problem: Missing}
	case ok && iat.After(now.Add(leeway)):
		return Times{}, &TimeError{Claim: "iat", Problem: IssuedInFuture}
	case ok && rules.MaxAge > 0 && iat.Before(now.Add(-rules.MaxAge-leeway)):
		return Times{}, &TimeError{Claim: "iat", Problem: TooOld, Limit: rules.MaxAge}
	}
	if ok {
		t.IssuedAt = iat
	}

	exp, ok, err := jose.NumericDate(claims, "exp")
	switch {
	case err != nil:
		return Times{}, &TimeError{Claim: "exp", Problem: Malformed, Err: err}
	case !ok && rules.RequireExpiry:
		return Times{}, &TimeError{Claim: "exp", Problem: Missing}
	case ok && !now.Before(exp.Add(leeway)):
		return Times{}, &TimeError{Claim: "exp", Problem: Expired}
	case ok && !t.IssuedAt.IsZero() && rules.MaxLifetime > 0 && !exp.After(t.IssuedAt):
		return Times{}, &TimeError{Claim: "exp", Problem: ExpiryNotAfterIssuedAt}
	case ok && !t.IssuedAt.IsZero() && rules.MaxLifetime > 0 && exp.Sub(t.IssuedAt) > rules.MaxLifetime:
		return Times{}, &TimeError{Claim: "exp", Problem: LifetimeTooLong, Limit: rules.MaxLifetime}
	}
	if ok {
		t.Expiry = exp
	}

	nbf, ok, err := jose.NumericDate(claims, "nbf")
	switch {
	case err != nil:
		return Times{}, &TimeError{Claim: "nbf", Problem: Malformed, Err: err}
	case ok && nbf.After(now.Add(leeway)):
		return Times{}, &TimeError{Claim: "nbf", Problem: NotYetValid}
	}
	if ok {
		t.NotBefore = nbf
	}
	return t, nil
}

// RememberFor is how long a one-time key of this token (its jti, or the token itself) must be
// kept from now: until exp plus leeway, since the token is refused as expired afterwards, and
// at least a second. It is zero when the token has no exp; the caller then chooses.
func (t Times) RememberFor(now time.Time, leeway time.Duration) time.Duration {
	if t.Expiry.IsZero() {
		return 0
	}
	return max(t.Expiry.Add(leeway).Sub(now), time.Second)
}
