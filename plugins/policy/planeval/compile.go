package planeval

import (
	"errors"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// refused are builtins that need more context than the evaluator provides or whose answer
// is not a function of their arguments.
var refused = map[string]bool{
	"print": true, "internal.print": true, "trace": true, "opa.runtime": true,
	"rego.metadata.chain": true, "rego.metadata.rule": true, "io.jwt.decode_verify": true,
}

// function is a compiled planned func.
type function struct {
	blocks []block
	params []ir.Local
	ret    ir.Local
	// frame is the size of its frame: the locals it names, so that a call takes only those.
	frame int
	// memo: a func of input and data alone (two params) is evaluated once per evaluation,
	// its value kept in state.memo[index].
	memo  bool
	index int
}

// operand is a compiled ir.Operand: a constant term, or else a local.
type operand struct {
	term  *ast.Term
	local int
}

func (o operand) get(l []*ast.Term) *ast.Term {
	if o.term != nil {
		return o.term
	}
	return l[o.local]
}

// compiler turns a policy's statements into instrs, resolving what an evaluation would
// otherwise look up: operands, constant terms, callees and builtins.
type compiler struct {
	strs     []ast.Value
	strTerms []*ast.Term
	funcs    map[string]*function
	builtins map[string]topdown.BuiltinFunc
	prog     *Program
	// frame is the bound on the locals of the plan or func being compiled; sets and dropped
	// its constant set literals (constSets).
	frame   int
	sets    map[*ir.MakeSetStmt]*ast.Term
	dropped map[*ir.SetAddStmt]bool
}

// Prepare compiles p, checking that every statement, operand and builtin of it is one it
// evaluates exactly; it fails (and the caller falls back to topdown) otherwise.
func Prepare(p *ir.Policy) (*Program, error) {
	c, err := newCompiler(p)
	if err != nil {
		return nil, err
	}
	var funcs []*ir.Func
	if p.Funcs != nil {
		funcs = p.Funcs.Funcs
	}
	for _, f := range funcs {
		fn := c.funcs[f.Name]
		c.frame = 0
		c.sets, c.dropped = c.constSets(f.Blocks, append(slices.Clip(f.Params), f.Return)...)
		if fn.blocks, err = c.blocks(f.Blocks); err != nil {
			return nil, err
		}
		for _, l := range f.Params {
			c.local(l)
		}
		c.local(f.Return)
		fn.frame = max(c.frame, int(ir.Unused))
	}
	c.frame = 0
	c.sets, c.dropped = c.constSets(p.Plans.Plans[0].Blocks)
	if c.prog.blocks, err = c.blocks(p.Plans.Plans[0].Blocks); err != nil {
		return nil, err
	}
	c.prog.nlocals = max(c.frame, int(ir.Unused))
	return c.prog, nil
}

// newCompiler resolves p's constants, builtins and funcs: every func exists before any
// body is compiled, so that a call is bound to its callee.
func newCompiler(p *ir.Policy) (*compiler, error) {
	if p.Plans == nil || len(p.Plans.Plans) != 1 {
		return nil, errors.New("planeval: want exactly one plan")
	}
	c := &compiler{funcs: map[string]*function{}, builtins: map[string]topdown.BuiltinFunc{}, prog: &Program{}}
	for _, s := range p.Static.Strings {
		c.strs = append(c.strs, ast.String(s.Value))
		c.strTerms = append(c.strTerms, ast.StringTerm(s.Value))
	}
	for _, b := range p.Static.BuiltinFuncs {
		decl := ast.BuiltinMap[b.Name]
		fn := topdown.GetBuiltin(b.Name)
		if decl == nil || fn == nil || decl.Nondeterministic || refused[b.Name] || decl.Decl.Result() == nil {
			return nil, fmt.Errorf("planeval: builtin %s is not evaluated here", b.Name)
		}
		c.builtins[b.Name] = fn
	}
	if p.Funcs != nil {
		for i, f := range p.Funcs.Funcs {
			c.funcs[f.Name] = &function{params: f.Params, ret: f.Return, memo: len(f.Params) == 2, index: i}
		}
		c.prog.nfuncs = len(p.Funcs.Funcs)
	}
	return c, nil
}

// local counts l in the current frame.
func (c *compiler) local(l ir.Local) {
	c.frame = max(c.frame, int(l)+1)
}

func (c *compiler) block(b *ir.Block) (block, error) {
	out := make(block, 0, len(b.Stmts))
	for _, s := range b.Stmts {
		if add, ok := s.(*ir.SetAddStmt); ok && c.dropped[add] {
			continue
		}
		in, err := c.stmt(s)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

func (c *compiler) blocks(bs []*ir.Block) ([]block, error) {
	out := make([]block, 0, len(bs))
	for _, b := range bs {
		cb, err := c.block(b)
		if err != nil {
			return nil, err
		}
		out = append(out, cb)
	}
	return out, nil
}

func (c *compiler) operand(o ir.Operand) (operand, error) {
	switch v := o.Value.(type) {
	case ir.Local:
		return operand{local: int(v)}, nil
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(c.strTerms) {
			return operand{}, fmt.Errorf("planeval: string constant %d out of range", v)
		}
		return operand{term: c.strTerms[v]}, nil
	case ir.Bool:
		return operand{term: ast.InternedTerm(bool(v))}, nil
	}
	return operand{}, fmt.Errorf("planeval: operand %T is not evaluated here", o.Value)
}

func (c *compiler) operands(os []ir.Operand) ([]operand, error) {
	out := make([]operand, len(os))
	for i, o := range os {
		var err error
		if out[i], err = c.operand(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *compiler) str(i int) (ast.Value, error) {
	if i < 0 || i >= len(c.strs) {
		return nil, fmt.Errorf("planeval: string constant %d out of range", i)
	}
	return c.strs[i], nil
}

// stmt compiles s: the closure does at each evaluation what the statement says, and
// nothing that could be done here.
func (c *compiler) stmt(s ir.Stmt) (instr, error) {
	c.local(maxLocal(s))
	switch s := s.(type) {
	case *ir.ReturnLocalStmt:
		return func(*state, []*ast.Term) int { return ret }, nil
	case *ir.BreakStmt:
		n := int(s.Index)
		return func(*state, []*ast.Term) int { return n }, nil
	case *ir.NopStmt:
		return func(*state, []*ast.Term) int { return next }, nil
	case *ir.BlockStmt:
		bs, err := c.blocks(s.Blocks)
		if err != nil {
			return nil, err
		}
		return func(st *state, l []*ast.Term) int {
			for _, b := range bs {
				switch code := st.run(b, l); {
				case code == ret || code == fail:
					return code
				case code > 0:
					return code - 1
				}
			}
			return next
		}, nil
	case *ir.ScanStmt:
		body, err := c.block(s.Block)
		if err != nil {
			return nil, err
		}
		src, key, val := int(s.Source), int(s.Key), int(s.Value)
		return func(st *state, l []*ast.Term) int { return st.scan(src, key, val, body, l) }, nil
	case *ir.NotStmt:
		body, err := c.block(s.Block)
		if err != nil {
			return nil, err
		}
		return func(st *state, l []*ast.Term) int {
			switch code := st.run(body, l); {
			case code == ret || code == fail:
				return code
			case code == 0:
				return next
			case code == next:
				return 0
			default:
				return code - 1
			}
		}, nil
	case *ir.WithStmt:
		c.prog.usesWith = true
		body, err := c.block(s.Block)
		if err != nil {
			return nil, err
		}
		v, err := c.operand(s.Value)
		if err != nil {
			return nil, err
		}
		path := make([]ast.Value, len(s.Path))
		for i, p := range s.Path {
			if path[i], err = c.str(p); err != nil {
				return nil, err
			}
		}
		local := int(s.Local)
		return func(st *state, l []*ast.Term) int { return st.with(local, path, v, body, l) }, nil
	case *ir.CallStmt:
		return c.call(s)
	case *ir.CallDynamicStmt:
		return nil, errors.New("planeval: dynamic calls are not evaluated here")
	case *ir.DotStmt:
		target := int(s.Target)
		srcLocal, ok := s.Source.Value.(ir.Local)
		if !ok {
			return func(*state, []*ast.Term) int { return 0 }, nil
		}
		src := int(srcLocal)
		key, err := c.operand(s.Key)
		if err != nil {
			return nil, err
		}
		return func(_ *state, l []*ast.Term) int {
			v := dot(l[src], defined(key.get(l)))
			if v == nil {
				return 0
			}
			l[target] = v
			return next
		}, nil
	case *ir.LenStmt:
		src, err := c.operand(s.Source)
		if err != nil {
			return nil, err
		}
		target := int(s.Target)
		return func(_ *state, l []*ast.Term) int {
			var n int
			switch v := value(src.get(l)).(type) {
			case *ast.Array:
				n = v.Len()
			case ast.Object:
				n = v.Len()
			case ast.Set:
				n = v.Len()
			case ast.String:
				// Bytes, as the wasm compiler's opa_value_length. The planner emits a LenStmt
				// only for an array it unifies or a relation's result set; Rego's count() is
				// a call of the builtin, which counts runes (TestCountOfAStringIsRunes).
				n = len(v)
			}
			l[target] = ast.IntNumberTerm(n)
			return next
		}, nil
	case *ir.AssignVarStmt:
		src, err := c.operand(s.Source)
		if err != nil {
			return nil, err
		}
		target := int(s.Target)
		return func(_ *state, l []*ast.Term) int { l[target] = src.get(l); return next }, nil
	case *ir.AssignVarOnceStmt:
		src, err := c.operand(s.Source)
		if err != nil {
			return nil, err
		}
		target := int(s.Target)
		return func(st *state, l []*ast.Term) int {
			v := src.get(l)
			if l[target] != nil && ast.Compare(l[target].Value, value(v)) != 0 {
				st.err = ErrConflict
				return fail
			}
			l[target] = v
			return next
		}, nil
	case *ir.AssignIntStmt:
		return c.constant(s.Target, ast.IntNumberTerm(int(s.Value))), nil
	case *ir.MakeNumberIntStmt:
		return c.constant(s.Target, ast.IntNumberTerm(int(s.Value))), nil
	case *ir.MakeNumberRefStmt:
		str, err := c.str(s.Index)
		if err != nil {
			return nil, err
		}
		return c.constant(s.Target, ast.NewTerm(ast.Number(str.(ast.String)))), nil
	case *ir.MakeNullStmt:
		return c.constant(s.Target, ast.InternedNullTerm), nil
	case *ir.ResetLocalStmt:
		target := int(s.Target)
		return func(_ *state, l []*ast.Term) int { l[target] = nil; return next }, nil
	case *ir.MakeArrayStmt:
		target, capacity := int(s.Target), int(s.Capacity)
		return func(_ *state, l []*ast.Term) int {
			l[target] = ast.NewTerm(ast.NewArrayWithCapacity(capacity))
			return next
		}, nil
	case *ir.MakeObjectStmt:
		target := int(s.Target)
		return func(_ *state, l []*ast.Term) int { l[target] = ast.NewTerm(ast.NewObject()); return next }, nil
	case *ir.MakeSetStmt:
		if t := c.sets[s]; t != nil {
			return c.constant(s.Target, t), nil
		}
		target := int(s.Target)
		return func(_ *state, l []*ast.Term) int { l[target] = ast.NewTerm(ast.NewSet()); return next }, nil
	case *ir.EqualStmt, *ir.NotEqualStmt:
		return c.compare(s)
	case *ir.IsArrayStmt:
		return c.is(s.Source, func(v ast.Value) bool { _, ok := v.(*ast.Array); return ok })
	case *ir.IsObjectStmt:
		return c.is(s.Source, func(v ast.Value) bool { _, ok := v.(ast.Object); return ok })
	case *ir.IsSetStmt:
		return c.is(s.Source, func(v ast.Value) bool { _, ok := v.(ast.Set); return ok })
	case *ir.IsDefinedStmt:
		src := int(s.Source)
		return func(_ *state, l []*ast.Term) int {
			if l[src] == nil {
				return 0
			}
			return next
		}, nil
	case *ir.IsUndefinedStmt:
		src := int(s.Source)
		return func(_ *state, l []*ast.Term) int {
			if l[src] != nil {
				return 0
			}
			return next
		}, nil
	case *ir.ArrayAppendStmt:
		v, err := c.operand(s.Value)
		if err != nil {
			return nil, err
		}
		arr := int(s.Array)
		return func(_ *state, l []*ast.Term) int {
			l[arr] = ast.NewTerm(l[arr].Value.(*ast.Array).Append(defined(v.get(l))))
			return next
		}, nil
	case *ir.ObjectInsertStmt:
		k, v, obj, err := c.insert(s.Key, s.Value, s.Object)
		if err != nil {
			return nil, err
		}
		return func(_ *state, l []*ast.Term) int {
			l[obj].Value.(ast.Object).Insert(defined(k.get(l)), defined(v.get(l)))
			return next
		}, nil
	case *ir.ObjectInsertOnceStmt:
		k, v, obj, err := c.insert(s.Key, s.Value, s.Object)
		if err != nil {
			return nil, err
		}
		return func(st *state, l []*ast.Term) int {
			o := l[obj].Value.(ast.Object)
			key, val := defined(k.get(l)), v.get(l)
			if old := o.Get(key); old != nil && ast.Compare(old.Value, value(val)) != 0 {
				st.err = ErrConflict
				return fail
			}
			o.Insert(key, defined(val))
			return next
		}, nil
	case *ir.ObjectMergeStmt:
		a, b, target := int(s.A), int(s.B), int(s.Target)
		return func(st *state, l []*ast.Term) int {
			oa, okA := value(l[a]).(ast.Object)
			ob, okB := value(l[b]).(ast.Object)
			if !okA || !okB {
				st.err = ErrConflict
				return fail
			}
			m, ok := oa.Merge(ob)
			if !ok {
				st.err = ErrConflict
				return fail
			}
			l[target] = ast.NewTerm(m)
			return next
		}, nil
	case *ir.SetAddStmt:
		v, err := c.operand(s.Value)
		if err != nil {
			return nil, err
		}
		set := int(s.Set)
		return func(_ *state, l []*ast.Term) int {
			l[set].Value.(ast.Set).Add(defined(v.get(l)))
			return next
		}, nil
	case *ir.ResultSetAddStmt:
		src := int(s.Value)
		return func(st *state, l []*ast.Term) int {
			st.result = append(st.result, value(l[src]))
			return next
		}, nil
	}
	return nil, fmt.Errorf("planeval: statement %T is not evaluated here", s)
}

// constant sets target to t, built once.
func (c *compiler) constant(target ir.Local, t *ast.Term) instr {
	return func(_ *state, l []*ast.Term) int { l[target] = t; return next }
}

// call binds a call to its planned func or builtin.
func (c *compiler) call(s *ir.CallStmt) (instr, error) {
	args, err := c.operands(s.Args)
	if err != nil {
		return nil, err
	}
	result := int(s.Result)
	if f, ok := c.funcs[s.Func]; ok {
		if len(args) != len(f.params) {
			return nil, fmt.Errorf("planeval: %s called with %d arguments, wants %d", s.Func, len(args), len(f.params))
		}
		return func(st *state, l []*ast.Term) int { return st.call(f, args, result, l) }, nil
	}
	fn, ok := c.builtins[s.Func]
	if !ok {
		return nil, fmt.Errorf("planeval: call of unknown function %s", s.Func)
	}
	c.prog.maxArgs = max(c.prog.maxArgs, len(args))
	return func(st *state, l []*ast.Term) int { return st.callBuiltin(fn, args, result, l) }, nil
}

// compare is EqualStmt and NotEqualStmt: undefined when an operand is, or when the values
// compare (un)equal.
func (c *compiler) compare(s ir.Stmt) (instr, error) {
	var oa, ob ir.Operand
	var equal bool
	switch s := s.(type) {
	case *ir.EqualStmt:
		oa, ob, equal = s.A, s.B, true
	case *ir.NotEqualStmt:
		oa, ob = s.A, s.B
	}
	a, err := c.operand(oa)
	if err != nil {
		return nil, err
	}
	b, err := c.operand(ob)
	if err != nil {
		return nil, err
	}
	return func(_ *state, l []*ast.Term) int {
		ta, tb := a.get(l), b.get(l)
		if ta == nil || tb == nil || (ast.Compare(ta.Value, tb.Value) == 0) != equal {
			return 0
		}
		return next
	}, nil
}

// is is the IsArray, IsObject and IsSet statements.
func (c *compiler) is(o ir.Operand, ok func(ast.Value) bool) (instr, error) {
	src, err := c.operand(o)
	if err != nil {
		return nil, err
	}
	return func(_ *state, l []*ast.Term) int {
		if !ok(value(src.get(l))) {
			return 0
		}
		return next
	}, nil
}

func (c *compiler) insert(k, v ir.Operand, obj ir.Local) (operand, operand, int, error) {
	ko, err := c.operand(k)
	if err != nil {
		return operand{}, operand{}, 0, err
	}
	vo, err := c.operand(v)
	if err != nil {
		return operand{}, operand{}, 0, err
	}
	return ko, vo, int(obj), nil
}

// maxLocal is a bound on the locals a statement names (its targets are enough: a local is
// written before it is read).
func maxLocal(s ir.Stmt) ir.Local {
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
