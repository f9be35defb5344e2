package planeval

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// BenchmarkDefaultSet decides one allowed registration with the default set through topdown
// and through the plan, side by side:
//
//	go test -run '^$' -bench DefaultSet -benchmem ./plugins/policy/planeval
func BenchmarkDefaultSet(b *testing.B) {
	mods, data := defaultSet(b)
	input, _ := ast.InterfaceToValue(map[string]any{
		"operation": "register", "registrations": 3,
		"software_statement": map[string]any{"claims": map[string]any{
			"org_status": "Active", "software_mode": "Test", "software_roles": []any{"AISP", "PISP"},
			"org_id": "o1", "software_id": "s1", "software_environment": "sandbox",
		}},
		"metadata": map[string]any{"redirect_uris": []any{"https://tpp.example/cb"}, "scope": "openid accounts"},
	})
	opts := []func(*rego.Rego){rego.Query("data.dcr.decision"), rego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))), rego.StrictBuiltinErrors(true), rego.SetRegoVersion(ast.RegoV1)}
	for n, m := range mods {
		opts = append(opts, rego.Module(n, m))
	}
	td, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	h := &Holder{}
	if _, err := rego.New(append(opts, rego.Target(Target))...).PrepareForEval(WithHolder(context.Background(), h)); err != nil || h.Err != nil {
		b.Fatal(err, h.Err)
	}
	dv, _ := ast.InterfaceToValue(data)
	b.Run("Topdown", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if rs, err := td.Eval(context.Background(), rego.EvalParsedInput(input)); err != nil || len(rs) != 1 {
				b.Fatal(rs, err)
			}
		}
	})
	b.Run("Plan", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if out, err := h.Program.Eval(context.Background(), input, dv); err != nil || len(out) != 1 {
				b.Fatal(out, err)
			}
		}
	})
}
