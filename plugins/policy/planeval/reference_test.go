// The evaluator as it was before Prepare compiled the plan: a walk of the IR with a type
// switch per statement. It is kept, in the tests only, as the reference the compiled form
// must match exactly (reference_diff_test.go): same values, same errors, same undefined.
package planeval

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// refProgram is a prepared plan: safe for concurrent use.
type refProgram struct {
	plan *ir.Plan
	strs []ast.Value
	// strTerms are strs as terms, so that a lookup by a constant key (most DotStmts) does not
	// wrap its key in a new term on every evaluation.
	strTerms []*ast.Term
	// calls is what a call of a planned func needs, found with one look-up by name.
	calls   map[string]refCallee
	builtin map[string]topdown.BuiltinFunc
	nlocals int
	// usesWith: the plan has a WithStmt (Rego's `with`), which the gateway's Engine leaves
	// to topdown (see UsesWith).
	usesWith bool
}

// refCallee is a planned func with its memo slot and the size of its frame (the locals it names,
// so that a call takes only those).
type refCallee struct {
	f     *ir.Func
	idx   int
	frame int
}

// refRefused are builtins that need more context than the evaluator provides or whose answer
// is not a function of their arguments.
var refRefused = map[string]bool{
	"print": true, "internal.print": true, "trace": true, "opa.runtime": true,
	"rego.metadata.chain": true, "rego.metadata.rule": true, "io.jwt.decode_verify": true,
}

// refPrepare checks that every statement and builtin of p is one it evaluates exactly; it fails
// (and the caller falls back to topdown) otherwise.
func refPrepare(p *ir.Policy) (*refProgram, error) {
	if p.Plans == nil || len(p.Plans.Plans) != 1 {
		return nil, errors.New("planeval: want exactly one plan")
	}
	prog := &refProgram{plan: p.Plans.Plans[0], calls: map[string]refCallee{}, builtin: map[string]topdown.BuiltinFunc{}}
	for _, s := range p.Static.Strings {
		prog.strs = append(prog.strs, ast.String(s.Value))
		prog.strTerms = append(prog.strTerms, ast.StringTerm(s.Value))
	}
	for _, b := range p.Static.BuiltinFuncs {
		decl := ast.BuiltinMap[b.Name]
		fn := topdown.GetBuiltin(b.Name)
		if decl == nil || fn == nil || decl.Nondeterministic || refRefused[b.Name] || decl.Decl.Result() == nil {
			return nil, fmt.Errorf("planeval: builtin %s is not evaluated here", b.Name)
		}
		prog.builtin[b.Name] = fn
	}
	if p.Funcs != nil {
		for i, f := range p.Funcs.Funcs {
			prog.calls[f.Name] = refCallee{f: f, idx: i}
		}
	}
	var err error
	check := func(b *ir.Block) {}
	check = func(b *ir.Block) {
		for _, s := range b.Stmts {
			if int(refMaxLocal(s)) >= prog.nlocals {
				prog.nlocals = int(refMaxLocal(s)) + 1
			}
			switch s := s.(type) {
			case *ir.BlockStmt:
				for _, c := range s.Blocks {
					check(c)
				}
			case *ir.ScanStmt:
				check(s.Block)
			case *ir.NotStmt:
				check(s.Block)
			case *ir.WithStmt:
				prog.usesWith = true
				check(s.Block)
			case *ir.CallStmt:
				if _, ok := prog.calls[s.Func]; !ok {
					if _, ok := prog.builtin[s.Func]; !ok {
						err = fmt.Errorf("planeval: call of unknown function %s", s.Func)
					}
				}
			case *ir.CallDynamicStmt:
				err = errors.New("planeval: dynamic calls are not evaluated here")
			case *ir.ReturnLocalStmt, *ir.BreakStmt, *ir.DotStmt, *ir.LenStmt, *ir.AssignVarStmt,
				*ir.AssignVarOnceStmt, *ir.AssignIntStmt, *ir.ResetLocalStmt, *ir.MakeNullStmt,
				*ir.MakeNumberIntStmt, *ir.MakeNumberRefStmt, *ir.MakeArrayStmt, *ir.MakeObjectStmt,
				*ir.MakeSetStmt, *ir.EqualStmt, *ir.NotEqualStmt, *ir.IsArrayStmt, *ir.IsObjectStmt,
				*ir.IsSetStmt, *ir.IsDefinedStmt, *ir.IsUndefinedStmt, *ir.ArrayAppendStmt,
				*ir.ObjectInsertStmt, *ir.ObjectInsertOnceStmt, *ir.ObjectMergeStmt, *ir.SetAddStmt,
				*ir.NopStmt, *ir.ResultSetAddStmt:
			default:
				err = fmt.Errorf("planeval: statement %T is not evaluated here", s)
			}
		}
	}
	for _, b := range prog.plan.Blocks {
		check(b)
	}
	plan := prog.nlocals
	for name, c := range prog.calls {
		f := c.f
		prog.nlocals = 0
		for _, b := range f.Blocks {
			check(b)
		}
		for _, l := range f.Params {
			if int(l) >= prog.nlocals {
				prog.nlocals = int(l) + 1
			}
		}
		if int(f.Return) >= prog.nlocals {
			prog.nlocals = int(f.Return) + 1
		}
		c.frame = max(prog.nlocals, int(ir.Unused))
		prog.calls[name] = c
	}
	prog.nlocals = max(plan, int(ir.Unused))
	if err != nil {
		return nil, err
	}
	return prog, nil
}

