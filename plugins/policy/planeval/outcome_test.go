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
