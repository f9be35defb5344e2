// Package placeholder is the one way dcrgate's modules resolve Caddy placeholders in their
// configuration:
//
//   - Resolved once, at Provision, with Caddy's global replacer (caddy.NewReplacer: {env.*},
//     {file.*}, {system.*}, {time.*}). The resolved value is kept beside the configured one,
//     which stays as written (it is what the config and its logs show).
//   - Placeholders Caddy does not know are left as written (Replacer.ReplaceKnown), so a
//     literal brace in a secret or a key prefix survives.
//   - An option that was set but resolves to nothing (an unset environment variable) is a
//     config error where the module needs a value (NonEmpty): it would otherwise fall back
//     silently (to localhost, to anonymous registration). The error shows the option and the
//     placeholder text, never a value.
//
// A value that depends on the request (dcr_discovery's registration_endpoint, which may name
// {http.request.hostport}) is the one exception: it is resolved per request with the
// request's replacer, by the same rule for unknown placeholders.
package placeholder

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
)

// Resolve returns s with Caddy's global placeholders replaced; unknown ones stay as written.
func Resolve(s string) string {
	return caddy.NewReplacer().ReplaceKnown(s, "")
}

// NonEmpty resolves s, the value of option: "" stays "" (the option is not set); a value
// that resolves to "" is an error.
func NonEmpty(option, s string) (string, error) {
	v := Resolve(s)
	if s != "" && v == "" {
		// Everything in s was a placeholder, so the text is no secret.
		return "", fmt.Errorf("%s %q resolves to an empty value (an unset environment variable?)", option, s)
	}
	return v, nil
}
