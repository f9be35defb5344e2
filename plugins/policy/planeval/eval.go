// Package planeval evaluates a policy that OPA's planner compiled to its IR (*ir.Policy), with
// the semantics OPA's wasm compiler gives each statement: an undefined statement leaves the
// innermost block, Break n leaves n+1 blocks, a Scan is two levels (its loop and the block
// around it), a Func's blocks run in turn until one returns.
//
// Prepare compiles the plan once (compile.go): every statement becomes an instr, a closure
// with its locals, constants, callee or builtin already resolved, so that an evaluation runs
// slices of closures with no type switch and no look-up by name. Locals hold terms, so that a
// value read from the input or data, or a builtin's answer, is passed on as the term it
// already is.
package planeval

import (
	"context"
	"errors"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ErrConflict is returned when a complete rule or an object key gets two values.
var ErrConflict = errors.New("eval_conflict_error: complete rules must not produce multiple outputs")

// Program is a prepared plan: safe for concurrent use.
type Program struct {
	blocks []block
	// nlocals is the plan's frame; nfuncs the memo slots (one per planned func); maxArgs the
	// most arguments a builtin call passes.
	nlocals, nfuncs, maxArgs int
	// usesWith: the plan has a WithStmt (Rego's `with`), which the gateway's Engine leaves
	// to topdown (see UsesWith).
	usesWith bool
	// states are evaluation states kept for reuse: their frames, stack and argument slice
	// are allocated once, not per decision.
	states sync.Pool
}

// UsesWith reports whether the plan replaces input or data somewhere (Rego's `with`). The
// Rego unit tests exercise it here; the gateway's Engine still leaves such a policy to
// topdown, because a decision's policy rarely needs `with` and its save-and-restore is
// the least tested part of this evaluator.
func (p *Program) UsesWith() bool { return p.usesWith }

// An instr is one compiled statement. It returns next to go on with the block, or what the
// block running it returns at once: a count of blocks to leave, ret or fail.
type instr func(st *state, l []*ast.Term) int

// block is a compiled ir.Block.
type block []instr

const (
	// next: the statement is done; the block goes on. A count n >= 0 leaves the current
	// block and n more (0: an undefined statement, which leaves the innermost block).
	next = -1
	// ret: a ReturnLocal ran; the func's frame holds its return value.
	ret = -2
	// fail: an error (a conflict, a builtin's, a cancelled ctx), in state.err.
	fail = -3
)

// run runs b: next when it ran to its end, else what its statement returned.
func (st *state) run(b block, l []*ast.Term) int {
	for _, in := range b {
		if c := in(st, l); c != next {
			return c
		}
	}
	return next
}

type state struct {
	ctx  context.Context
	bctx topdown.BuiltinContext
	err  error
	memo []*ast.Term
	// locals is the plan's frame.
	locals []*ast.Term
	result []ast.Value
	// stack holds the frames of the calls in progress: a call takes its frame from the top
	// and gives it back when it returns (Rego has no recursion, so it stays small).
	stack []*ast.Term
	// args is the argument slice of every builtin call (a builtin reads its operands during
	// the call and keeps none of them), cleared when the evaluation ends; out and capture
	// take its answer.
	args    []*ast.Term
	out     *ast.Term
	capture func(*ast.Term) error
}

func (p *Program) newState() *state {
	st := &state{memo: make([]*ast.Term, p.nfuncs), locals: make([]*ast.Term, p.nlocals), args: make([]*ast.Term, p.maxArgs)}
	st.capture = func(t *ast.Term) error { st.out = t; return nil }
	return st
}

// Eval runs the plan with input and data and returns the values its ResultSetAdd collected.
// An error (a conflict, a builtin's error, a cancelled ctx) is returned as such.
func (p *Program) Eval(ctx context.Context, input, data ast.Value) ([]ast.Value, error) {
	st, _ := p.states.Get().(*state)
	if st == nil {
		st = p.newState()
	}
	st.ctx = ctx
	st.bctx = topdown.BuiltinContext{Context: ctx}
	l := st.locals
	l[0], l[1] = ast.NewTerm(input), ast.NewTerm(data) // ir.Input, ir.Data
	var err error
	for _, b := range p.blocks {
		if st.run(b, l) == fail {
			err = st.err
			break
		}
	}
	result := st.result
	// A state goes back clean: no value of this evaluation outlives it there. (One that
	// panicked is not put back; Engine recovers the panic.)
	clear(l)
	clear(st.memo)
	clear(st.args)
	*st = state{memo: st.memo, locals: l, stack: st.stack[:0], args: st.args, capture: st.capture}
	p.states.Put(st)
	if err != nil {
		return nil, err
	}
	return result, nil
}

// call runs a planned func with its arguments read from the caller's frame l, and sets
// l[result] to its value.
func (st *state) call(f *function, args []operand, result int, l []*ast.Term) int {
	if err := st.ctx.Err(); err != nil {
		st.err = err
		return fail
	}
	if f.memo && st.memo[f.index] != nil {
		l[result] = st.memo[f.index]
		return next
	}
	base := len(st.stack)
	// Above its length the stack is all nil (a call clears its frame when it returns), so a
	// frame that fits is taken as it is.
	if base+f.frame <= cap(st.stack) {
		st.stack = st.stack[:base+f.frame]
	} else {
		st.stack = append(st.stack, make([]*ast.Term, f.frame)...)
	}
	// The frame is this call's alone until it returns; a later, deeper call that grows
	// the stack moves the frames above it, never this slice's array.
	fr := st.stack[base : base+f.frame : base+f.frame]
	for i, p := range f.params {
		fr[p] = args[i].get(l)
	}
	var v *ast.Term
	code := next
	for _, b := range f.blocks {
		if code = st.run(b, fr); code == fail {
			break
		}
		if code == ret {
			v = fr[f.ret]
			break
		}
	}
	clear(st.stack[base:])
	st.stack = st.stack[:base]
	switch {
	case code == fail:
		return fail
	case v == nil:
		return 0
	}
	if f.memo {
		st.memo[f.index] = v
	}
	l[result] = v
	return next
}

// callBuiltin runs fn with its arguments read from l, and sets l[result] to its answer.
func (st *state) callBuiltin(fn topdown.BuiltinFunc, args []operand, result int, l []*ast.Term) int {
	if err := st.ctx.Err(); err != nil {
		st.err = err
		return fail
	}
	terms := st.args[:len(args)]
	for i, a := range args {
		terms[i] = defined(a.get(l))
	}
	st.out = nil
	err := fn(st.bctx, terms, st.capture)
	if err != nil {
		st.err = err
		return fail
	}
	if st.out == nil {
		return 0
	}
	l[result], st.out = st.out, nil
	return next
}

// scan runs body for each key and value of l[src] (an array, object or set; anything else
// has none).
func (st *state) scan(src, key, val int, body block, l []*ast.Term) int {
	if err := st.ctx.Err(); err != nil {
		st.err = err
		return fail
	}
	// step runs body for one element: stop ends the loop, with the scan's own code.
	step := func(k, v *ast.Term) (code int, stop bool) {
		l[key], l[val] = k, v
		switch c := st.run(body, l); {
		case c == ret || c == fail:
			return c, true
		case c == 1:
			return next, true
		case c >= 2:
			return c - 2, true
		}
		return next, false
	}
	if l[src] == nil {
		return next
	}
	switch s := l[src].Value.(type) {
	case *ast.Array:
		for i := range s.Len() {
			if code, stop := step(ast.IntNumberTerm(i), s.Elem(i)); stop {
				return code
			}
		}
	case ast.Object:
		for _, k := range s.Keys() {
			if code, stop := step(k, s.Get(k)); stop {
				return code
			}
		}
	case ast.Set:
		for _, e := range s.Slice() {
			if code, stop := step(e, e); stop {
				return code
			}
		}
	}
	return next
}

// with runs body with l[local] replaced (at path inside it, when path is not empty) by v,
// and a memo of its own: a func's value may depend on what `with` replaced.
func (st *state) with(local int, path []ast.Value, v operand, body block, l []*ast.Term) int {
	saved := l[local]
	if len(path) == 0 {
		l[local] = v.get(l)
	} else {
		l[local] = ast.NewTerm(upsert(value(saved), path, value(v.get(l))))
	}
	memo := st.memo
	st.memo = make([]*ast.Term, len(memo))
	c := st.run(body, l)
	st.memo = memo
	l[local] = saved
	switch {
	case c == ret || c == fail:
		return c
	case c == next:
		return next
	case c == 0:
		return 0
	}
	return c - 1
}

// value is t's value; nil for an undefined local.
func value(t *ast.Term) ast.Value {
	if t == nil {
		return nil
	}
	return t.Value
}

// defined is t, or a term of no value where t is an undefined local: what the evaluator
// passed on before locals held terms (a builtin then fails on it as it did).
func defined(t *ast.Term) *ast.Term {
	if t == nil {
		return ast.NewTerm(nil)
	}
	return t
}

// dot is src[key]: an object's member, an array's element or a set's element; nil when
// there is none.
func dot(src, key *ast.Term) *ast.Term {
	if src == nil {
		return nil
	}
	switch s := src.Value.(type) {
	case ast.Object:
		return s.Get(key)
	case *ast.Array:
		n, ok := key.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= s.Len() {
			return nil
		}
		return s.Elem(i)
	case ast.Set:
		if s.Contains(key) {
			return key
		}
	}
	return nil
}

// upsert returns v with path set to val, copying each object it passes through.
func upsert(v ast.Value, path []ast.Value, val ast.Value) ast.Value {
	if len(path) == 0 {
		return val
	}
	var obj ast.Object
	if o, ok := v.(ast.Object); ok {
		obj = o.Copy()
	} else {
		obj = ast.NewObject()
	}
	k := ast.NewTerm(path[0])
	var child ast.Value
	if t := obj.Get(k); t != nil {
		child = t.Value
	}
	obj.Insert(k, ast.NewTerm(upsert(child, path[1:], val)))
	return obj
}
