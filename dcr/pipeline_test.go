package dcr

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// step is a protection of a given phase that returns result and records what it saw.
type step struct {
	phase  Phase
	result Result
	err    error
	saw    func(x *Exchange)
}

func (s *step) Phase() Phase { return s.phase }

func (s *step) Protect(_ context.Context, x *Exchange, _ Registry) (Result, error) {
	if s.saw != nil {
		s.saw(x)
	}
	return s.result, s.err
}

func TestNewPipeline(t *testing.T) {
	a := Step{"a", &step{phase: PhaseDecide}}
	b := Step{"b", &step{phase: PhaseAuthenticate}}
	c := Step{"c", &step{phase: PhaseDecide}}
	p, err := NewPipeline(a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ss []Step) (out []string) {
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	if got := names(p.Steps(PhaseDecide)); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Fatalf("decide steps %v, want the configuration order a, c", got)
	}
	if got := names(p.Steps(PhaseAuthenticate)); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("authenticate steps %v", got)
	}
	if _, err := NewPipeline(Step{"odd", &step{phase: "after_everything"}}); err == nil || !strings.Contains(err.Error(), `odd declares phase "after_everything"`) {
		t.Fatalf("unknown phase: %v", err)
	}
}

func TestRunRecordsResultsAtTheEndOfThePhase(t *testing.T) {
	ssa := &SoftwareStatement{SoftwareID: "sw1"}
	var sawOwn bool
	first := &step{phase: PhaseVerifyStatement, result: Result{SoftwareStatement: ssa, Once: []OnceClaim{{Key: "k1"}}}}
	second := &step{phase: PhaseVerifyStatement, saw: func(x *Exchange) { sawOwn = x.SoftwareStatement != nil },
		result: Result{Once: []OnceClaim{{Key: "k2"}}, AfterCommit: []func(){func() {}}}}
	p, _ := NewPipeline(Step{"first", first}, Step{"second", second})
	x, pending := &Exchange{}, &Pending{}
	var observed []string
	err := p.Run(context.Background(), PhaseVerifyStatement, x, nil, pending, func(s string, _ time.Time) { observed = append(observed, s) })
	if err != nil {
		t.Fatal(err)
	}
	if sawOwn {
		t.Error("a protection saw a result of its own phase")
	}
	if x.SoftwareStatement != ssa || len(pending.Once) != 2 || pending.Once[0].Key != "k1" || pending.Once[1].Key != "k2" || len(pending.AfterCommit) != 1 {
		t.Fatalf("recorded %+v, pending %+v", x, pending)
	}
	if !reflect.DeepEqual(observed, []string{"first", "second"}) {
		t.Fatalf("observed %v", observed)
	}
}

func TestRunStopsAtTheFirstError(t *testing.T) {
	ran := false
	reject := BadMetadata("no")
	p, _ := NewPipeline(Step{"a", &step{phase: PhaseAuthenticate, err: reject, result: Result{Once: []OnceClaim{{Key: "k"}}}}},
		Step{"b", &step{phase: PhaseAuthenticate, saw: func(*Exchange) { ran = true }}})
	pending := &Pending{}
	if err := p.Run(context.Background(), PhaseAuthenticate, &Exchange{}, nil, pending, nil); err != reject {
		t.Fatalf("got %v, want the rejection", err)
	}
	if ran || len(pending.Once) != 0 {
		t.Fatalf("ran on %v, pending %+v", ran, pending)
	}
}

