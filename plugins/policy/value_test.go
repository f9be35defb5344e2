package policy

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// jsonRoundTrip is the policy input as rego.EvalInput made it: through JSON, then to a value.
func jsonRoundTrip(t testing.TB, v any) ast.Value {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := util.UnmarshalJSON(b, &x); err != nil {
		t.Fatal(err)
	}
	value, err := ast.InterfaceToValue(x)
	if err != nil {
		t.Fatal(err)
	}
	return value
}

type stamp struct {
	At   time.Time `json:"at"`
	Note string    `json:"note,omitempty"`
}

// TestInputValueIsTheJSONRoundTrip: the input a policy sees is the one the JSON round trip
// gave, for a real registration's input and for every kind of value a field added to Input
// might have; the caller's maps are left as they were.
func TestInputValueIsTheJSONRoundTrip(t *testing.T) {
	odd := map[string]any{
		"nil_map":        map[string]any(nil),
		"nil_list":       []any(nil),
		"nil_strings":    []string(nil),
		"nil_pairs":      map[string]string(nil),
		"strings":        []string{"a", "b"},
		"pairs":          map[string]string{"k": "v"},
		"lists_by_name":  map[string][]string{"x": {"1"}, "none": nil},
		"records":        []map[string]any{{"a": 1}, nil},
		"struct":         stamp{At: time.Unix(1_700_000_000, 0).UTC()},
		"struct_pointer": &stamp{Note: "n"},
		"small_ints":     []int32{1, 2},
		"uint":           uint(7),
		"float":          1.5,
		"whole_float":    2.0,
		"int64":          int64(-3),
		"number":         json.Number("12345678901234567890"),
		"null":           nil,
		"nested":         map[string]any{"deep": map[string]any{"list": []any{map[string]any{"s": []string{"z"}}}}},
		"bytes":          []byte("hi"),
	}
	for name, in := range map[string]map[string]any{
		"registration": Input(realisticExchange(t).Exchange, 3),
		"every kind":   odd,
	} {
		before := jsonRoundTrip(t, in)
		got, err := InputValue(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Compare(before) != 0 {
			t.Errorf("%s: the input differs from its JSON round trip\n got %v\nwant %v", name, got, before)
		}
		if after := jsonRoundTrip(t, in); after.Compare(before) != 0 {
			t.Errorf("%s: InputValue changed the caller's input", name)
		}
	}
	if v, err := InputValue(ast.String("as is")); err != nil || v.Compare(ast.String("as is")) != 0 {
		t.Fatalf("an ast.Value is taken as it is: %v %v", v, err)
	}
	if _, err := InputValue(map[string]any{"ch": make(chan int)}); err == nil {
		t.Fatal("a value JSON cannot write was converted")
	}
}

// TestDecisionSameWithEitherInput: the default set decides a real registration alike from
// the value and from the Go input.
func TestDecisionSameWithEitherInput(t *testing.T) {
	p, _ := newPolicy(t, &Policy{})
	in := Input(realisticExchange(t).Exchange, 3)
	v, err := InputValue(in)
	if err != nil {
		t.Fatal(err)
	}
	fromValue, err := p.engine.Eval(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	fromMap, err := p.engine.Eval(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromValue)
	b, _ := json.Marshal(fromMap)
	if string(a) != string(b) || string(a) == "" {
		t.Fatalf("%s vs %s", a, b)
	}
	in["registrations_for_software"] = 10
	d, err := p.engine.Decide(context.Background(), in)
	if err != nil || d.Allow {
		t.Fatalf("the limit is not seen through the converted input: %+v %v", d, err)
	}
}
