package dcr

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestRecordEveryFieldInEveryPhase: each verified field of a Result is copied into the
// Exchange in the phase that owns it and fails the call (errMisplaced, naming the field and
// its owner) in every other phase.
func TestRecordEveryFieldInEveryPhase(t *testing.T) {
	ssa, key := &SoftwareStatement{}, &SigningKey{}
	claims, md, names := map[string]any{"a": 1}, map[string]any{"b": 2}, map[string][]string{"b": {"b"}}
	for _, tc := range []struct {
		field  string
		owner  Phase
		result Result
		set    func(x *Exchange) bool
	}{
		{"access token claims", PhaseAuthenticate, Result{AccessTokenClaims: claims}, func(x *Exchange) bool { return x.AccessTokenClaims != nil }},
		{"a software statement", PhaseVerifyStatement, Result{SoftwareStatement: ssa}, func(x *Exchange) bool { return x.SoftwareStatement == ssa }},
		{"request claims", PhaseVerifyRequest, Result{RequestClaims: claims}, func(x *Exchange) bool { return x.RequestClaims != nil }},
		{"request claims", PhaseVerifyRequest, Result{RequestKeyID: "k"}, func(x *Exchange) bool { return x.RequestKeyID == "k" }},
		{"the signing key", PhaseVerifyRequest, Result{SigningKey: key}, func(x *Exchange) bool { return x.SigningKey == key }},
		{"metadata", PhaseProfile, Result{Metadata: md}, func(x *Exchange) bool { return x.Metadata != nil }},
		{"metadata", PhaseProfile, Result{MetadataNames: names}, func(x *Exchange) bool { return x.MetadataNames != nil }},
	} {
		for _, ph := range Phases {
			p, _ := NewPipeline(Step{"s", &step{phase: ph, result: tc.result}})
			x := &Exchange{}
			err := p.Run(context.Background(), ph, x, nil, &Pending{}, nil)
			if ph == tc.owner {
				if err != nil || !tc.set(x) {
					t.Errorf("%s in %s: %v, recorded %+v", tc.field, ph, err, x)
				}
				continue
			}
			want := fmt.Sprintf("s returned %s in phase %s (it belongs to %s)", tc.field, ph, tc.owner)
			if !errors.Is(err, errMisplaced) || err.Error() != errMisplaced.Error()+": "+want || tc.set(x) {
				t.Errorf("%s in %s: got %v, want %q and nothing recorded", tc.field, ph, err, want)
			}
		}
	}
}

// TestRunManySteps: a phase of more steps than Run keeps on its stack records them all, in
// order.
func TestRunManySteps(t *testing.T) {
	var steps []Step
	for i := range 7 {
		steps = append(steps, Step{fmt.Sprint("s", i), &step{phase: PhaseDecide, result: Result{Once: []OnceClaim{{Key: fmt.Sprint(i)}}}}})
	}
	p, _ := NewPipeline(steps...)
	pending := &Pending{}
	if err := p.Run(context.Background(), PhaseDecide, &Exchange{}, nil, pending, nil); err != nil {
		t.Fatal(err)
	}
	if len(pending.Once) != 7 {
		t.Fatalf("pending %+v", pending)
	}
	for i, c := range pending.Once {
		if c.Key != fmt.Sprint(i) {
			t.Fatalf("once %d is %q", i, c.Key)
		}
	}
}
