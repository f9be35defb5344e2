package policy

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The default set decides through its plan, and the plan's decision is topdown's for the
// realistic registration and for a denied one.
func TestEngineDecidesThroughThePlan(t *testing.T) {
	p, _ := newPolicy(t, &Policy{})
	e := p.engine
	if e.plan == nil || e.Fallback() != "" {
		t.Fatalf("the default set fell back to topdown: %s", e.Fallback())
	}
	x := realisticExchange(t)
	in := Input(x.Exchange, 3)
	denied := Input(x.Exchange, 3)
	denied["denied"] = map[string]any{"org": true}
	for _, input := range []map[string]any{in, denied} {
		viaPlan, err := e.Eval(context.Background(), input)
		if err != nil {
			t.Fatal(err)
		}
		plan := e.plan
		e.plan = nil
		viaTopdown, err := e.Eval(context.Background(), input)
		e.plan = plan
		if err != nil {
			t.Fatal(err)
		}
		if !equalJSONValues(viaPlan, viaTopdown) {
			t.Errorf("plan %v\ntopdown %v", viaPlan, viaTopdown)
		}
	}
}

// The input FuzzDefaultSet found, where the plan raises a builtin error in a body topdown's
// rule index skips: the Engine answers as topdown does (an allow), not with the plan's error.
func TestEngineAnswersAsTopdownWhereThePlanErrs(t *testing.T) {
	p, _ := newPolicy(t, &Policy{})
	e := p.engine
	if e.plan == nil {
		t.Fatalf("the default set fell back to topdown: %s", e.Fallback())
	}
	var in any
	if err := json.Unmarshal([]byte(`{"operation": 7, "denied": [], "software_statement": {"claims": "x"}}`), &in); err != nil {
		t.Fatal(err)
	}
	value, err := InputValue(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.evalPlan(context.Background(), value, ast.JSON); err == nil {
		t.Fatal("the plan no longer errs on this input: TestKnownDivergenceRuleIndexing says what to drop")
	}
	d, err := e.Decide(context.Background(), in)
	if err != nil || !d.Allow {
		t.Fatalf("decision %+v, error %v; topdown allows", d, err)
	}
}

// A policy calling http.send or time.now_ns, or using `with`, compiles, falls back to topdown with a reason,
// and decides.
func TestEngineFallsBackForNondeterministicBuiltins(t *testing.T) {
	for _, src := range []string{
		"package dcr\nimport rego.v1\ndecision := {\"allow\": true} if time.now_ns() > 0\n",
		"package dcr\nimport rego.v1\nok if input.x == 1\ndecision := {\"allow\": true} if { ok with input.x as 1 }\n",
		"package dcr\nimport rego.v1\ndecision := {\"allow\": true} if { not input.never; true }\ndecision := {\"allow\": false} if { input.never; http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1:1\"}) }\n",
	} {
		mod := writeFile(t, t.TempDir(), "p.rego", src)
		p, _ := newPolicy(t, &Policy{Defaults: off(), Modules: []string{mod}})
		if p.engine.plan != nil || p.engine.Fallback() == "" {
			t.Fatalf("%q: did not fall back", src)
		}
		d, err := p.engine.Decide(context.Background(), map[string]any{})
		if err != nil || !d.Allow {
			t.Fatalf("%q: %+v %v", src, d, err)
		}
	}
}

func equalJSONValues(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
