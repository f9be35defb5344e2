package planeval

import (
	"context"
	"encoding/json"
	"fmt"
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

// captureTarget is a rego target whose PrepareForEval hands the planned *ir.Policy to the
// test, so that one plan is given to the compiled evaluator and to the reference.
const captureTarget = "planeval-test-capture"

type captureKey struct{}

type capturePlugin struct{}

func init() { rego.RegisterPlugin(captureTarget, capturePlugin{}) }

func (capturePlugin) IsTarget(t string) bool { return t == captureTarget }

func (capturePlugin) PrepareForEval(ctx context.Context, p *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	*ctx.Value(captureKey{}).(**ir.Policy) = p
	return refusal{}, nil
}

// planOf plans query over mods and data.
func planOf(t testing.TB, query string, mods map[string]string, data map[string]any) *ir.Policy {
	t.Helper()
	opts := []func(*rego.Rego){rego.Query(query), rego.Store(inmem.NewFromObject(data)), rego.StrictBuiltinErrors(true), rego.SetRegoVersion(ast.RegoV1), rego.Target(captureTarget)}
	for n, m := range mods {
		opts = append(opts, rego.Module(n, m))
	}
	var p *ir.Policy
	if _, err := rego.New(opts...).PrepareForEval(context.WithValue(context.Background(), captureKey{}, &p)); err != nil {
		t.Fatal(err)
	}
	return p
}

// outcome is what one evaluation gave: its results, its error or its panic, as text.
func outcome(eval func() ([]ast.Value, error)) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("panic: %v", r)
		}
	}()
	out, err := eval()
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprint(out)
}

// sameAsReference prepares p both ways and returns a func that fails its t when an input's
// outcome differs between the compiled evaluator and the reference.
func sameAsReference(t testing.TB, name string, p *ir.Policy, data map[string]any) func(t testing.TB, input ast.Value) {
	t.Helper()
	prog, err := Prepare(p)
	ref, refErr := refPrepare(p)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("%s: Prepare %v, reference %v", name, err, refErr)
	}
	if err != nil {
		return func(testing.TB, ast.Value) {}
	}
	dv, err := ast.InterfaceToValue(data)
	if err != nil {
		t.Fatal(err)
	}
	return func(t testing.TB, input ast.Value) {
		t.Helper()
		got := outcome(func() ([]ast.Value, error) { return prog.Eval(context.Background(), input, dv) })
		want := outcome(func() ([]ast.Value, error) { return ref.Eval(context.Background(), input, dv) })
		if testing.Verbose() {
			t.Logf("%s, input %v: %s", name, input, got)
		}
		if got != want {
			t.Fatalf("%s, input %v:\ncompiled  %s\nreference %s", name, input, got, want)
		}
	}
}

// referenceInputs are the differential inputs of the default set, and shapes that make
// its builtins fail.
var referenceInputs = []string{
	`{}`, `null`, `"x"`, `[1, 2]`,
	`{"operation": "register"}`,
	`{"operation": "register", "denied": {"org": true}}`,
	`{"operation": "update", "denied": {"software": true}, "software_statement": {"claims": {"software_id": "s1", "org_id": "o1"}}}`,
	`{"operation": "register", "software_statement": {"claims": {"org_status": "Revoked", "software_mode": "Live"}}}`,
	`{"operation": "register", "software_statement": {"claims": {"org_status": "Active", "software_mode": "Test", "software_roles": ["AISP"]}}, "registrations_for_software": 3}`,
	`{"operation": "register", "registrations_for_software": 1000000, "software_statement": {"claims": {"org_id": "o", "software_id": "s"}}}`,
	`{"operation": "delete", "existing_registration": {"org_id": "o", "software_id": "s"}, "denied": {"org": true, "software": true}}`,
	`{"operation": 7, "denied": {"org": "yes"}, "software_statement": []}`,
	`{"operation": 7, "denied": [], "software_statement": {"claims": "x"}}`,
	`{"operation": "register", "metadata": {"redirect_uris": ["https://evil.example/cb"], "scope": "openid accounts payments admin"}}`,
	`{"operation": "register", "metadata": "wrong type", "software_statement": {"claims": 3}}`,
	`{"operation": "register", "software_statement": {"claims": {"software_environment": "sandbox", "software_roles": ["AISP"], "org_status": "Ünknown", "software_mode": 1.5}}}`,
}

