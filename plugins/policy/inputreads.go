package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// inputReads is what of the input a compiled policy set can read: the top-level members its
// rules name (input.operation, input.software_statement...), or everything when some
// expression reads input as a whole (x := input, f(input), with input as ...) or by a
// computed key (input[k]).
//
// Why: building the input costs as much as a small policy's evaluation (the client
// certificate's names and thumbprint, the headers, the store's count and deny list), and the
// default set reads five of its members. Protect builds only what the set can read.
type inputReads struct {
	all  bool
	keys map[string]bool
}

// everything is what an input must hold when nothing is known of its reader (the debug log of
// the input, `caddy dcr policy eval`).
var everything = inputReads{all: true}

// Reads says whether the set can read input.<key>.
func (r inputReads) Reads(key string) bool { return r.all || r.keys[key] }

// readsOf finds what the compiled modules read of input.
func readsOf(modules map[string]*ast.Module) inputReads {
	r := inputReads{keys: map[string]bool{}}
	var visit func(t *ast.Term) bool
	visit = func(t *ast.Term) bool {
		if r.all {
			return true
		}
		switch v := t.Value.(type) {
		case ast.Var:
			if v.Equal(ast.InputRootDocument.Value) {
				r.all = true // input on its own
			}
		case ast.Ref:
			if !v[0].Equal(ast.InputRootDocument) {
				return false
			}
			if len(v) < 2 {
				r.all = true
				return true
			}
			key, ok := v[1].Value.(ast.String)
			if !ok {
				r.all = true // input[k]
				return true
			}
			r.keys[string(key)] = true
			// What indexes below the member may be refs to input themselves
			// (input.a[input.b]).
			for _, sub := range v[2:] {
				ast.WalkTerms(sub, visit)
			}
			return true
		}
		return false
	}
	for _, m := range modules {
		ast.WalkTerms(m, visit)
	}
	return r
}
