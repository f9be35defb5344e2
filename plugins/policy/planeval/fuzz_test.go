package planeval

import (
	"encoding/json"
	"testing"
)

// FuzzDefaultSet decides random JSON inputs with the default set through topdown and through
// the plan. Where the plan succeeds its decision must be topdown's, and where topdown errs the
// plan must err too. The one allowed difference is a plan error where topdown decides (a body
// topdown's rule index skips, TestKnownDivergenceRuleIndexing): the Engine decides that input
// again through topdown.
//
//	go test -run '^$' -fuzz FuzzDefaultSet -fuzztime 3m ./plugins/policy/planeval
func FuzzDefaultSet(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"operation": "register", "denied": {"org": true}}`,
		`{"operation": "update", "denied": {"software": true}, "software_statement": {"claims": {"software_id": "s1"}}}`,
		`{"operation": "register", "software_statement": {"claims": {"org_status": "Revoked", "software_mode": "Live"}}}`,
		`{"operation": "register", "registrations": 1000000}`,
		`{"operation": 7, "denied": [], "software_statement": {"claims": {"org_id": 3}}}`,
	} {
		f.Add([]byte(seed))
	}
	mods, data := defaultSet(f)
	eval := both(f, "data.dcr.decision", mods, data)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in any
		if json.Unmarshal(raw, &in) != nil {
			return
		}
		td, pe, tdErr, peErr := eval(in)
		if peErr != nil && tdErr == nil {
			return // decided again by topdown in the Engine
		}
		if !equalJSON(td, pe) || (tdErr == nil) != (peErr == nil) {
			t.Fatalf("input %s:\ntopdown  %v %v\nplaneval %v %v", raw, td, tdErr, pe, peErr)
		}
	})
}

// TestKnownDivergenceRuleIndexing records the difference the fuzzer found: topdown's rule
// index skips a body whose indexed condition (input.operation in ...) fails, so a builtin
// error earlier in that body (object.get on a string) is never raised; the plan runs the
// body in order and raises it. The Engine decides an input the plan errs on again through
// topdown (plugins/policy/engine.go), so the gateway answers as topdown does. The test fails
// when the two agree, so that whoever teaches the plan the index can drop that retry.
func TestKnownDivergenceRuleIndexing(t *testing.T) {
	mods, data := defaultSet(t)
	eval := both(t, "data.dcr.decision", mods, data)
	var in any
	if err := json.Unmarshal([]byte(`{"operation": 7, "denied": [], "software_statement": {"claims": "x"}}`), &in); err != nil {
		t.Fatal(err)
	}
	td, _, tdErr, peErr := eval(in)
	if tdErr != nil || td == nil || peErr == nil {
		t.Fatalf("the divergence is gone (topdown %v %v, plan error %v): the Engine no longer needs its topdown retry", td, tdErr, peErr)
	}
}
