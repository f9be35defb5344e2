package planeval

import (
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
)

// constSets finds the set literals of constants that are only ever tested for membership in
// a frame (a func's blocks, or the plan's): `input.operation in {"register", "update"}` is
// planned as a MakeSet, one SetAdd per constant, and a call of internal.member_2, on every
// evaluation, and a read of data below a package with rules tests each key against a set of
// the rules' names (a Dot on the set). Such a set is built here once: its MakeSet assigns the
// built set and its SetAdds are dropped. A set qualifies when its SetAdds follow its MakeSet
// in the same block, add constants, and its local is named by nothing else than such literals,
// member_2's arguments and the source of a Dot (both only read it, and neither passes on a term
// of it), so that nothing can add to the shared set or see it being built.
// frame are the locals the frame names outside its statements (a func's params and return).
func (c *compiler) constSets(blocks []*ir.Block, frame ...ir.Local) (map[*ir.MakeSetStmt]*ast.Term, map[*ir.SetAddStmt]bool) {
	type literal struct {
		make  *ir.MakeSetStmt
		adds  []*ir.SetAddStmt
		terms []*ast.Term
	}
	var found []literal
	refs := map[ir.Local]int{}
	for _, l := range frame {
		refs[l]++
	}
	reads := map[ir.Local]int{}
	known := true
	var walk func(b *ir.Block)
	walk = func(b *ir.Block) {
		for i, s := range b.Stmts {
			known = known && stmtLocals(s, func(l ir.Local) { refs[l]++ })
			switch s := s.(type) {
			case *ir.MakeSetStmt:
				lit := literal{make: s}
				for _, n := range b.Stmts[i+1:] {
					add, ok := n.(*ir.SetAddStmt)
					if !ok || add.Set != s.Target {
						break
					}
					v, err := c.operand(add.Value)
					if err != nil || v.term == nil {
						break
					}
					lit.adds, lit.terms = append(lit.adds, add), append(lit.terms, v.term)
				}
				found = append(found, lit)
			case *ir.CallStmt:
				if s.Func == "internal.member_2" {
					for _, a := range s.Args {
						if l, ok := a.Value.(ir.Local); ok {
							reads[l]++
						}
					}
				}
			case *ir.DotStmt:
				// A Dot on a set is a test for the key, whose answer is the key itself.
				if l, ok := s.Source.Value.(ir.Local); ok {
					reads[l]++
				}
			}
			for _, nested := range nestedBlocks(s) {
				walk(nested)
			}
		}
	}
	for _, b := range blocks {
		walk(b)
	}
	sets, dropped := map[*ir.MakeSetStmt]*ast.Term{}, map[*ir.SetAddStmt]bool{}
	if !known {
		return sets, dropped
	}
	// The planner numbers the locals of each rule body from the same base, so one local may
	// hold a literal in several bodies: it qualifies when every reference to it is one of
	// its literals' statements or a read.
	literalRefs := map[ir.Local]int{}
	for _, lit := range found {
		literalRefs[lit.make.Target] += 1 + len(lit.adds)
	}
	for _, lit := range found {
		l := lit.make.Target
		if refs[l] != literalRefs[l]+reads[l] {
			continue
		}
		sets[lit.make] = ast.NewTerm(ast.NewSet(lit.terms...))
		for _, add := range lit.adds {
			dropped[add] = true
		}
	}
	return sets, dropped
}

// nestedBlocks are the blocks a statement runs.
func nestedBlocks(s ir.Stmt) []*ir.Block {
	switch s := s.(type) {
	case *ir.BlockStmt:
		return s.Blocks
	case *ir.ScanStmt:
		return []*ir.Block{s.Block}
	case *ir.NotStmt:
		return []*ir.Block{s.Block}
	case *ir.WithStmt:
		return []*ir.Block{s.Block}
	}
	return nil
}

// stmtLocals calls f for each local s names (read or written), and reports whether it knows
// s's kind.
func stmtLocals(s ir.Stmt, f func(ir.Local)) bool {
	op := func(o ir.Operand) {
		if l, ok := o.Value.(ir.Local); ok {
			f(l)
		}
	}
	switch s := s.(type) {
	case *ir.ReturnLocalStmt:
		f(s.Source)
	case *ir.CallStmt:
		for _, a := range s.Args {
			op(a)
		}
		f(s.Result)
	case *ir.CallDynamicStmt:
		for _, a := range s.Args {
			f(a)
		}
		for _, p := range s.Path {
			op(p)
		}
		f(s.Result)
	case *ir.BlockStmt, *ir.BreakStmt, *ir.NotStmt, *ir.NopStmt:
	case *ir.DotStmt:
		op(s.Source)
		op(s.Key)
		f(s.Target)
	case *ir.LenStmt:
		op(s.Source)
		f(s.Target)
	case *ir.ScanStmt:
		f(s.Source)
		f(s.Key)
		f(s.Value)
	case *ir.AssignIntStmt:
		f(s.Target)
	case *ir.AssignVarStmt:
		op(s.Source)
		f(s.Target)
	case *ir.AssignVarOnceStmt:
		op(s.Source)
		f(s.Target)
	case *ir.ResetLocalStmt:
		f(s.Target)
	case *ir.MakeNullStmt:
		f(s.Target)
	case *ir.MakeNumberIntStmt:
		f(s.Target)
	case *ir.MakeNumberRefStmt:
		f(s.Target)
	case *ir.MakeArrayStmt:
		f(s.Target)
	case *ir.MakeObjectStmt:
		f(s.Target)
	case *ir.MakeSetStmt:
		f(s.Target)
	case *ir.EqualStmt:
		op(s.A)
		op(s.B)
	case *ir.NotEqualStmt:
		op(s.A)
		op(s.B)
	case *ir.IsArrayStmt:
		op(s.Source)
	case *ir.IsObjectStmt:
		op(s.Source)
	case *ir.IsSetStmt:
		op(s.Source)
	case *ir.IsDefinedStmt:
		f(s.Source)
	case *ir.IsUndefinedStmt:
		f(s.Source)
	case *ir.ArrayAppendStmt:
		op(s.Value)
		f(s.Array)
	case *ir.ObjectInsertStmt:
		op(s.Key)
		op(s.Value)
		f(s.Object)
	case *ir.ObjectInsertOnceStmt:
		op(s.Key)
		op(s.Value)
		f(s.Object)
	case *ir.ObjectMergeStmt:
		f(s.A)
		f(s.B)
		f(s.Target)
	case *ir.SetAddStmt:
		op(s.Value)
		f(s.Set)
	case *ir.WithStmt:
		f(s.Local)
		op(s.Value)
	case *ir.ResultSetAddStmt:
		f(s.Value)
	default:
		return false
	}
	return true
}
