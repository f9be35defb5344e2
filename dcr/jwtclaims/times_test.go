package jwtclaims

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/jose"
)

var now = time.Unix(1_700_000_000, 0).UTC()

// at is now + d as a JSON-decoded NumericDate.
func at(d time.Duration) json.Number {
	return json.Number(strconv.FormatInt(now.Add(d).Unix(), 10))
}

func TestCheckTimes(t *testing.T) {
	const leeway = 30 * time.Second
	request := TimeRules{Leeway: leeway, RequireIssuedAt: true, RequireExpiry: true, MaxAge: time.Hour, MaxLifetime: time.Hour}
	accessToken := TimeRules{Leeway: leeway, RequireExpiry: true}
	cases := []struct {
		name    string
		rules   TimeRules
		claims  map[string]any
		problem Problem // 0: accepted
		claim   string
	}{
		{"valid request", request, map[string]any{"iat": at(0), "exp": at(5 * time.Minute)}, 0, ""},
		{"iat missing", request, map[string]any{"exp": at(time.Minute)}, Missing, "iat"},
		{"iat optional", accessToken, map[string]any{"exp": at(time.Minute)}, 0, ""},
		{"iat a string", request, map[string]any{"iat": "yesterday", "exp": at(time.Minute)}, Malformed, "iat"},
		{"iat null", accessToken, map[string]any{"iat": nil, "exp": at(time.Minute)}, Malformed, "iat"},
		{"iat in the future", request, map[string]any{"iat": at(leeway + time.Second), "exp": at(time.Hour)}, IssuedInFuture, "iat"},
		{"iat in the future within leeway", request, map[string]any{"iat": at(leeway), "exp": at(time.Hour)}, 0, ""},
		{"iat in the future, optional iat", accessToken, map[string]any{"iat": at(time.Hour), "exp": at(2 * time.Hour)}, IssuedInFuture, "iat"},
		{"iat too old", request, map[string]any{"iat": at(-time.Hour - leeway - time.Second), "exp": at(time.Minute)}, TooOld, "iat"},
		{"iat old within leeway", TimeRules{Leeway: leeway, MaxAge: time.Hour}, map[string]any{"iat": at(-time.Hour - leeway)}, 0, ""},
		{"no max age", accessToken, map[string]any{"iat": at(-1000 * time.Hour), "exp": at(time.Minute)}, 0, ""},
		{"exp missing", request, map[string]any{"iat": at(0)}, Missing, "exp"},
		{"exp optional", TimeRules{}, map[string]any{"iat": at(0)}, 0, ""},
		{"exp a string", accessToken, map[string]any{"exp": "tomorrow"}, Malformed, "exp"},
		{"exp zero", accessToken, map[string]any{"exp": json.Number("0")}, Malformed, "exp"},
		{"expired", request, map[string]any{"iat": at(-10 * time.Minute), "exp": at(-leeway)}, Expired, "exp"},
		{"expired within leeway", request, map[string]any{"iat": at(-10 * time.Minute), "exp": at(-leeway + time.Second)}, 0, ""},
		{"expired, no leeway", TimeRules{}, map[string]any{"exp": at(0)}, Expired, "exp"},
		{"exp equal to iat", request, map[string]any{"iat": at(0), "exp": at(0)}, ExpiryNotAfterIssuedAt, "exp"},
		{"exp before iat", request, map[string]any{"iat": at(10 * time.Second), "exp": at(5 * time.Second)}, ExpiryNotAfterIssuedAt, "exp"},
		{"exp before iat, no lifetime limit", accessToken, map[string]any{"iat": at(10 * time.Second), "exp": at(5 * time.Second)}, 0, ""},
		{"lifetime too long", request, map[string]any{"iat": at(0), "exp": at(time.Hour + time.Second)}, LifetimeTooLong, "exp"},
		{"lifetime at the limit", request, map[string]any{"iat": at(0), "exp": at(time.Hour)}, 0, ""},
		{"no lifetime limit", accessToken, map[string]any{"iat": at(0), "exp": at(1000 * time.Hour)}, 0, ""},
		{"nbf in the future", accessToken, map[string]any{"exp": at(time.Hour), "nbf": at(leeway + time.Second)}, NotYetValid, "nbf"},
		{"nbf within leeway", accessToken, map[string]any{"exp": at(time.Hour), "nbf": at(leeway)}, 0, ""},
		{"nbf past", accessToken, map[string]any{"exp": at(time.Hour), "nbf": at(-time.Hour)}, 0, ""},
		{"nbf a bool", accessToken, map[string]any{"exp": at(time.Hour), "nbf": true}, Malformed, "nbf"},
		{"float and int forms", request, map[string]any{"iat": float64(now.Unix()), "exp": now.Unix() + 60}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			times, terr := CheckTimes(tc.claims, now, tc.rules)
			if tc.problem == 0 {
				if terr != nil {
					t.Fatalf("refused: %v", terr)
				}
				for name, got := range map[string]time.Time{"iat": times.IssuedAt, "exp": times.Expiry, "nbf": times.NotBefore} {
					want, present, _ := jose.NumericDate(tc.claims, name)
					if present != !got.IsZero() || (present && !got.Equal(want)) {
						t.Fatalf("%s read as %v, claim %v", name, got, tc.claims[name])
					}
				}
				return
			}
			if terr == nil {
				t.Fatalf("accepted %v", tc.claims)
			}
			if terr.Problem != tc.problem || terr.Claim != tc.claim {
				t.Fatalf("got %s problem %d, want %s problem %d", terr.Claim, terr.Problem, tc.claim, tc.problem)
			}
			if (tc.problem == Malformed) != errors.Is(terr, jose.ErrMalformed) {
				t.Fatalf("Malformed must wrap jose.ErrMalformed and nothing else does: %v", terr)
			}
			if times != (Times{}) {
				t.Fatalf("a refusal returned times %+v", times)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	cases := []struct {
		err  TimeError
		want string
	}{
		{TimeError{Claim: "exp", Problem: Missing}, "exp is required and must be a NumericDate"},
		{TimeError{Claim: "nbf", Problem: Malformed}, "nbf must be a NumericDate"},
		{TimeError{Claim: "iat", Problem: IssuedInFuture}, "iat is in the future"},
		{TimeError{Claim: "iat", Problem: TooOld, Limit: time.Hour}, "iat is older than 1h0m0s"},
		{TimeError{Claim: "exp", Problem: Expired}, "the request has expired (exp is in the past)"},
		{TimeError{Claim: "exp", Problem: ExpiryNotAfterIssuedAt}, "exp must be after iat"},
		{TimeError{Claim: "exp", Problem: LifetimeTooLong, Limit: 5 * time.Minute}, "exp is more than 5m0s after iat"},
		{TimeError{Claim: "nbf", Problem: NotYetValid}, "the request is not valid yet (nbf)"},
	}
	for _, tc := range cases {
		if got := tc.err.Describe("the request"); got != tc.want {
			t.Errorf("Describe = %q, want %q", got, tc.want)
		}
	}
	if got := (&TimeError{Claim: "exp", Problem: Expired}).Error(); got != "the token has expired (exp is in the past)" {
		t.Errorf("Error = %q", got)
	}
}

func TestRememberFor(t *testing.T) {
	const leeway = 30 * time.Second
	cases := []struct {
		name string
		exp  time.Time
		want time.Duration
	}{
		{"until exp plus leeway", now.Add(5 * time.Minute), 5*time.Minute + leeway},
		{"at least a second", now.Add(-leeway), time.Second},
		{"no exp", time.Time{}, 0},
	}
	for _, tc := range cases {
		if got := (Times{Expiry: tc.exp}).RememberFor(now, leeway); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
