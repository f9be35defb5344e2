package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// decisionOfValue is ParseDecision(ast.JSON(v)) for the decisions a policy usually returns
// (a boolean, or an object of allow, error, error_description, metadata and reasons with
// values of their types), read from the OPA value without building the Go value first; ok
// is false for anything else (another key, a value of another type), which the caller
// converts and gives to ParseDecision. TestDecisionOfValueIsParseDecision holds the two equal.
func decisionOfValue(v ast.Value) (d *Decision, ok bool) {
	switch v := v.(type) {
	case ast.Boolean:
		d = &Decision{Allow: bool(v)}
		d.normalize()
		return d, true
	case ast.Object:
		d = &Decision{}
		allow := false
		ok = v.Until(func(k, f *ast.Term) bool {
			key, isString := k.Value.(ast.String)
			if !isString {
				return true
			}
			switch key {
			case "allow":
				b, isBool := f.Value.(ast.Boolean)
				d.Allow, allow = bool(b), isBool
				return !isBool
			case "error":
				s, isString := f.Value.(ast.String)
				d.Error = string(s)
				return !isString
			case "error_description":
				s, isString := f.Value.(ast.String)
				d.ErrorDescription = string(s)
				return !isString
			case "metadata":
				m, isObject := f.Value.(ast.Object)
				if !isObject {
					return true
				}
				if m.Len() > 0 {
					j, err := ast.JSON(m)
					md, isMap := j.(map[string]any)
					if err != nil || !isMap {
						return true
					}
					d.Metadata = md
				}
				return false
			case "reasons":
				list, isArray := f.Value.(*ast.Array)
				if !isArray {
					return true
				}
				for i := range list.Len() {
					s, isString := list.Elem(i).Value.(ast.String)
					if !isString {
						return true
					}
					d.Reasons = append(d.Reasons, string(s))
				}
				return false
			}
			return true
		}) == false
		if !ok || !allow {
			return nil, false
		}
		d.normalize()
		return d, true
	}
	return nil, false
}
