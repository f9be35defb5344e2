package policy

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// parsed is ParseDecision(ast.JSON(v)), what Decide read before decisionOfValue, as text.
func parsed(v ast.Value) string {
	j, err := ast.JSON(v)
	if err != nil {
		return "conversion error: " + err.Error()
	}
	d, err := ParseDecision(j)
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%#v", *d)
}

// checkDecisionOfValue fails t when decisionOfValue reads v and its decision is not
// ParseDecision's; it reports whether it read it.
func checkDecisionOfValue(t *testing.T, v ast.Value) bool {
	t.Helper()
	d, ok := decisionOfValue(v)
	if !ok {
		return false
	}
	if got, want := fmt.Sprintf("%#v", *d), parsed(v); got != want {
		t.Fatalf("decision %v:\nread   %s\nparsed %s", v, got, want)
	}
	return true
}

var decisionValues = []string{
	`true`, `false`,
	`{"allow": true, "metadata": {}, "reasons": []}`,
	`{"allow": true, "metadata": {"scope": "openid", "grant_types": ["client_credentials"], "n": 1.50, "x": null}, "reasons": []}`,
	`{"allow": true, "error": "invalid_redirect_uri", "error_description": "ignored on allow"}`,
	`{"allow": false, "error": "unapproved_software_statement", "error_description": "org_status \"Revoked\" is not accepted", "reasons": ["org_status: org_status \"Revoked\" is not accepted", "struck_off: x"]}`,
	`{"allow": false, "error": "no_such_code", "error_description": "  "}`,
	`{"allow": false, "error": "", "error_description": ""}`,
	`{"allow": false, "metadata": {"scope": "openid"}}`,
	`{"allow": false}`, `{"allow": true}`,
	`{"allow": true, "metadata": {}}`, `{"allow": true, "reasons": []}`,
	// Shapes decisionOfValue leaves to ParseDecision.
	`{"allow": "yes"}`, `{}`, `{"error": "x"}`, `{"allow": true, "note": "the author's"}`,
	`{"allow": false, "reasons": ["a", 1, {"b": 2}]}`, `{"allow": false, "error": 3}`,
	`{"allow": false, "error_description": []}`, `{"allow": true, "metadata": []}`,
	`{"allow": true, "reasons": "r"}`, `null`, `3`, `"allow"`, `[true]`,
}

func mustDecisionValue(t testing.TB, raw string) ast.Value {
	t.Helper()
	var x any
	if err := json.Unmarshal([]byte(raw), &x); err != nil {
		t.Fatal(err)
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDecisionOfValueIsParseDecision: where decisionOfValue reads a decision it is the one
// ParseDecision makes of the value's JSON, and it reads the default set's shapes; sets,
// numbers as keys and unknown members are left to ParseDecision.
func TestDecisionOfValueIsParseDecision(t *testing.T) {
	read := 0
	for _, raw := range decisionValues {
		if checkDecisionOfValue(t, mustDecisionValue(t, raw)) {
			read++
		}
	}
	if read < 13 {
		t.Errorf("decisionOfValue read %d of the usual decisions, want 13", read)
	}
	for _, v := range []ast.Value{
		ast.NewObject(ast.Item(ast.StringTerm("allow"), ast.BooleanTerm(false)), ast.Item(ast.StringTerm("reasons"), ast.SetTerm(ast.StringTerm("b"), ast.StringTerm("a")))),
		ast.NewObject(ast.Item(ast.StringTerm("allow"), ast.BooleanTerm(true)), ast.Item(ast.IntNumberTerm(1), ast.StringTerm("x"))),
		ast.NewSet(ast.BooleanTerm(true)),
	} {
		if checkDecisionOfValue(t, v) {
			t.Errorf("decisionOfValue read %v, which is ParseDecision's to read", v)
		}
	}
	// Metadata is converted as ast.JSON converts it, keys that are not strings included.
	if !checkDecisionOfValue(t, ast.NewObject(ast.Item(ast.StringTerm("allow"), ast.BooleanTerm(true)), ast.Item(ast.StringTerm("metadata"), ast.ObjectTerm(ast.Item(ast.IntNumberTerm(1), ast.SetTerm(ast.StringTerm("x"))))))) {
		t.Error("decisionOfValue left metadata with a number key")
	}
	// The default set's allow, through Decide, is read without ParseDecision.
	p, _ := newPolicy(t, &Policy{})
	out, err := p.engine.evalPlan(t.Context(), ast.MustParseTerm(`{"operation": "register"}`).Value, func(v ast.Value) (any, error) { return v, nil })
	if err != nil {
		t.Fatal(err)
	}
	if !checkDecisionOfValue(t, out.(ast.Value)) {
		t.Errorf("decisionOfValue does not read the default set's decision %v", out)
	}
}

// FuzzDecisionOfValue: on random JSON decisions, decisionOfValue reads what ParseDecision
// reads, or leaves it.
//
//	go test -run '^$' -fuzz FuzzDecisionOfValue -fuzztime 1m ./plugins/policy
func FuzzDecisionOfValue(f *testing.F) {
	for _, raw := range decisionValues {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var x any
		if json.Unmarshal(raw, &x) != nil {
			return
		}
		v, err := ast.InterfaceToValue(x)
		if err != nil {
			return
		}
		checkDecisionOfValue(t, v)
	})
}
