package lcc

// solve solves a conjunction left to right with backtracking and keeps the
// bindings of the first complete answer.
func (a *agent) solve(x *xctx, lits []Lit, env map[string]*Ref) (bool, error) {
	return a.conj(x, lits, env, func() (bool, error) { return true, nil })
}

func (a *agent) conj(x *xctx, lits []Lit, env map[string]*Ref, k func() (bool, error)) (bool, error) {
	if len(lits) == 0 {
		return k()
	}
	rest := func() (bool, error) { return a.conj(x, lits[1:], env, k) }
	return a.lit(x, lits[0], env, rest)
}

func (a *agent) lit(x *xctx, l Lit, env map[string]*Ref, k func() (bool, error)) (bool, error) {
	if err := x.ctx.Err(); err != nil {
		return false, ctxFailure(err)
	}
	tr := &x.trail
	switch n := l.(type) {
	case *Call:
		return a.call(x, instantiate(n.Term, env), k)
	case *Cmp:
		lt, rt := instantiate(n.L, env), instantiate(n.R, env)
		switch n.Op {
		case "=":
			return unifyThen(lt, rt, tr, k)
		case "\\=":
			mark := tr.Mark()
			if Unify(lt, rt, tr) {
				tr.Undo(mark)
				return false, nil
			}
			return k()
		case "==":
			if !Equal(lt, rt) {
				return false, nil
			}
			return k()
		case "\\==":
			if Equal(lt, rt) {
				return false, nil
			}
			return k()
		}
		ok, err := compare(n.Op, lt, rt)
		if err != nil {
			return false, failf("%s: %v", FormatCond([]Lit{&Cmp{Op: n.Op, L: lt, R: rt}}), err)
		}
		if !ok {
			return false, nil
		}
		return k()
	case *Is:
		e := instantiate(n.Expr, env)
		v, err := evalArith(e, 0)
		if err != nil {
			return false, failf("%s is %s: %v", FormatTerm(instantiate(n.Var, env)), FormatTerm(e), err)
		}
		return unifyThen(instantiate(n.Var, env), v, tr, k)
	case *Not:
		mark := tr.Mark()
		ok, err := a.conj(x, n.Cond, env, func() (bool, error) { return true, nil })
		tr.Undo(mark)
		if err != nil || ok {
			return false, err
		}
		return k()
	case *Disj:
		for _, alt := range n.Alts {
			mark := tr.Mark()
			ok, err := a.conj(x, alt, env, k)
			if ok || err != nil {
				return ok, err
			}
			tr.Undo(mark)
		}
		return false, nil
	}
	return false, failf("internal: unknown literal %T", l)
}

// call solves one constraint: a builtin, a registered Go function, or the
// model's facts and then the agent's knowledge.
func (a *agent) call(x *xctx, t Term, k func() (bool, error)) (bool, error) {
	tr := &x.trail
	key := Key(t)
	var args []Term
	if c, ok := Deref(t).(*Compound); ok {
		args = c.Args
	}
	if b, ok := builtins[key]; ok {
		ok, err := b(args, tr, k)
		if err != nil {
			if _, isF := err.(*failure); !isF {
				err = failf("%s: %v", FormatTerm(t), err)
			}
		}
		return ok, err
	}
	if rs, ok := a.node.rules[key]; ok {
		return a.callRules(x, t, rs, k)
	}
	if c, ok := a.node.cfg.Registry.lookup(key); ok {
		mark := tr.Mark()
		g := &Goal{Args: args, Agent: a.node.cfg.ID, Interaction: a.iid, Policy: a.prog.Ref, Program: a.prog, tr: tr}
		ok, err := c.Fn(x.ctx, g)
		if err != nil {
			tr.Undo(mark)
			if cerr := x.ctx.Err(); cerr != nil {
				return false, ctxFailure(cerr)
			}
			return false, failf("constraint %s: %v", FormatTerm(t), err)
		}
		if !ok {
			tr.Undo(mark)
			return false, nil
		}
		ok, err = k()
		if !ok || err != nil {
			tr.Undo(mark)
		}
		return ok, err
	}
	facts, known := a.prog.facts[key], a.node.knowledge[key]
	if facts == nil && known == nil {
		if _, declared := a.node.cfg.Declared[key]; declared {
			return false, nil // known to the interaction, not to this agent: no fact unifies
		}
		return false, failf("unknown constraint %s", key)
	}
	for _, set := range [][]Term{facts, known} {
		for _, f := range set {
			if ok, err := unifyThen(t, f, tr, k); ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

// callRules solves t with Horn rules (a verification domain's helpers):
// every rule whose head unifies, every solution of its body, in order.
func (a *agent) callRules(x *xctx, t Term, rs []*rule, k func() (bool, error)) (bool, error) {
	tr := &x.trail
	for _, r := range rs {
		env := map[string]*Ref{}
		mark := tr.Mark()
		if Unify(t, instantiate(r.head, env), tr) {
			if ok, err := a.conj(x, r.body, env, k); ok || err != nil {
				return ok, err
			}
		}
		tr.Undo(mark)
	}
	return false, nil
}