func mustValue(t testing.TB, raw string) ast.Value {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	value, err := ast.InterfaceToValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// The compiled evaluator decides the default set with its examples exactly as the
// reference does, on inputs that allow, deny, err and are undefined.
func TestCompiledAsReferenceDefaultSet(t *testing.T) {
	mods, data := defaultSet(t)
	check := sameAsReference(t, "default set", planOf(t, "data.dcr.decision", mods, data), data)
	names, _ := fs.Glob(policies.FS, "examples/*.rego")
	for _, n := range names {
		if !strings.HasSuffix(n, "_test.rego") {
			b, _ := fs.ReadFile(policies.FS, n)
			mods[n] = string(b)
		}
	}
	checkEx := sameAsReference(t, "with examples", planOf(t, "data.dcr.decision", mods, data), data)
	for _, raw := range referenceInputs {
		check(t, mustValue(t, raw))
		checkEx(t, mustValue(t, raw))
	}
}

// The Rego unit tests (which use `with`) give the compiled evaluator and the reference the
// same results.
func TestCompiledAsReferenceRegoUnitTests(t *testing.T) {
	mods, data := defaultSet(t)
	all, _ := fs.Glob(policies.FS, "*.rego")
	ex, _ := fs.Glob(policies.FS, "examples/*.rego")
	for _, n := range append(all, ex...) {
		b, _ := fs.ReadFile(policies.FS, n)
		mods[n] = string(b)
	}
	pkgRe := regexp.MustCompile(`(?m)^package (\S+)`)
	testRe := regexp.MustCompile(`(?m)^(test_\w+)`)
	ran := 0
	for _, n := range append(all, ex...) {
		if !strings.HasSuffix(n, "_test.rego") {
			continue
		}
		pkg := pkgRe.FindStringSubmatch(mods[n])[1]
		for _, m := range testRe.FindAllStringSubmatch(mods[n], -1) {
			q := "data." + pkg + "." + m[1]
			sameAsReference(t, q, planOf(t, q, mods, data), data)(t, ast.NewObject())
			ran++
		}
	}
	if ran < 50 {
		t.Errorf("only %d Rego tests ran", ran)
	}
}

// Small policies that reach the statements the default set does not: conflicts, object
// and set scans, array appends, merges, not, a builtin error, numbers from text.
func TestCompiledAsReferenceStatements(t *testing.T) {
	for name, src := range map[string]string{
		"conflict":   "package p\nx := 1 if input.a\nx := 2 if input.b",
		"regex":      "package p\nx := regex.match(input.re, \"a\")",
		"scans":      "package p\nx := {k: v | some k, v in input.o}\ny := {v | some v in input.s}\nz := [v | some v in input.a]",
		"partial":    "package p\nx[k] := v if { some k, v in input.o }\ny contains v if { some v in input.a; v > 1 }",
		"merge":      "package p\na.b := 1 if input.a\na.c := 2 if input.b\nx := a",
		"not":        "package p\nx if not input.a\ny if { not input.a == 1; count(input.s) > 1 }",
		"numbers":    "package p\nx := 1.5e3 + input.n\ny := input.n * 12345678901234567890",
		"count":      "package p\nx := [count(input.s), count(input.a), count(input.o)]",
		"objectonce": "package p\nx := {k: 1 | some k in input.a}",
		"array":      "package p\nx if { input.a == [1, 2, 3] }\ny if { [a, b] := input.a; a < b }",
	} {
		mods := map[string]string{"p.rego": src}
		for _, q := range []string{"data.p.x", "data.p.y", "data.p.z", "data.p"} {
			check := sameAsReference(t, name+" "+q, planOf(t, q, mods, map[string]any{}), map[string]any{})
			for _, raw := range []string{
				`{}`, `{"a": true}`, `{"a": true, "b": true}`, `{"re": "("}`, `{"re": "a"}`,
				`{"o": {"k": 1, "j": [2]}, "s": "héllo", "a": [1, 2, 3], "n": 2}`,
				`{"o": [], "s": [1, 1, 2], "a": {"x": 1}, "n": "x"}`, `{"a": [3, 2]}`, `{"a": ["k", "k"]}`,
			} {
				check(t, mustValue(t, raw))
			}
		}
	}
}

// A read of data below a package that has both base documents and rules: the planner's
// blocks with breaks out of scans.
func TestCompiledAsReferenceMixedData(t *testing.T) {
	mods := map[string]string{
		"x.rego": "package x.r\nv := 3\nw := input.w",
		"p.rego": "package p\nx := [v | some k; v := data.x[k].v]\ny := data.x\nz := {k | data.x[k]}",
	}
	data := map[string]any{"x": map[string]any{"a": map[string]any{"v": 1}, "b": map[string]any{"v": 2}, "c": "s"}}
	for _, q := range []string{"data.p.x", "data.p.y", "data.p.z"} {
		check := sameAsReference(t, q, planOf(t, q, mods, data), data)
		for _, raw := range []string{`{}`, `{"w": 1}`} {
			check(t, mustValue(t, raw))
		}
	}
}

// FuzzCompiledAsReference decides random JSON inputs with the default set and its examples
// through the compiled evaluator and the reference: outcomes must be the same, errors and
// panics included.
//
//	go test -run '^$' -fuzz FuzzCompiledAsReference -fuzztime 1m ./plugins/policy/planeval
func FuzzCompiledAsReference(f *testing.F) {
	for _, raw := range referenceInputs {
		f.Add([]byte(raw))
	}
	mods, data := defaultSet(f)
	names, _ := fs.Glob(policies.FS, "examples/*.rego")
	for _, n := range names {
		if !strings.HasSuffix(n, "_test.rego") {
			b, _ := fs.ReadFile(policies.FS, n)
			mods[n] = string(b)
		}
	}
	check := sameAsReference(f, "default set", planOf(f, "data.dcr.decision", mods, data), data)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in any
		if json.Unmarshal(raw, &in) != nil {
			return
		}
		value, err := ast.InterfaceToValue(in)
		if err != nil {
			return
		}
		check(t, value)
	})
}

