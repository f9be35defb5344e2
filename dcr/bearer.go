package dcr

import (
	"net/http"
	"strings"
)

// BearerToken extracts an RFC 6750 bearer token from the Authorization header: "" when there is
// none, an invalid_token error when the header is malformed (another scheme, no token, a token
// with spaces, two headers). The scheme is case-insensitive.
func BearerToken(r *http.Request) (string, *Error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 {
		return "", InvalidToken("exactly one Authorization header is allowed")
	}
	scheme, token, found := strings.Cut(vals[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", InvalidToken("the Authorization header must be `Bearer <token>`")
	}
	return token, nil
}
