package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// OverridableFields are the metadata fields a decision may override. Each override may only
// narrow what the OB profile produced (a subset of its scopes, grant types or response
// types): the spec rules in Go stay authoritative, and a policy can take away, never add.
// token_endpoint_auth_method is deliberately absent: switching it needs the claims that go
// with the other method (subject DN, signing alg), which only the TPP can supply; deny instead.
var OverridableFields = []string{"scope", "grant_types", "response_types"}

const (
	grantAuthorizationCode = "authorization_code"
	grantCIBA              = "urn:openid:params:grant-type:ciba"
)

// ApplyOverrides checks the decision's metadata overrides against md (the profile's
// metadata) and returns md with them applied, as a new map. An override of another field,
// of the wrong type, or that widens md is an error: the policy is wrong, and the gateway fails
// closed rather than register something the author did not mean.
func ApplyOverrides(md, overrides map[string]any) (map[string]any, error) {
	if len(overrides) == 0 {
		return md, nil
	}
	out := make(map[string]any, len(md))
	for k, v := range md {
		out[k] = v
	}
	for _, field := range slices.Sorted(maps.Keys(overrides)) {
		v := overrides[field]
		switch field {
		case "scope":
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("metadata override scope must be a string")
			}
			got := uniq(strings.Fields(s))
			if len(got) == 0 {
				return nil, fmt.Errorf("metadata override scope is empty")
			}
			have := strings.Fields(stringOf(md["scope"]))
			if extra := missingFrom(got, have); len(extra) > 0 {
				return nil, fmt.Errorf("metadata override scope adds %s, which the request was not allowed", strings.Join(extra, " "))
			}
			out["scope"] = strings.Join(got, " ")
		case "grant_types", "response_types":
			got, err := stringList(field, v)
			if err != nil {
				return nil, err
			}
			have, _ := stringList(field, md[field])
			if extra := missingFrom(got, have); len(extra) > 0 {
				return nil, fmt.Errorf("metadata override %s adds %s, which the request did not have", field, strings.Join(extra, ", "))
			}
			list := make([]any, len(got))
			for i, s := range got {
				list[i] = s
			}
			out[field] = list
		default:
			return nil, fmt.Errorf("metadata override of %q is not allowed (overridable: %s)", field, strings.Join(OverridableFields, ", "))
		}
	}
	// What the OB profile requires of the combination must still hold.
	grants, _ := stringList("grant_types", out["grant_types"])
	if _, has := out["response_types"]; has && !slices.Contains(grants, grantAuthorizationCode) {
		return nil, fmt.Errorf("metadata overrides leave response_types without the authorization_code grant")
	}
	if !slices.Contains(grants, grantCIBA) {
		for k := range out {
			if strings.HasPrefix(k, "backchannel_") {
				return nil, fmt.Errorf("metadata overrides remove the CIBA grant but leave %s", k)
			}
		}
	}
	return out, nil
}

func stringList(field string, v any) ([]string, error) {
	var list []string
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("metadata override %s must be an array of strings", field)
			}
			list = append(list, s)
		}
	case []string:
		list = v
	default:
		return nil, fmt.Errorf("metadata override %s must be an array of strings", field)
	}
	list = uniq(list)
	if len(list) == 0 {
		return nil, fmt.Errorf("metadata override %s is empty", field)
	}
	return list, nil
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

func uniq(list []string) []string {
	var out []string
	for _, s := range list {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// missingFrom returns the elements of got that are not in have.
func missingFrom(got, have []string) []string {
	var extra []string
	for _, s := range got {
		if !slices.Contains(have, s) {
			extra = append(extra, s)
		}
	}
	return extra
}