func TestRunRefusesMisplacedResults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []Step
		phase Phase
		want  string
	}{
		{"a software statement from authenticate", []Step{{"x", &step{phase: PhaseAuthenticate, result: Result{SoftwareStatement: &SoftwareStatement{}}}}}, PhaseAuthenticate, "x returned a software statement in phase authenticate"},
		{"metadata from decide", []Step{{"x", &step{phase: PhaseDecide, result: Result{Metadata: map[string]any{}}}}}, PhaseDecide, "x returned metadata in phase decide"},
		{"a signing key from authenticate", []Step{{"x", &step{phase: PhaseAuthenticate, result: Result{SigningKey: &SigningKey{}}}}}, PhaseAuthenticate, "x returned the signing key in phase authenticate (it belongs to verify_request)"},
		{"a vote from decide", []Step{{"x", &step{phase: PhaseDecide, result: Result{Vote: Grant()}}}}, PhaseDecide, "x voted in phase decide"},
		{"overrides from profile", []Step{{"x", &step{phase: PhaseProfile, result: Result{Overrides: map[string]any{"scope": "a"}}}}}, PhaseProfile, "metadata overrides in phase profile"},
		{"two software statements", []Step{
			{"x", &step{phase: PhaseVerifyStatement, result: Result{SoftwareStatement: &SoftwareStatement{}}}},
			{"y", &step{phase: PhaseVerifyStatement, result: Result{SoftwareStatement: &SoftwareStatement{}}}}}, PhaseVerifyStatement, "x and y both returned a software statement"},
		{"two overrides of a field", []Step{
			{"x", &step{phase: PhaseDecide, result: Result{Overrides: map[string]any{"scope": "a"}}}},
			{"y", &step{phase: PhaseDecide, result: Result{Overrides: map[string]any{"scope": "b"}}}}}, PhaseDecide, "two protections override scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := NewPipeline(tc.steps...)
			err := p.Run(context.Background(), tc.phase, &Exchange{}, nil, &Pending{}, nil)
			if !errors.Is(err, errMisplaced) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if AsError(err).Status != 503 {
				t.Fatal("a misplaced result fails closed with 503")
			}
		})
	}
}

func TestRunRecordsTheSigningKey(t *testing.T) {
	k := &SigningKey{RegisteredKey: RegisteredKey{KeyID: "k1", RevokedKeySets: []RevokedKeySet{{Claim: ClaimOrgJWKSRevoked, URL: "https://x"}}}}
	p, _ := NewPipeline(Step{"signed_request", &step{phase: PhaseVerifyRequest, result: Result{SigningKey: k}}})
	x := &Exchange{}
	if err := p.Run(context.Background(), PhaseVerifyRequest, x, nil, &Pending{}, nil); err != nil || x.SigningKey != k {
		t.Fatalf("recorded %+v, %v", x.SigningKey, err)
	}
	// What a registrar stores is a copy, and nil without a key.
	r := x.SigningKey.Registered()
	r.RevokedKeySets[0].URL = "changed"
	if k.RevokedKeySets[0].URL != "https://x" || (*SigningKey)(nil).Registered() != nil {
		t.Fatal("Registered shares the revoked key sets")
	}
}

func TestRunCollectsVotes(t *testing.T) {
	p, _ := NewPipeline(Step{"a", &step{phase: PhaseAuthenticate, result: Result{Vote: Grant()}}},
		Step{"b", &step{phase: PhaseAuthenticate}},
		Step{"c", &step{phase: PhaseAuthenticate, result: Result{Vote: Refuse("no")}}})
	pending := &Pending{}
	if err := p.Run(context.Background(), PhaseAuthenticate, &Exchange{}, nil, pending, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pending.Votes, []Vote{Grant(), Refuse("no")}) {
		t.Fatalf("votes %+v, want the grant and the refusal in order (an abstention is no vote)", pending.Votes)
	}
}

