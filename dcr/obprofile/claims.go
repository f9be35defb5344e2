package obprofile

import (
	"strconv"
	"unicode/utf8"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// quote quotes a client-supplied value for an error description, cut short so that a huge
// value cannot blow up a response or a log line.
func quote(s string) string {
	const max = 128
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}

// stringClaim returns md[name] as a string and whether it is present.
func stringClaim(md map[string]any, name string) (string, bool, *dcr.Error) {
	v, ok := md[name]
	if !ok {
		return "", false, nil
	}
	s, isString := v.(string)
	if !isString {
		return "", true, dcr.BadMetadata("%s must be a string, not %s", name, jose.JSONType(v))
	}
	return s, true, nil
}

// stringArrayClaim returns md[name] as a list of strings and whether it is present. A lone
// string is refused: RFC 7591 defines these claims as arrays, and accepting both would make
// "a b" ambiguous.
func stringArrayClaim(md map[string]any, name string) ([]string, bool, *dcr.Error) {
	v, ok := md[name]
	if !ok {
		return nil, false, nil
	}
	switch a := v.(type) {
	case []string:
		return a, true, nil
	case []any:
		out := make([]string, len(a))
		for i, e := range a {
			s, isString := e.(string)
			if !isString {
				return nil, true, dcr.BadMetadata("%s[%d] must be a string, not %s", name, i, jose.JSONType(e))
			}
			out[i] = s
		}
		return out, true, nil
	}
	return nil, true, dcr.BadMetadata("%s must be an array of strings, not %s", name, jose.JSONType(v))
}

// boolClaim returns md[name] as a bool and whether it is present.
func boolClaim(md map[string]any, name string) (bool, bool, *dcr.Error) {
	v, ok := md[name]
	if !ok {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, true, dcr.BadMetadata("%s must be a boolean, not %s", name, jose.JSONType(v))
	}
	return b, true, nil
}

// authMethod returns the token_endpoint_auth_method already checked by its rule ("" if it
// is missing or not a string, so later rules stay safe when run on their own).
func authMethod(md map[string]any) string {
	s, _ := md["token_endpoint_auth_method"].(string)
	return s
}

// grantTypes returns the grant_types as normalized by their rule (or as sent, when a rule
// runs on its own), ignoring anything that is not a list of strings.
func grantTypes(md map[string]any) []string {
	gts, ok, err := stringArrayClaim(md, "grant_types")
	if !ok || err != nil {
		return []string{GrantAuthorizationCode}
	}
	return gts
}