// refMaxLocal is a bound on the locals a statement names (its targets are enough: a local is
// written before it is read).
func refMaxLocal(s ir.Stmt) ir.Local {
	switch s := s.(type) {
	case *ir.CallStmt:
		return s.Result
	case *ir.DotStmt:
		return s.Target
	case *ir.LenStmt:
		return s.Target
	case *ir.ScanStmt:
		return max(s.Key, s.Value, s.Source)
	case *ir.AssignVarStmt:
		return s.Target
	case *ir.AssignVarOnceStmt:
		return s.Target
	case *ir.AssignIntStmt:
		return s.Target
	case *ir.ResetLocalStmt:
		return s.Target
	case *ir.MakeNullStmt:
		return s.Target
	case *ir.MakeNumberIntStmt:
		return s.Target
	case *ir.MakeNumberRefStmt:
		return s.Target
	case *ir.MakeArrayStmt:
		return s.Target
	case *ir.MakeObjectStmt:
		return s.Target
	case *ir.MakeSetStmt:
		return s.Target
	case *ir.ObjectMergeStmt:
		return s.Target
	case *ir.WithStmt:
		return s.Local
	}
	return 0
}

type refState struct {
	p      *refProgram
	ctx    context.Context
	bctx   topdown.BuiltinContext
	memo   []ast.Value
	result []ast.Value
	// stack holds the frames of the calls in progress: a call takes its frame from the top
	// and gives it back when it returns (Rego has no recursion, so it stays small).
	stack []ast.Value
}

// Eval runs the plan with input and data and returns the values its ResultSetAdd collected.
// An error (a conflict, a builtin's error, a cancelled ctx) is returned as such.
func (p *refProgram) Eval(ctx context.Context, input, data ast.Value) ([]ast.Value, error) {
	st := &refState{p: p, ctx: ctx, memo: make([]ast.Value, len(p.calls))}
	st.bctx = topdown.BuiltinContext{Context: ctx}
	locals := make([]ast.Value, p.nlocals)
	locals[ir.Input], locals[ir.Data] = input, data
	for _, b := range p.plan.Blocks {
		if _, _, err := st.block(b, locals); err != nil {
			return nil, err
		}
	}
	return st.result, nil
}

// block runs b: brk is -1 when b ran to its end, else how many more blocks the break leaves
// beyond b; ret is set when a ReturnLocal ran.
func (st *refState) block(b *ir.Block, l []ast.Value) (brk int, ret bool, err error) {
	for _, s := range b.Stmts {
		brk, ret, err = st.stmt(s, l)
		if err != nil || ret {
			return brk, ret, err
		}
		if brk >= 0 {
			if brk == 0 {
				return 0, false, nil
			}
			return brk, false, nil
		}
	}
	return -1, false, nil
}

func (st *refState) op(o ir.Operand, l []ast.Value) ast.Value {
	switch v := o.Value.(type) {
	case ir.Local:
		return l[v]
	case ir.StringIndex:
		return st.p.strs[v]
	case ir.Bool:
		return ast.Boolean(v)
	}
	return nil
}

