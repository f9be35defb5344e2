package ssa

import (
	"time"

	"github.com/dcrgate/dcrgate/internal/jose"
)

// checkTimeClaims and its types stand in for the shared iat/exp-with-leeway check that the
// request envelope and JWT access tokens will use too (issue 11: one time-claim check). They
// have its shape (rules in, the first problem out), so CheckTimes swaps to the shared one by
// changing these few lines; nothing else in the package reads iat or exp.

// timeRules say which time claims are required and how old a token may be.
type timeRules struct {
	Leeway          time.Duration
	RequireIssuedAt bool
	// MaxAge, when positive, refuses an iat older than now - MaxAge - Leeway.
	MaxAge time.Duration
}

type timeProblem int

const (
	timeMissing timeProblem = iota + 1
	timeMalformed
	timeIssuedInFuture
	timeTooOld
	timeExpired
)

// timeError is a time claim that fails its rule.
type timeError struct {
	claim   string
	problem timeProblem
}

// checkTimeClaims reads iat and exp and applies rules at now: iat (present if required, not
// after now+Leeway, not older than MaxAge), then exp (if present, now before exp+Leeway).
func checkTimeClaims(claims map[string]any, now time.Time, rules timeRules) *timeError {
	iat, ok, err := jose.NumericDate(claims, "iat")
	switch {
	case err != nil:
		return &timeError{"iat", timeMalformed}
	case !ok && rules.RequireIssuedAt:
		return &timeError{"iat", timeMissing}
	case ok && iat.After(now.Add(rules.Leeway)):
		return &timeError{"iat", timeIssuedInFuture}
	case ok && rules.MaxAge > 0 && iat.Before(now.Add(-rules.MaxAge-rules.Leeway)):
		return &timeError{"iat", timeTooOld}
	}
	exp, ok, err := jose.NumericDate(claims, "exp")
	switch {
	case err != nil:
		return &timeError{"exp", timeMalformed}
	case ok && !now.Before(exp.Add(rules.Leeway)):
		return &timeError{"exp", timeExpired}
	}
	return nil
}
