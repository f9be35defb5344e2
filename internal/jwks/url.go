package jwks

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

var (
	// ErrNotHTTPS: the URL is not https. Key sets decide who may sign, so they are never
	// fetched in clear text.
	ErrNotHTTPS = errors.New("jwks: URL is not https")
	// ErrHostNotAllowed: the URL's host is not in the allow-list.
	ErrHostNotAllowed = errors.New("jwks: host not allowed")
	// ErrInvalidURL: the URL cannot be parsed or has parts a key set URL must not have
	// (userinfo, fragment, no host).
	ErrInvalidURL = errors.New("jwks: invalid URL")
	// ErrFetch: the key set could not be fetched or was unusable and no cached copy
	// exists. Errors wrapping it also wrap jose.ErrKeyUnavailable.
	ErrFetch = errors.New("jwks: fetching key set failed")
)

// CheckURL checks that raw is an https URL whose host is allowed.
//
// Each allowedHosts entry is compared with the URL's host exactly as written, ignoring
// case: "example.com" matches https://example.com/ but not https://example.com:8443/
// (list "example.com:8443" for that) nor a subdomain. An entry "*.example.com" matches
// any subdomain (a.example.com, a.b.example.com) but not example.com itself. An empty
// allow-list allows nothing.
func CheckURL(raw string, allowedHosts []string) error {
	u, err := checkURLShape(raw)
	if err != nil {
		return err
	}
	for _, pattern := range allowedHosts {
		if hostMatches(u.Host, pattern) {
			return nil
		}
	}
	return fmt.Errorf("%w: host %q of %s is not in the allowed hosts", ErrHostNotAllowed, clip(u.Host), clip(raw))
}

// checkURLShape applies every CheckURL rule except the host allow-list.
func checkURLShape(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, clip(err.Error()))
	}
	switch {
	case u.Scheme != "https": // url.Parse lowercases the scheme
		return nil, fmt.Errorf("%w: %q has scheme %q", ErrNotHTTPS, clip(raw), clip(u.Scheme))
	case u.Opaque != "":
		return nil, fmt.Errorf("%w: %q is not a hierarchical URL", ErrInvalidURL, clip(raw))
	case u.User != nil:
		return nil, fmt.Errorf("%w: %q contains userinfo", ErrInvalidURL, clip(redactUser(u)))
	case u.Hostname() == "":
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidURL, clip(raw))
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%w: %q contains a fragment", ErrInvalidURL, clip(raw))
	}
	return u, nil
}

func hostMatches(host, pattern string) bool {
	if suffix, wildcard := strings.CutPrefix(pattern, "*."); wildcard {
		if suffix == "" || len(host) <= len(suffix)+1 {
			return false
		}
		dot := len(host) - len(suffix) - 1
		return host[dot] == '.' && strings.EqualFold(host[dot+1:], suffix)
	}
	return pattern != "" && strings.EqualFold(host, pattern)
}

// redactUser keeps credentials embedded in a URL out of error messages.
func redactUser(u *url.URL) string {
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

// clip shortens strings from untrusted documents (URLs, kids) quoted in errors, which
// end up in logs.
func clip(s string) string {
	const maxLen = 128
	if len(s) <= maxLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxLen], "") + "..."
}