// stmt runs s; brk >= 0 means s left brk enclosing blocks (0: the current one).
func (st *refState) stmt(s ir.Stmt, l []ast.Value) (int, bool, error) {
	const next, undef = -1, 0
	switch s := s.(type) {
	case *ir.ReturnLocalStmt:
		return 0, true, nil
	case *ir.BreakStmt:
		return int(s.Index), false, nil
	case *ir.BlockStmt:
		for _, b := range s.Blocks {
			brk, ret, err := st.block(b, l)
			if err != nil || ret {
				return brk, ret, err
			}
			if brk > 0 {
				return brk - 1, false, nil
			}
		}
	case *ir.ScanStmt:
		if err := st.ctx.Err(); err != nil {
			return 0, false, err
		}
		var out int = next
		var ret bool
		var ferr error
		each := func(k, v ast.Value) bool {
			l[s.Key], l[s.Value] = k, v
			brk, r, err := st.block(s.Block, l)
			if err != nil || r {
				ret, ferr = r, err
				return true
			}
			if brk == 1 {
				return true
			}
			if brk >= 2 {
				out = brk - 2
				return true
			}
			return false
		}
		switch src := l[s.Source].(type) {
		case *ast.Array:
			for i := range src.Len() {
				if each(ast.IntNumberTerm(i).Value, src.Elem(i).Value) {
					break
				}
			}
		case ast.Object:
			for _, k := range src.Keys() {
				if each(k.Value, src.Get(k).Value) {
					break
				}
			}
		case ast.Set:
			for _, e := range src.Slice() {
				if each(e.Value, e.Value) {
					break
				}
			}
		}
		if ferr != nil || ret {
			return 0, ret, ferr
		}
		return out, false, nil
	case *ir.NotStmt:
		brk, ret, err := st.block(s.Block, l)
		if err != nil || ret {
			return brk, ret, err
		}
		switch {
		case brk == 0:
			return next, false, nil
		case brk < 0:
			return undef, false, nil
		default:
			return brk - 1, false, nil
		}
	case *ir.WithStmt:
		saved := l[s.Local]
		if len(s.Path) == 0 {
			l[s.Local] = st.op(s.Value, l)
		} else {
			path := make([]ast.Value, len(s.Path))
			for i, p := range s.Path {
				path[i] = st.p.strs[p]
			}
			l[s.Local] = refUpsert(saved, path, st.op(s.Value, l))
		}
		memo := st.memo
		st.memo = make([]ast.Value, len(memo))
		brk, ret, err := st.block(s.Block, l)
		st.memo = memo
		l[s.Local] = saved
		if err != nil || ret {
			return brk, ret, err
		}
		switch {
		case brk < 0:
			return next, false, nil
		case brk == 0:
			return undef, false, nil
		default:
			return brk - 1, false, nil
		}
	case *ir.CallStmt:
		args := make([]ast.Value, len(s.Args))
		for i, a := range s.Args {
			args[i] = st.op(a, l)
		}
		v, err := st.call(s.Func, args)
		if err != nil {
			return 0, false, err
		}
		if v == nil {
			return undef, false, nil
		}
		l[s.Result] = v
	case *ir.DotStmt:
		src, ok := s.Source.Value.(ir.Local)
		if !ok {
			return undef, false, nil
		}
		var v ast.Value
		if k, ok := s.Key.Value.(ir.StringIndex); ok {
			v = refDotTerm(l[src], st.p.strTerms[k])
		} else {
			v = refDot(l[src], st.op(s.Key, l))
		}
		if v == nil {
			return undef, false, nil
		}
		l[s.Target] = v
	case *ir.LenStmt:
		var n int
		switch v := st.op(s.Source, l).(type) {
		case *ast.Array:
			n = v.Len()
		case ast.Object:
			n = v.Len()
		case ast.Set:
			n = v.Len()
		case ast.String:
			n = len(v)
		}
		l[s.Target] = ast.IntNumberTerm(n).Value
	case *ir.AssignVarStmt:
		l[s.Target] = st.op(s.Source, l)
	case *ir.AssignVarOnceStmt:
		v := st.op(s.Source, l)
		if l[s.Target] != nil && ast.Compare(l[s.Target], v) != 0 {
			return 0, false, ErrConflict
		}
		l[s.Target] = v
	case *ir.AssignIntStmt:
		l[s.Target] = ast.IntNumberTerm(int(s.Value)).Value
	case *ir.ResetLocalStmt:
		l[s.Target] = nil
	case *ir.MakeNullStmt:
		l[s.Target] = ast.NullValue
	case *ir.MakeNumberIntStmt:
		l[s.Target] = ast.IntNumberTerm(int(s.Value)).Value
	case *ir.MakeNumberRefStmt:
		l[s.Target] = ast.Number(st.p.strs[s.Index].(ast.String))
	case *ir.MakeArrayStmt:
		l[s.Target] = ast.NewArrayWithCapacity(int(s.Capacity))
	case *ir.MakeObjectStmt:
		l[s.Target] = ast.NewObject()
	case *ir.MakeSetStmt:
		l[s.Target] = ast.NewSet()
	case *ir.EqualStmt:
		a, b := st.op(s.A, l), st.op(s.B, l)
		if a == nil || b == nil || ast.Compare(a, b) != 0 {
			return undef, false, nil
		}
	case *ir.NotEqualStmt:
		a, b := st.op(s.A, l), st.op(s.B, l)
		if a == nil || b == nil || ast.Compare(a, b) == 0 {
			return undef, false, nil
		}
	case *ir.IsArrayStmt:
		if _, ok := st.op(s.Source, l).(*ast.Array); !ok {
			return undef, false, nil
		}
	case *ir.IsObjectStmt:
		if _, ok := st.op(s.Source, l).(ast.Object); !ok {
			return undef, false, nil
		}
	case *ir.IsSetStmt:
		if _, ok := st.op(s.Source, l).(ast.Set); !ok {
			return undef, false, nil
		}
	case *ir.IsDefinedStmt:
		if l[s.Source] == nil {
			return undef, false, nil
		}
	case *ir.IsUndefinedStmt:
		if l[s.Source] != nil {
			return undef, false, nil
		}
	case *ir.ArrayAppendStmt:
		a := l[s.Array].(*ast.Array)
		l[s.Array] = a.Append(ast.NewTerm(st.op(s.Value, l)))
	case *ir.ObjectInsertStmt:
		l[s.Object].(ast.Object).Insert(ast.NewTerm(st.op(s.Key, l)), ast.NewTerm(st.op(s.Value, l)))
	case *ir.ObjectInsertOnceStmt:
		obj := l[s.Object].(ast.Object)
		k, v := ast.NewTerm(st.op(s.Key, l)), st.op(s.Value, l)
		if old := obj.Get(k); old != nil && ast.Compare(old.Value, v) != 0 {
			return 0, false, ErrConflict
		}
		obj.Insert(k, ast.NewTerm(v))
	case *ir.ObjectMergeStmt:
		a, okA := l[s.A].(ast.Object)
		b, okB := l[s.B].(ast.Object)
		if !okA || !okB {
			return 0, false, ErrConflict
		}
		m, ok := a.Merge(b)
		if !ok {
			return 0, false, ErrConflict
		}
		l[s.Target] = m
	case *ir.SetAddStmt:
		l[s.Set].(ast.Set).Add(ast.NewTerm(st.op(s.Value, l)))
	case *ir.ResultSetAddStmt:
		st.result = append(st.result, l[s.Value])
	case *ir.NopStmt:
	}
	return next, false, nil
}