func TestDecideAcceptsMetadata(t *testing.T) {
	md := map[string]any{"scope": "openid accounts payments", "grant_types": []any{"authorization_code"}}
	for _, tc := range []struct {
		name  string
		steps []Step
		want  map[string]any
	}{
		{"no decide protection", nil, md},
		{"a decision without overrides", []Step{{"policy", &step{phase: PhaseDecide}}}, md},
		{"an override", []Step{{"policy", &step{phase: PhaseDecide, result: Result{Overrides: map[string]any{"scope": "openid"}}}}},
			map[string]any{"scope": "openid", "grant_types": []any{"authorization_code"}}},
		{"overrides of two fields by two protections", []Step{
			{"a", &step{phase: PhaseDecide, result: Result{Overrides: map[string]any{"scope": "openid"}}}},
			{"b", &step{phase: PhaseDecide, result: Result{Overrides: map[string]any{"grant_types": []any{}}}}}},
			map[string]any{"scope": "openid", "grant_types": []any{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := NewPipeline(tc.steps...)
			x := &Exchange{Metadata: md}
			if err := p.Run(context.Background(), PhaseDecide, x, nil, &Pending{}, nil); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(x.AcceptedMetadata, tc.want) {
				t.Fatalf("accepted %v, want %v", x.AcceptedMetadata, tc.want)
			}
			if md["scope"] != "openid accounts payments" {
				t.Fatal("the profile's metadata was changed in place")
			}
		})
	}
}

// memStore is an in-memory Store for the registry view and the commit.
type memStore struct {
	Store
	ids  []string
	keys map[string]bool
	err  error
}

func (s *memStore) ListBySoftware(context.Context, string) ([]string, error) { return s.ids, s.err }

func (s *memStore) Claim(_ context.Context, key string, _ time.Duration) (bool, error) {
	if s.err != nil {
		return false, s.err
	}
	if s.keys[key] {
		return false, nil
	}
	s.keys[key] = true
	return true, nil
}

func (s *memStore) Seen(_ context.Context, key string) (bool, error) { return s.keys[key], s.err }

func (s *memStore) Release(_ context.Context, key string) error {
	delete(s.keys, key)
	return nil
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	s := &memStore{ids: []string{"c1", "c2", "c3"}, keys: map[string]bool{"k": true}}
	reg := ReadOnly(s)
	if _, ok := reg.(Store); ok {
		t.Fatal("the registry view must not be a Store")
	}
	for except, want := range map[string]int{"": 3, "c2": 2, "c9": 3} {
		if n, err := reg.CountBySoftware(ctx, "sw1", except); err != nil || n != want {
			t.Errorf("count except %q: %d %v, want %d", except, n, err, want)
		}
	}
	if seen, err := reg.Seen(ctx, "k"); err != nil || !seen {
		t.Error("Seen")
	}
	s.err = errors.New("down")
	if _, err := reg.CountBySoftware(ctx, "sw1", ""); err == nil {
		t.Error("a store that is down is an error")
	}
}

// screeningStep is a step that also screens: it refuses when refuse is set and records that
// it screened.
type screeningStep struct {
	step
	name     string
	refuse   *Error
	screened *[]string
}

func (s *screeningStep) Screen(context.Context, *Exchange, Registry) error {
	*s.screened = append(*s.screened, s.name)
	if s.refuse != nil {
		return s.refuse
	}
	return nil
}

// TestScreen: the screeners run in phase order, before and apart from the phases, and the
// first refusal stops the screen; steps that do not screen are not called.
func TestScreen(t *testing.T) {
	var screened []string
	later := &screeningStep{step: step{phase: PhaseVerifyRequest}, name: "later", screened: &screened}
	first := &screeningStep{step: step{phase: PhaseAuthenticate}, name: "first", screened: &screened}
	ran := false
	plain := &step{phase: PhaseAuthenticate, saw: func(*Exchange) { ran = true }}
	p, err := NewPipeline(Step{"later", later}, Step{"plain", plain}, Step{"first", first})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Screen(context.Background(), &Exchange{}, nil); err != nil || !slices.Equal(screened, []string{"first", "later"}) {
		t.Fatalf("screened %v: %v", screened, err)
	}
	if ran {
		t.Fatal("the screen ran a step's Protect")
	}
	screened = nil
	first.refuse = BadMetadata("replayed")
	if err := p.Screen(context.Background(), &Exchange{}, nil); err != first.refuse || !slices.Equal(screened, []string{"first"}) {
		t.Fatalf("screened %v: %v, want the first refusal only", screened, err)
	}
}
