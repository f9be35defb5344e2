package policy

import (
	"context"
	"maps"
	"slices"
	"testing"

	"go.uber.org/zap"
)

func TestReadsOf(t *testing.T) {
	for _, tc := range []struct {
		name, rego string
		all        bool
		keys       []string
	}{
		{"members", `decision if { input.operation == "register"; input.client_certificate.subject != "" }`, false, []string{"client_certificate", "operation"}},
		{"nested input index", `decision if { input.metadata[input.operation] }`, false, []string{"metadata", "operation"}},
		{"bare input", `decision if { x := input; x.operation }`, true, nil},
		{"input as an argument", `decision if { object.get(input, "operation", "") == "register" }`, true, nil},
		{"computed key", `decision if { some k; input[k] == 1 }`, true, nil},
		{"with input", `decision if { data.dcr.other with input as {} }
other if true`, true, nil},
		{"import", `import input.software_statement as ssa
decision if { ssa.claims.org_id }`, false, []string{"software_statement"}},
		{"none", `decision := true`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Compile(context.Background(), &Bundle{
				Modules:  map[string]string{"p.rego": "package dcr\nimport rego.v1\n" + tc.rego},
				Decision: DefaultDecision,
			})
			if err != nil {
				t.Fatal(err)
			}
			if e.reads.all != tc.all {
				t.Fatalf("all = %v, want %v (keys %v)", e.reads.all, tc.all, e.reads.keys)
			}
			if got := slices.Sorted(maps.Keys(e.reads.keys)); !tc.all && !slices.Equal(got, tc.keys) {
				t.Fatalf("keys = %v, want %v", got, tc.keys)
			}
		})
	}
}

// The default set reads five members of the input: the client certificate, the headers, the
// request's claims and the revocation details are not built for it.
func TestDefaultSetReads(t *testing.T) {
	b, err := Load(Sources{Defaults: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"denied", "existing_registration", "operation", "registrations_for_software", "software_statement"}
	if got := slices.Sorted(maps.Keys(e.reads.keys)); e.reads.all || !slices.Equal(got, want) {
		t.Fatalf("the default set reads all=%v %v, want %v", e.reads.all, got, want)
	}
}

// A policy that reads the certificate gets it, built as before; one that does not gets an
// input without it, and the same decision.
func TestInputBuiltForItsReader(t *testing.T) {
	x := realisticExchange(t)
	for _, tc := range []struct {
		name, rego string
	}{
		{"reads the certificate", `decision := {"allow": input.client_certificate.subject_fields.common_name == "` + testSoftwareID + `"}`},
		{"reads the whole input", `decision := {"allow": input.client_certificate.subject_fields.common_name == object.get(input, "software_statement", {}).claims.software_id}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mod := writeFile(t, dir, "p.rego", "package dcr\nimport rego.v1\n"+tc.rego+"\n")
			p, _ := newPolicy(t, &Policy{Defaults: off(), Modules: []string{mod}})
			// Below debug: at debug the whole input is built for its log line.
			p.logger = zap.NewNop()
			if _, err := p.Protect(context.Background(), x.Exchange, nil); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	in := inputFor(x.Exchange, 0, inputReads{keys: map[string]bool{"operation": true}})
	if _, ok := in["client_certificate"]; ok || len(in) != 1 {
		t.Fatalf("an input for a policy reading only the operation: %v", slices.Sorted(maps.Keys(in)))
	}
	if full := Input(x.Exchange, 0); full["client_certificate"] == nil || full["request"] == nil || full["revocation"] == nil {
		t.Fatalf("the full input lacks members: %v", slices.Sorted(maps.Keys(full)))
	}
}
