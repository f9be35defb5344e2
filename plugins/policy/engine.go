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

	"github.com/dcrgate/dcrgate/plugins/policy/planeval"
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
	// plan is the decision as OPA's planner flattened it, evaluated by planeval with data
	// (the bundle's data as one OPA value); nil when planeval refused the policy, and then
	// fallback says why and the decision is topdown's.
	plan     *planeval.Program
	data     ast.Value
	fallback string
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
	// The topdown query and the plan are prepared from the same options.
	opts := []func(*rego.Rego){
		rego.Query(b.Decision),
		rego.Compiler(compiler),
		// The data is held as OPA values, so a rule reading data.dcr.config does not convert
		// it from Go values on every evaluation.
		rego.Store(inmem.NewFromObjectWithOpts(b.Data, inmem.OptReturnASTValuesOnRead(true))),
		rego.SetRegoVersion(ast.RegoV1),
		// A builtin that fails (a bad regex, a type error at run time) is an error, not an
		// undefined value that a `not` could turn into an allow.
		rego.StrictBuiltinErrors(true),
	}
	query, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	e := &Engine{hash: b.Hash(), decision: b.Decision, modules: names, query: query, reads: readsOf(compiler.Modules)}
	e.preparePlan(ctx, b, opts)
	return e, nil
}

// preparePlan plans the decision for planeval from the topdown query's options; anything it
// does not evaluate exactly leaves the engine on topdown with the reason in fallback.
func (e *Engine) preparePlan(ctx context.Context, b *Bundle, opts []func(*rego.Rego)) {
	data, err := ast.InterfaceToValue(b.Data)
	if err != nil {
		e.fallback = err.Error()
		return
	}
	h := &planeval.Holder{}
	_, err = rego.New(append(slices.Clip(opts), rego.Target(planeval.Target))...).
		PrepareForEval(planeval.WithHolder(ctx, h))
	switch {
	case err != nil:
		e.fallback = err.Error()
	case h.Err != nil:
		e.fallback = h.Err.Error()
	case h.Program.UsesWith():
		e.fallback = "the policy uses `with`, which the plan evaluator leaves to OPA's evaluator"
	default:
		e.plan, e.data = h.Program, data
	}
}

// Fallback is why the decision is evaluated by OPA's topdown rather than from its plan
// (a builtin or construct planeval does not evaluate), or "" when the plan decides.
func (e *Engine) Fallback() string { return e.fallback }

// Hash is the content hash of the bundle the engine was compiled from.
func (e *Engine) Hash() string { return e.hash }

// Modules are the names of the compiled modules.
func (e *Engine) Modules() []string { return e.modules }

// Eval evaluates the decision for input (an ast.Value, or a JSON-shaped Go value that
// InputValue converts) and returns the raw decision. ctx bounds the evaluation; cancelling it
// stops the evaluation with an error.
func (e *Engine) Eval(ctx context.Context, input any) (any, error) {
	return e.eval(ctx, input, ast.JSON)
}

// eval is Eval with read turning the plan's decision (an OPA value) into what the caller
// takes; an error of read is a plan error, decided again by topdown.
func (e *Engine) eval(ctx context.Context, input any, read func(ast.Value) (any, error)) (any, error) {
	value, err := InputValue(input)
	if err != nil {
		return nil, fmt.Errorf("policy input: %w", err)
	}
	if e.plan != nil {
		v, err := e.evalPlan(ctx, value, read)
		// The plan has no rule index: it runs a body that topdown's index skips (its indexed
		// condition on the input fails), so a builtin in that body can raise an error that
		// topdown never meets (FuzzDefaultSet found one: object.get on a claims string, in a
		// rule whose operation test fails). Index selection only ever skips bodies that would
		// be undefined, so the plan and topdown differ only where the plan errs: an error is
		// decided again by topdown, whose answer (or error) is the decision. A cancelled or
		// expired ctx is not retried.
		if err == nil || ctx.Err() != nil {
			return v, err
		}
	}
	return e.evalTopdown(ctx, value)
}

// evalTopdown is Eval through OPA's own evaluator.
func (e *Engine) evalTopdown(ctx context.Context, value ast.Value) (any, error) {
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

// Decide evaluates and interprets the decision. The plan's decision is read from its OPA
// value where it has the usual shape (decisionOfValue), without the Go value Eval makes of it.
func (e *Engine) Decide(ctx context.Context, input any) (*Decision, error) {
	var read *Decision
	v, err := e.eval(ctx, input, func(value ast.Value) (any, error) {
		if d, ok := decisionOfValue(value); ok {
			read = d
			return nil, nil
		}
		return ast.JSON(value)
	})
	switch {
	case err != nil:
		return nil, err
	case read != nil:
		return read, nil
	}
	return ParseDecision(v)
}

// evalPlan is Eval through the plan: the result set holds one object, the query's captured
// value under its one key, which read makes the decision of; an empty set is an undefined
// decision.
func (e *Engine) evalPlan(ctx context.Context, input ast.Value, read func(ast.Value) (any, error)) (v any, err error) {
	// A fault of the evaluator is not a fault of the request: it becomes an error, which Eval
	// decides again through topdown.
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("policy plan: %v", r)
		}
	}()
	out, err := e.plan.Eval(ctx, input, e.data)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrUndefined
	}
	obj, ok := out[0].(ast.Object)
	if !ok || obj.Len() != 1 {
		return nil, fmt.Errorf("policy plan: unexpected result %v", out[0])
	}
	return read(obj.Get(obj.Keys()[0]).Value)
}
