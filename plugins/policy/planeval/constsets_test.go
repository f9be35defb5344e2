package planeval

import (
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ir"
)

// folded counts the set literals constSets builds once in p, over every frame.
func folded(t *testing.T, p *ir.Policy) int {
	t.Helper()
	if _, err := Prepare(p); err != nil {
		t.Fatal(err)
	}
	c, err := newCompiler(p)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range p.Funcs.Funcs {
		sets, _ := c.constSets(f.Blocks, append(slices.Clip(f.Params), f.Return)...)
		n += len(sets)
	}
	sets, _ := c.constSets(p.Plans.Plans[0].Blocks)
	return n + len(sets)
}

// The default set's `input.operation in {"register", "update"}` literals are built once.
func TestConstSetsFoldMembershipLiterals(t *testing.T) {
	mods, data := defaultSet(t)
	if n := folded(t, planOf(t, "data.dcr.decision", mods, data)); n < 8 {
		t.Fatalf("%d set literals built once, want the default set's 8 or more (6 tests of the operation, 2 reads of data.dcr.rules)", n)
	}
	p := planOf(t, "data.p.x", map[string]string{"p.rego": "package p\nx if input.a in {\"a\", \"b\"}"}, map[string]any{})
	if n := folded(t, p); n != 1 {
		t.Fatalf("%d set literals built once, want 1", n)
	}
}

// A set that is returned, kept, added to after its literal, or built from a variable is
// built on every evaluation; the decisions are the reference's either way.
func TestConstSetsLeaveOtherSets(t *testing.T) {
	for name, src := range map[string]string{
		"returned":    "package p\nx := {\"a\", \"b\"}",
		"kept":        "package p\ns := {\"a\", \"b\"}\nx if { t := {\"a\", \"b\"}; input.a in t; count(t) == 2 }",
		"conditional": "package p\nx := {\"a\" | input.a}",
		"variable":    "package p\nx if input.a in {input.b, \"b\"}",
		"in result":   "package p\nx := [{\"a\", \"b\"}, \"a\" in {\"a\"}]",
	} {
		mods := map[string]string{"p.rego": src}
		p := planOf(t, "data.p.x", mods, map[string]any{})
		want := 0
		if name == "in result" {
			want = 1 // the `"a" in {"a"}`, not the array's set
		}
		if n := folded(t, p); n != want {
			t.Errorf("%s: %d set literals built once, want %d", name, n, want)
		}
		check := sameAsReference(t, name, p, map[string]any{})
		for _, raw := range []string{`{}`, `{"a": "a"}`, `{"a": "b", "b": "c"}`, `{"a": "c", "b": "c"}`} {
			check(t, mustValue(t, raw))
		}
	}
}
