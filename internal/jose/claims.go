package jose

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// maxNumericDate is 9999-12-31T23:59:59Z. Later values cannot be real token times and
// would overflow time.Time arithmetic in callers' comparisons.
const maxNumericDate = 253402300799

// NumericDate reads an RFC 7519 NumericDate claim such as iat, exp or nbf.
//
// It returns ok=false and no error when the claim is absent. A present claim must be a
// finite, positive JSON number of seconds since the epoch, integer or fractional, not
// after year 9999; anything else (null, strings, zero, negatives) is an error wrapping
// ErrMalformed. json.Number (what ParseUnverified returns) and float64/int/int64 (for
// maps built by hand) are accepted.
func NumericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	var secs float64
	var whole int64
	isInt := false
	switch n := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			whole, isInt = i, true
		} else {
			f, err := strconv.ParseFloat(string(n), 64)
			if err != nil {
				return time.Time{}, true, fmt.Errorf("%w: claim %q is not a valid number", ErrMalformed, name)
			}
			secs = f
		}
	case float64:
		secs = n
	case int:
		whole, isInt = int64(n), true
	case int64:
		whole, isInt = n, true
	default:
		return time.Time{}, true, fmt.Errorf("%w: claim %q must be a NumericDate (number of seconds), got %s", ErrMalformed, name, JSONType(v))
	}
	if isInt {
		if whole <= 0 || whole > maxNumericDate {
			return time.Time{}, true, fmt.Errorf("%w: claim %q value %d is out of range", ErrMalformed, name, whole)
		}
		return time.Unix(whole, 0).UTC(), true, nil
	}
	if math.IsNaN(secs) || math.IsInf(secs, 0) || secs <= 0 || secs > maxNumericDate {
		return time.Time{}, true, fmt.Errorf("%w: claim %q value %v is out of range", ErrMalformed, name, secs)
	}
	intPart, frac := math.Modf(secs)
	return time.Unix(int64(intPart), int64(frac*1e9)).UTC(), true, nil
}

// StringClaim reads a string claim. It returns ok=false and no error when the claim is
// absent, and an error wrapping ErrMalformed when it is present but not a string
// (including null). An empty string is returned as is; callers decide whether it counts.
func StringClaim(claims map[string]any, name string) (string, bool, error) {
	s, ok, err := stringMember(claims, name)
	if err != nil {
		return "", true, fmt.Errorf("%w: claim %s", ErrMalformed, err)
	}
	return s, ok, nil
}

// singleStringAllowed lists claims whose registered definition allows a lone string in
// place of an array of strings. RFC 7519 §4.1.3 does for aud; RFC 7591 metadata such as
// redirect_uris, grant_types and response_types must be arrays, so they are not here.
var singleStringAllowed = map[string]bool{"aud": true}

// StringsClaim reads a claim that is an array of strings. It returns ok=false and no
// error when the claim is absent. Only for claims whose definition allows it (aud) is a
// single string accepted and returned as a one-element list; everywhere else a string,
// null, or an array holding a non-string is an error wrapping ErrMalformed. An empty
// array is returned as an empty, non-nil slice.
func StringsClaim(claims map[string]any, name string) ([]string, bool, error) {
	v, ok := claims[name]
	if !ok {
		return nil, false, nil
	}
	switch t := v.(type) {
	case string:
		if singleStringAllowed[name] {
			return []string{t}, true, nil
		}
	case []string:
		return slices.Clone(t), true, nil
	case []any:
		out := make([]string, 0, len(t))
		for i, e := range t {
			s, isString := e.(string)
			if !isString {
				return nil, true, fmt.Errorf("%w: claim %q element %d must be a string, got %s", ErrMalformed, name, i, JSONType(e))
			}
			out = append(out, s)
		}
		return out, true, nil
	}
	return nil, true, fmt.Errorf("%w: claim %q must be an array of strings, got %s", ErrMalformed, name, JSONType(v))
}

// AudienceContains reports whether the aud claim (a string or an array of strings)
// contains at least one of want, compared exactly (case-sensitive, RFC 7519 §4.1.3).
// An absent aud yields false and no error; a malformed aud yields an error wrapping
// ErrMalformed.
func AudienceContains(claims map[string]any, want []string) (bool, error) {
	aud, ok, err := StringsClaim(claims, "aud")
	if err != nil || !ok {
		return false, err
	}
	for _, a := range aud {
		// An empty audience names nobody; never let a blank configured value match it.
		if a != "" && slices.Contains(want, a) {
			return true, nil
		}
	}
	return false, nil
}

// JSONType names the JSON type of a decoded value ("a string", "an array", ...), for error
// descriptions that tell a client what it sent instead.
func JSONType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, float32, int, int64, int32, uint, uint64, uint32:
		return "a number"
	case []any, []string:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
