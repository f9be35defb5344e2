package policy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ErrUndefined is returned when the decision query has no value for an input.
var ErrUndefined = errors.New("the policy decision is undefined")

// Engine is a compiled policy set with its decision query prepared: safe for concurrent use,
// and evaluated many times.
type Engine struct {
	hash     string
	decision string
	modules  []string
	query    rego.PreparedEvalQuery
	reads    inputReads
}

// Compile parses the bundle's modules as Rego v1, compiles them with its data and prepares the
// decision query. It fails when no rule defines the decision, so that a misnamed package is a
// configuration error, not a gateway that refuses everything.
func Compile(ctx context.Context, b *Bundle) (*Engine, error) {
	ref, err := ast.ParseRef(b.Decision)
	if err != nil || !ref.HasPrefix(ast.DefaultRootRef) || len(ref) < 2 {
		return nil, fmt.Errorf("decision %q must be a reference below data (e.g. %s)", b.Decision, DefaultDecision)
	}
	names := slices.Sorted(maps.Keys(b.Modules))
	parsed := make(map[string]*ast.Module, len(names))
	for _, name := range names {
		m, err := ast.ParseModuleWithOpts(name, b.Modules[name], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		parsed[name] = m
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(parsed); compiler.Failed() {
		return nil, compiler.Errors
	}
	if len(compiler.GetRules(ref)) == 0 {
		return nil, fmt.Errorf("no rule defines the decision %s", b.Decision)
	}
	query, err := rego.New(
		rego.Query(b.Decision),
		rego.Compiler(compiler),
		// The data is held as OPA values, so a rule reading data.dcr.config does not convert
		// it from Go values on every evaluation.
		rego.Store(inmem.NewFromObjectWithOpts(b.Data, inmem.OptReturnASTValuesOnRead(true))),
		rego.SetRegoVersion(ast.RegoV1),
		// A builtin that fails (a bad regex, a type error at run time) is an error, not an
		// undefined value that a `not` could turn into an allow.
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	return &Engine{hash: b.Hash(), decision: b.Decision, modules: names, query: query, reads: readsOf(compiler.Modules)}, nil
}

// Hash is the content hash of the bundle the engine was compiled from.
func (e *Engine) Hash() string { return e.hash }

// Modules are the names of the compiled modules.
func (e *Engine) Modules() []string { return e.modules }

// Eval evaluates the decision for input (an ast.Value, or a JSON-shaped Go value that
// InputValue converts) and returns the raw decision. ctx bounds the evaluation; cancelling it
// stops the evaluation with an error.
func (e *Engine) Eval(ctx context.Context, input any) (any, error) {
	value, err := InputValue(input)
	if err != nil {
		return nil, fmt.Errorf("policy input: %w", err)
	}
	// OPA watches ctx from a goroutine of its own per evaluation unless it is given a cancel;
	// context.AfterFunc sets that cancel when ctx ends, without a goroutine per decision.
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	rs, err := e.query.Eval(ctx,
		rego.EvalParsedInput(value),
		rego.EvalExternalCancel(cancel),
		// Nothing reads the evaluation's timers: the decision log times the decision itself.
		rego.EvalMetrics(metrics.NoOp()),
	)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, ErrUndefined
	}
	return rs[0].Expressions[0].Value, nil
}

// Decide evaluates and interprets the decision.
func (e *Engine) Decide(ctx context.Context, input any) (*Decision, error) {
	v, err := e.Eval(ctx, input)
	if err != nil {
		return nil, err
	}
	return ParseDecision(v)
}