// Plans written by hand, for the control flow the planner rarely emits: a Break of every
// depth out of a Scan, a Not, a With and a Block, and a ReturnLocal from inside a Scan.
func TestCompiledAsReferenceBreaks(t *testing.T) {
	const arr, k, v, marker, obj, fres = 3, 4, 5, 6, 7, 8
	str := func(i int) ir.Operand { return ir.Operand{Value: ir.StringIndex(i)} }
	loc := func(l ir.Local) ir.Operand { return ir.Operand{Value: l} }
	// wrap puts body in the statement named by kind.
	wrap := func(kind string, body *ir.Block) ir.Stmt {
		switch kind {
		case "scan":
			return &ir.ScanStmt{Source: ir.Input, Key: k, Value: v, Block: body}
		case "not":
			return &ir.NotStmt{Block: body}
		case "with":
			return &ir.WithStmt{Local: ir.Input, Path: []int{1}, Value: str(0), Block: body}
		}
		return &ir.BlockStmt{Blocks: []*ir.Block{body, {Stmts: []ir.Stmt{&ir.AssignVarStmt{Source: str(1), Target: marker}, &ir.ArrayAppendStmt{Value: loc(marker), Array: arr}}}}}
	}
	for _, kind := range []string{"scan", "not", "with", "block"} {
		for n := range 4 {
			body := &ir.Block{Stmts: []ir.Stmt{
				&ir.ArrayAppendStmt{Value: loc(v), Array: arr},
				&ir.EqualStmt{A: loc(v), B: str(0)},
				&ir.BreakStmt{Index: uint32(n)},
			}}
			if kind != "scan" {
				body.Stmts = append([]ir.Stmt{&ir.DotStmt{Source: loc(ir.Input), Key: str(1), Target: v}}, body.Stmts...)
			}
			p := &ir.Policy{
				Static: &ir.Static{Strings: []*ir.StringConst{{Value: "stop"}, {Value: "k"}, {Value: "x"}}},
				Plans: &ir.Plans{Plans: []*ir.Plan{{Name: "p", Blocks: []*ir.Block{{Stmts: []ir.Stmt{
					&ir.MakeArrayStmt{Target: arr},
					&ir.BlockStmt{Blocks: []*ir.Block{{Stmts: []ir.Stmt{
						&ir.BlockStmt{Blocks: []*ir.Block{{Stmts: []ir.Stmt{
							wrap(kind, body),
							&ir.MakeNullStmt{Target: marker},
							&ir.ArrayAppendStmt{Value: loc(marker), Array: arr},
						}}}},
						&ir.MakeNumberIntStmt{Value: 1, Target: marker},
						&ir.ArrayAppendStmt{Value: loc(marker), Array: arr},
					}}}},
					&ir.MakeObjectStmt{Target: obj},
					&ir.ObjectInsertStmt{Key: str(2), Value: loc(arr), Object: obj},
					&ir.ResultSetAddStmt{Value: obj},
				}}}}}},
				Funcs: &ir.Funcs{},
			}
			check := sameAsReference(t, fmt.Sprintf("%s break %d", kind, n), p, map[string]any{})
			for _, raw := range []string{`["a", "stop", "b"]`, `["a", "b"]`, `{"j": "a", "k": "stop"}`, `{"k": "a"}`, `[]`} {
				check(t, mustValue(t, raw))
			}
			if kind == "scan" {
				check(t, ast.NewSet(ast.StringTerm("a"), ast.StringTerm("stop"), ast.StringTerm("z")))
			}
		}
	}
	// f(input, data) scans input and returns the first element that is not "a"; the plan
	// calls it twice (the second from the memo).
	f := &ir.Func{Name: "f", Params: []ir.Local{0, 1}, Return: fres, Blocks: []*ir.Block{
		{Stmts: []ir.Stmt{&ir.ScanStmt{Source: 0, Key: k, Value: v, Block: &ir.Block{Stmts: []ir.Stmt{
			&ir.NotEqualStmt{A: loc(v), B: str(0)},
			&ir.AssignVarStmt{Source: loc(v), Target: fres},
			&ir.ReturnLocalStmt{Source: fres},
		}}}}},
		{Stmts: []ir.Stmt{&ir.AssignVarStmt{Source: str(1), Target: fres}, &ir.ReturnLocalStmt{Source: fres}}},
	}}
	p := &ir.Policy{
		Static: &ir.Static{Strings: []*ir.StringConst{{Value: "a"}, {Value: "none"}, {Value: "x"}}},
		Plans: &ir.Plans{Plans: []*ir.Plan{{Name: "p", Blocks: []*ir.Block{{Stmts: []ir.Stmt{
			&ir.CallStmt{Func: "f", Args: []ir.Operand{loc(0), loc(1)}, Result: arr},
			&ir.CallStmt{Func: "f", Args: []ir.Operand{loc(0), loc(1)}, Result: marker},
			&ir.EqualStmt{A: loc(arr), B: loc(marker)},
			&ir.MakeObjectStmt{Target: obj},
			&ir.ObjectInsertStmt{Key: str(2), Value: loc(arr), Object: obj},
			&ir.ResultSetAddStmt{Value: obj},
		}}}}}},
		Funcs: &ir.Funcs{Funcs: []*ir.Func{f}},
	}
	check := sameAsReference(t, "return from a scan", p, map[string]any{})
	for _, raw := range []string{`["a", "b", "c"]`, `["a"]`, `{"x": "a", "y": "q"}`, `3`} {
		check(t, mustValue(t, raw))
	}
}

// Evaluations in parallel, each with its state from the pool, give what they give alone.
func TestConcurrentEvaluations(t *testing.T) {
	mods, data := defaultSet(t)
	prog, err := Prepare(planOf(t, "data.dcr.decision", mods, data))
	if err != nil {
		t.Fatal(err)
	}
	dv, _ := ast.InterfaceToValue(data)
	inputs := make([]ast.Value, len(referenceInputs))
	want := make([]string, len(referenceInputs))
	for i, raw := range referenceInputs {
		inputs[i] = mustValue(t, raw)
		want[i] = outcome(func() ([]ast.Value, error) { return prog.Eval(context.Background(), inputs[i], dv) })
	}
	errs := make(chan string, 8)
	for g := range 8 {
		go func() {
			for n := range 200 {
				i := (g + n) % len(inputs)
				if got := outcome(func() ([]ast.Value, error) { return prog.Eval(context.Background(), inputs[i], dv) }); got != want[i] {
					errs <- fmt.Sprintf("input %v: %s, alone %s", inputs[i], got, want[i])
					return
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
}
