package planeval

import (
	"context"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/dcrgate/dcrgate/policies"
)

// defaultSet is the embedded default policy set (modules without tests, and data.json).
func defaultSet(t testing.TB) (map[string]string, map[string]any) {
	t.Helper()
	mods := map[string]string{}
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.rego") {
			continue
		}
		b, _ := fs.ReadFile(policies.FS, n)
		mods[n] = string(b)
	}
	raw, err := fs.ReadFile(policies.FS, policies.DataFile)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := util.UnmarshalJSON(raw, &data); err != nil {
		t.Fatal(err)
	}
	return mods, data
}

// both prepares query over mods and data with topdown and with the planner, and returns a
// func evaluating an input both ways.
func both(t testing.TB, query string, mods map[string]string, data map[string]any) func(input any) (td, pe any, tdErr, peErr error) {
	t.Helper()
	opts := []func(*rego.Rego){rego.Query(query), rego.Store(inmem.NewFromObject(data)), rego.StrictBuiltinErrors(true), rego.SetRegoVersion(ast.RegoV1)}
	for n, m := range mods {
		opts = append(opts, rego.Module(n, m))
	}
	td, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := &Holder{}
	if _, err := rego.New(append(opts, rego.Target(Target))...).PrepareForEval(WithHolder(context.Background(), h)); err != nil {
		t.Fatal(err)
	}
	if h.Err != nil {
		t.Fatal(h.Err)
	}
	dv, err := ast.InterfaceToValue(data)
	if err != nil {
		t.Fatal(err)
	}
	return func(input any) (any, any, error, error) {
		iv, err := ast.InterfaceToValue(input)
		if err != nil {
			t.Fatal(err)
		}
		var tdv, pev any
		rs, tdErr := td.Eval(context.Background(), rego.EvalParsedInput(iv))
		if tdErr == nil && len(rs) > 0 {
			tdv = rs[0].Expressions[0].Value
		}
		out, peErr := h.Program.Eval(context.Background(), iv, dv)
		if peErr == nil && len(out) > 0 {
			// A result is the object of the query's variables; the plan's only one is the value.
			obj := out[0].(ast.Object)
			for _, k := range obj.Keys() {
				pev, _ = ast.JSON(obj.Get(k).Value)
			}
		}
		return tdv, pev, tdErr, peErr
	}
}

func TestDefaultSetDifferential(t *testing.T) {
	mods, data := defaultSet(t)
	eval := both(t, "data.dcr.decision", mods, data)
	inputs := []string{
		`{}`, `null`, `"x"`,
		`{"operation": "register"}`,
		`{"operation": "register", "denied": {"org": true}}`,
		`{"operation": "update", "denied": {"software": true}, "software_statement": {"claims": {"software_id": "s1", "org_id": "o1"}}}`,
		`{"operation": "register", "software_statement": {"claims": {"org_status": "Revoked", "software_mode": "Live"}}}`,
		`{"operation": "register", "software_statement": {"claims": {"org_status": "Active", "software_mode": "Test", "software_roles": ["AISP"]}}, "registrations": 3}`,
		`{"operation": "register", "registrations": 1000000, "software_statement": {"claims": {"org_id": "o"}}}`,
		`{"operation": "delete", "existing_registration": {"org_id": "o", "software_id": "s"}, "denied": {"org": true, "software": true}}`,
		`{"operation": 7, "denied": {"org": "yes"}, "software_statement": []}`,
	}
	seen := map[string]bool{}
	for _, in := range inputs {
		var v any
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatal(err)
		}
		td, pe, tdErr, peErr := eval(v)
		tj, _ := json.Marshal(td)
		pj, _ := json.Marshal(pe)
		if string(tj) != string(pj) || (tdErr == nil) != (peErr == nil) {
			t.Errorf("input %s:\ntopdown  %s %v\nplaneval %s %v", in, tj, tdErr, pj, peErr)
		}
		t.Logf("%s -> %s", in, pj)
		if m, ok := pe.(map[string]any); ok {
			seen[string(must(json.Marshal(m["allow"])))] = true
		}
	}
	if !seen["true"] || !seen["false"] {
		t.Errorf("the inputs must both allow and deny through the plan; saw %v", seen)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func equalJSON(a, b any) bool {
	return string(must(json.Marshal(a))) == string(must(json.Marshal(b)))
}