func (st *refState) call(name string, args []ast.Value) (ast.Value, error) {
	if err := st.ctx.Err(); err != nil {
		return nil, err
	}
	if c, ok := st.p.calls[name]; ok {
		f, idx := c.f, c.idx
		memo := len(f.Params) == 2
		if memo && st.memo[idx] != nil {
			return st.memo[idx], nil
		}
		base := len(st.stack)
		st.stack = append(st.stack, make([]ast.Value, c.frame)...)
		// The frame is this call's alone until it returns; a later, deeper call that grows
		// the stack moves the frames above it, never this slice's array.
		l := st.stack[base : base+c.frame : base+c.frame]
		defer func() {
			clear(st.stack[base:])
			st.stack = st.stack[:base]
		}()
		for i, p := range f.Params {
			l[p] = args[i]
		}
		var v ast.Value
		for _, b := range f.Blocks {
			_, ret, err := st.block(b, l)
			if err != nil {
				return nil, err
			}
			if ret {
				v = l[f.Return]
				break
			}
		}
		if memo && v != nil {
			st.memo[idx] = v
		}
		return v, nil
	}
	terms := make([]*ast.Term, len(args))
	for i, a := range args {
		terms[i] = ast.NewTerm(a)
	}
	var out ast.Value
	err := st.p.builtin[name](st.bctx, terms, func(t *ast.Term) error { out = t.Value; return nil })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func refDot(src, key ast.Value) ast.Value {
	if o, ok := src.(ast.Object); ok {
		if t := o.Get(ast.NewTerm(key)); t != nil {
			return t.Value
		}
		return nil
	}
	return refDotTerm(src, ast.NewTerm(key))
}

// refDotTerm is refDot with the key already a term.
func refDotTerm(src ast.Value, keyTerm *ast.Term) ast.Value {
	key := keyTerm.Value
	switch s := src.(type) {
	case ast.Object:
		if t := s.Get(keyTerm); t != nil {
			return t.Value
		}
	case *ast.Array:
		n, ok := key.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= s.Len() {
			return nil
		}
		return s.Elem(i).Value
	case ast.Set:
		if s.Contains(keyTerm) {
			return key
		}
	}
	return nil
}

// refUpsert returns v with path set to val, copying each object it passes through.
func refUpsert(v ast.Value, path []ast.Value, val ast.Value) ast.Value {
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
	obj.Insert(k, ast.NewTerm(refUpsert(child, path[1:], val)))
	return obj
}
