package policy

import (
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// InputValue converts a policy input (Input's map, or any JSON-shaped Go value) to the OPA
// value the prepared query evaluates, without the JSON round trip that rego.EvalInput makes
// of every input. A map becomes an ast.LazyObject: a member is converted when the policy
// first reads it, so a policy that reads six fields of the input converts those six, not the
// certificate, the headers and every claim.
//
// The result is what the JSON round trip gave: every value is first brought to a type
// ast.InterfaceToValue converts natively (map[string]any, []any, []string,
// map[string]string, strings, booleans, json.Number and Go numbers), a nil map or slice
// becomes null as encoding/json writes it, and a value of any other type (a struct, say) is
// round-tripped through JSON on its own: correct, only slower, so a field added to Input with
// such a type still works. The caller's maps are never modified (what has to change is
// copied).
func InputValue(v any) (ast.Value, error) {
	if value, ok := v.(ast.Value); ok {
		return value, nil
	}
	n, _, err := native(v)
	if err != nil {
		return nil, err
	}
	if m, ok := n.(map[string]any); ok {
		return ast.LazyObject(m), nil
	}
	return ast.InterfaceToValue(n)
}

// native returns v with every value brought to a type ast.InterfaceToValue converts without
// a JSON round trip (see InputValue), and whether anything had to change.
func native(v any) (any, bool, error) {
	// What is unchanged is returned as orig, not v: a slice put back in an interface would be
	// copied to the heap.
	orig := v
	switch v := v.(type) {
	case nil, string, bool, json.Number, int, int64, uint64, float64, ast.Value:
		return v, false, nil
	case map[string]any:
		if v == nil {
			return nil, true, nil
		}
		var out map[string]any // a copy, made at the first member that changes
		for k, e := range v {
			ne, changed, err := native(e)
			if err != nil {
				return nil, false, err
			}
			if changed {
				if out == nil {
					out = make(map[string]any, len(v))
					for k2, e2 := range v {
						out[k2] = e2
					}
				}
				out[k] = ne
			}
		}
		if out == nil {
			return orig, false, nil
		}
		return out, true, nil
	case []any:
		if v == nil {
			return nil, true, nil
		}
		var out []any
		for i, e := range v {
			ne, changed, err := native(e)
			if err != nil {
				return nil, false, err
			}
			if changed {
				if out == nil {
					out = append([]any(nil), v...)
				}
				out[i] = ne
			}
		}
		if out == nil {
			return orig, false, nil
		}
		return out, true, nil
	case []string:
		if v == nil {
			return nil, true, nil
		}
		return orig, false, nil
	case map[string]string:
		if v == nil {
			return nil, true, nil
		}
		return orig, false, nil
	default:
		// Anything else goes through JSON, as the whole input used to.
		x := any(v)
		if err := util.RoundTrip(&x); err != nil {
			return nil, false, fmt.Errorf("a %T value cannot be written as JSON: %w", v, err)
		}
		return x, true, nil
	}
}
