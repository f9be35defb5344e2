package planeval

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/dcrgate/dcrgate/policies"
)

func prepare(t *testing.T, query string, mods map[string]string, data map[string]any) *Holder {
	t.Helper()
	opts := []func(*rego.Rego){rego.Query(query), rego.Store(inmem.NewFromObject(data)), rego.StrictBuiltinErrors(true), rego.SetRegoVersion(ast.RegoV1), rego.Target(Target)}
	for n, m := range mods {
		opts = append(opts, rego.Module(n, m))
	}
	h := &Holder{}
	if _, err := rego.New(opts...).PrepareForEval(WithHolder(context.Background(), h)); err != nil {
		t.Fatal(err)
	}
	return h
}

// Same outcome class as topdown: a conflict and a builtin error are errors, an undefined
// decision has no result.
func TestErrorsAsTopdown(t *testing.T) {
	cases := map[string]struct{ src, input string }{
		"conflict":      {"package p\nx := 1 if input.a\nx := 2 if input.b", `{"a": true, "b": true}`},
		"builtin error": {"package p\nx := regex.match(input.re, \"a\")", `{"re": "("}`},
		"undefined":     {"package p\nx := 1 if input.never", `{}`},
	}
	for name, c := range cases {
		eval := both(t, "data.p.x", map[string]string{"p.rego": c.src}, map[string]any{})
		var in any
		if err := json.Unmarshal([]byte(c.input), &in); err != nil {
			t.Fatal(err)
		}
		td, pe, tdErr, peErr := eval(in)
		if (tdErr == nil) != (peErr == nil) || (td == nil) != (pe == nil) {
			t.Errorf("%s: topdown %v %v, planeval %v %v", name, td, tdErr, pe, peErr)
		}
		if name != "undefined" && peErr == nil {
			t.Errorf("%s: want an error", name)
		}
		if name == "undefined" && (pe != nil || peErr != nil) {
			t.Errorf("undefined: got %v %v", pe, peErr)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	h := prepare(t, "data.p.x", map[string]string{"p.rego": "package p\nx := count([y | some y in input])"}, map[string]any{})
	if h.Err != nil {
		t.Fatal(h.Err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in, _ := ast.InterfaceToValue([]any{1, 2, 3})
	if _, err := h.Program.Eval(ctx, in, ast.NewObject()); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

// A builtin that is not a function of its arguments makes Prepare refuse the plan.
func TestRefusesNondeterministicBuiltins(t *testing.T) {
	for _, src := range []string{
		"package p\nx := http.send({\"method\": \"get\", \"url\": input.u})",
		"package p\nx := time.now_ns()",
		"package p\nx := opa.runtime()",
	} {
		if h := prepare(t, "data.p.x", map[string]string{"p.rego": src}, map[string]any{}); h.Err == nil {
			t.Errorf("%q: Prepare accepted it", src)
		}
	}
}

// The examples with the default set decide the same through both evaluators.
func TestExamplesDifferential(t *testing.T) {
	mods, data := defaultSet(t)
	names, _ := fs.Glob(policies.FS, "examples/*.rego")
	for _, n := range names {
		if !strings.HasSuffix(n, "_test.rego") {
			b, _ := fs.ReadFile(policies.FS, n)
			mods[n] = string(b)
		}
	}
	eval := both(t, "data.dcr.decision", mods, data)
	for _, in := range []any{
		map[string]any{},
		map[string]any{"operation": "register", "metadata": map[string]any{"redirect_uris": []any{"https://evil.example/cb"}, "scope": "openid accounts payments admin"}},
		map[string]any{"operation": "register", "software_statement": map[string]any{"claims": map[string]any{"software_environment": "sandbox", "software_roles": []any{"AISP"}}}},
		map[string]any{"operation": "register", "metadata": "wrong type", "software_statement": map[string]any{"claims": 3}},
	} {
		td, pe, tdErr, peErr := eval(in)
		if !equalJSON(td, pe) || (tdErr == nil) != (peErr == nil) {
			t.Errorf("input %v:\ntopdown  %v %v\nplaneval %v %v", in, td, tdErr, pe, peErr)
		}
	}
}

// The repository's Rego unit tests, planned one by one and run through the evaluator.
func TestRegoUnitTests(t *testing.T) {
	mods, data := defaultSet(t)
	all, _ := fs.Glob(policies.FS, "*.rego")
	ex, _ := fs.Glob(policies.FS, "examples/*.rego")
	pkgRe := regexp.MustCompile(`(?m)^package (\S+)`)
	testRe := regexp.MustCompile(`(?m)^(test_\w+)`)
	for _, n := range append(all, ex...) {
		b, _ := fs.ReadFile(policies.FS, n)
		mods[n] = string(b)
	}
	ran, refused := 0, 0
	for _, n := range append(all, ex...) {
		if !strings.HasSuffix(n, "_test.rego") {
			continue
		}
		src := mods[n]
		pkg := pkgRe.FindStringSubmatch(src)[1]
		seen := map[string]bool{}
		for _, m := range testRe.FindAllStringSubmatch(src, -1) {
			if seen[m[1]] {
				continue
			}
			seen[m[1]] = true
			q := "data." + pkg + "." + m[1]
			h := prepare(t, q, mods, data)
			if h.Err != nil {
				refused++
				t.Logf("%s: refused: %v", q, h.Err)
				continue
			}
			dv, _ := ast.InterfaceToValue(data)
			out, err := h.Program.Eval(context.Background(), ast.NewObject(), dv)
			if err != nil || len(out) != 1 {
				t.Errorf("%s: %v %v", q, out, err)
				continue
			}
			obj := out[0].(ast.Object)
			for _, k := range obj.Keys() {
				if obj.Get(k).Value.Compare(ast.Boolean(true)) != 0 {
					t.Errorf("%s = %v", q, obj.Get(k))
				}
			}
			ran++
		}
	}
	t.Logf("%d Rego tests passed through the plan, %d refused", ran, refused)
	if ran < 50 {
		t.Errorf("only %d Rego tests ran through the plan", ran)
	}
}

// Rego's count of a string counts its runes. The plan calls the count builtin for it; the
// planner's LenStmt (which counts a string's bytes, as the wasm compiler's does) is only for
// arrays it unifies and relations' results, so its string case never decides a count.
func TestCountOfAStringIsRunes(t *testing.T) {
	mods := map[string]string{"p.rego": "package p\nx := count(input.s)\ny if { [a, b] := input.a; a != b }"}
	eval := both(t, "data.p.x", mods, map[string]any{})
	td, pe, tdErr, peErr := eval(map[string]any{"s": "héllo wörld"})
	if tdErr != nil || peErr != nil || !equalJSON(td, pe) || !equalJSON(pe, 11) {
		t.Fatalf("count(\"héllo wörld\"): topdown %v %v, plan %v %v; want 11", td, tdErr, pe, peErr)
	}
	var lens, counts int
	var walk func(b *ir.Block)
	walk = func(b *ir.Block) {
		for _, s := range b.Stmts {
			switch s := s.(type) {
			case *ir.LenStmt:
				lens++
			case *ir.CallStmt:
				if s.Func == "count" {
					counts++
				}
			}
			for _, n := range nestedBlocks(s) {
				walk(n)
			}
		}
	}
	for _, q := range []string{"data.p.x", "data.p.y"} {
		lens, counts = 0, 0
		p := planOf(t, q, mods, map[string]any{})
		for _, f := range p.Funcs.Funcs {
			for _, b := range f.Blocks {
				walk(b)
			}
		}
		switch {
		case q == "data.p.x" && (counts != 1 || lens != 0):
			t.Errorf("%s: %d count calls and %d LenStmts, want the builtin alone", q, counts, lens)
		case q == "data.p.y" && lens == 0:
			t.Errorf("%s: no LenStmt for the array it unifies", q)
		}
	}
}

// unknownStmt is a statement kind the evaluator does not know (a future planner's).
type unknownStmt struct{ ir.NopStmt }

// unknownVal is an operand kind it does not know.
type unknownVal struct{ ir.Bool }

// What the evaluator does not know is refused when the plan is compiled, deep in a func or
// never reached, so that the Engine falls back to topdown before any decision.
func TestPrepareRefusesWhatItDoesNotKnow(t *testing.T) {
	unreached := func(s ir.Stmt) *ir.Policy {
		return &ir.Policy{
			Static: &ir.Static{Strings: []*ir.StringConst{{Value: "x"}}},
			Plans: &ir.Plans{Plans: []*ir.Plan{{Name: "p", Blocks: []*ir.Block{{Stmts: []ir.Stmt{
				&ir.BreakStmt{Index: 0},
				&ir.CallStmt{Func: "f", Args: []ir.Operand{{Value: ir.Local(0)}, {Value: ir.Local(1)}}, Result: 2},
			}}}}}},
			Funcs: &ir.Funcs{Funcs: []*ir.Func{{Name: "f", Params: []ir.Local{0, 1}, Return: 2, Blocks: []*ir.Block{
				{Stmts: []ir.Stmt{&ir.NotStmt{Block: &ir.Block{Stmts: []ir.Stmt{s}}}}},
			}}}},
		}
	}
	for name, s := range map[string]ir.Stmt{
		"statement":       &unknownStmt{},
		"operand":         &ir.AssignVarStmt{Source: ir.Operand{Value: unknownVal{}}, Target: 3},
		"dynamic call":    &ir.CallDynamicStmt{Args: []ir.Local{0, 1}, Result: 3},
		"unknown func":    &ir.CallStmt{Func: "g", Result: 3},
		"string constant": &ir.DotStmt{Source: ir.Operand{Value: ir.Local(0)}, Key: ir.Operand{Value: ir.StringIndex(7)}, Target: 3},
		"arity":           &ir.CallStmt{Func: "f", Args: []ir.Operand{{Value: ir.Local(0)}}, Result: 3},
	} {
		if _, err := Prepare(unreached(s)); err == nil {
			t.Errorf("%s: Prepare accepted it", name)
		}
	}
	if _, err := Prepare(unreached(&ir.NopStmt{})); err != nil {
		t.Errorf("a known statement: %v", err)
	}
}
