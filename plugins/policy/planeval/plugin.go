package planeval

import (
	"context"
	"errors"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Target is the rego.Target whose PrepareForEval hands the planned policy to Prepare.
const Target = "dcrgate-planeval"

type holderKey struct{}

// Holder receives the Program (or the reason there is none) of a PrepareForEval run with
// WithHolder's ctx and rego.Target(Target).
type Holder struct {
	Program *Program
	Err     error
}

// WithHolder returns ctx carrying h.
func WithHolder(ctx context.Context, h *Holder) context.Context {
	return context.WithValue(ctx, holderKey{}, h)
}

type plugin struct{}

func init() { rego.RegisterPlugin(Target, plugin{}) }

func (plugin) IsTarget(t string) bool { return t == Target }

func (plugin) PrepareForEval(ctx context.Context, p *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	h, _ := ctx.Value(holderKey{}).(*Holder)
	if h == nil {
		return nil, errors.New("planeval: PrepareForEval without a holder")
	}
	h.Program, h.Err = Prepare(p)
	return refusal{}, nil
}

// refusal is what rego's own Eval would call: the Program is called directly instead.
type refusal struct{}

func (refusal) Eval(context.Context, *rego.EvalContext, ast.Value) (ast.Value, error) {
	return nil, errors.New("planeval: call Program.Eval")
}
