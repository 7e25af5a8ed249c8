package lcc

import "strings"

// termVars adds the named variables of t to set.
func termVars(t Term, set map[string]bool) {
	switch x := t.(type) {
	case *Var:
		if x.Name != "_" {
			set[x.Name] = true
		}
	case *Compound:
		for _, a := range x.Args {
			termVars(a, set)
		}
	case *Cons:
		termVars(x.Head, set)
		termVars(x.Tail, set)
	}
}

// condBinds adds the variables a condition may bind.
func condBinds(lits []Lit, set map[string]bool) {
	for _, l := range lits {
		switch x := l.(type) {
		case *Call:
			termVars(x.Term, set)
		case *Cmp:
			if x.Op == "=" {
				termVars(x.L, set)
				termVars(x.R, set)
			}
		case *Is:
			termVars(x.Var, set)
		case *Disj:
			for _, a := range x.Alts {
				condBinds(a, set)
			}
		}
	}
}

func copySet(s map[string]bool) map[string]bool {
	out := make(map[string]bool, len(s))
	for k := range s {
		out[k] = true
	}
	return out
}

// stageBindings: every variable of a sent message, and the id of the agent
// it goes to, can be bound by an earlier step.
func (c *checker) stageBindings() {
	for _, cl := range c.m.Clauses {
		bound := map[string]bool{}
		termVars(cl.Head.Role, bound)
		termVars(cl.Head.ID, bound)
		c.bindings(cl.Body, bound, true)
	}
}

func (c *checker) bindings(d Def, bound map[string]bool, report bool) map[string]bool {
	switch x := d.(type) {
	case *Seq:
		for _, s := range x.Steps {
			bound = c.bindings(s, bound, report)
		}
		return bound
	case *Or:
		out := copySet(bound)
		for _, a := range x.Alts {
			for k := range c.bindings(a, copySet(bound), report) {
				out[k] = true
			}
		}
		return out
	case *Par:
		all := copySet(bound)
		for _, b := range x.Branches {
			for k := range c.bindings(b, copySet(bound), false) {
				all[k] = true
			}
		}
		if report {
			for _, b := range x.Branches {
				c.bindings(b, copySet(all), true)
			}
		}
		return all
	case *Group:
		return c.bindings(x.Def, bound, report)
	case *Step:
		switch ev := x.Event.(type) {
		case *Send:
			condBinds(x.Cond, bound)
			if report {
				c.reportUnbound(ev.Msg, bound, "in message %s", FormatTerm(ev.Msg))
				c.reportUnbound(ev.To.ID, bound, "as the id of the agent a message is sent to")
			}
		case *Recv:
			termVars(ev.Msg, bound)
			termVars(ev.From.Role, bound)
			termVars(ev.From.ID, bound)
			condBinds(x.Cond, bound)
		case *Null:
			condBinds(x.Cond, bound)
		case *RoleChange:
			condBinds(x.Cond, bound)
			termVars(ev.Agent.Role, bound)
			termVars(ev.Agent.ID, bound)
		}
	}
	return bound
}

func (c *checker) reportUnbound(t Term, bound map[string]bool, format string, args ...any) {
	var visit func(Term)
	visit = func(t Term) {
		switch x := t.(type) {
		case *Var:
			if x.Name == "_" {
				c.errorf(x.Pos, "anonymous variable _ is sent "+format+"; a sent message must be ground", args...)
			} else if !bound[x.Name] {
				c.errorf(x.Pos, "variable %s is sent "+format+" but no earlier step can bind it", append([]any{x.Name}, args...)...)
				bound[x.Name] = true // report once
			}
		case *Compound:
			for _, a := range x.Args {
				visit(a)
			}
		case *Cons:
			visit(x.Head)
			visit(x.Tail)
		}
	}
	visit(t)
}

// canExit reports whether some path through d closes without taking on a
// role for which loops reports true.
func canExit(d Def, loops func(key string) bool) bool {
	switch x := d.(type) {
	case *Seq:
		for _, s := range x.Steps {
			if !canExit(s, loops) {
				return false
			}
		}
		return true
	case *Or:
		for _, a := range x.Alts {
			if canExit(a, loops) {
				return true
			}
		}
		return false
	case *Par:
		for _, b := range x.Branches {
			if !canExit(b, loops) {
				return false
			}
		}
		return true
	case *Group:
		return canExit(x.Def, loops)
	case *Step:
		if rc, ok := x.Event.(*RoleChange); ok {
			return !loops(RoleKey(rc.Agent.Role))
		}
	}
	return true
}

// stageRecursion warns about roles that always take themselves on again:
// a recursive role with no exit, and a ring of roles (ping takes on pong,
// pong takes on ping) none of which has a way out of the ring.
func (c *checker) stageRecursion() {
	f := c.flow()
	rings := map[int][]*Clause{}
	var order []int
	for _, cl := range c.m.Clauses {
		k := RoleKey(cl.Head.Role)
		if c.clauses[k] != cl {
			continue
		}
		ci, ok := f.comp[k]
		if !ok {
			continue
		}
		if _, seen := rings[ci]; !seen {
			order = append(order, ci)
		}
		rings[ci] = append(rings[ci], cl)
	}
	for _, ci := range order {
		members := rings[ci]
		inRing := func(key string) bool { cj, ok := f.comp[key]; return ok && cj == ci }
		recursive := len(members) > 1
		if !recursive {
			k := RoleKey(members[0].Head.Role)
			walkSteps(members[0].Body, func(s *Step) {
				if rc, ok := s.Event.(*RoleChange); ok && RoleKey(rc.Agent.Role) == k {
					recursive = true
				}
			})
		}
		if !recursive {
			continue
		}
		exits := false
		for _, cl := range members {
			exits = exits || canExit(cl.Body, inRing)
		}
		if exits {
			continue
		}
		if len(members) == 1 {
			c.warnf(members[0].Pos, "recursive role %s has no exit: every path takes it on again", roleName(RoleKey(members[0].Head.Role)))
			continue
		}
		names := make([]string, len(members))
		for i, cl := range members {
			names[i] = roleName(RoleKey(cl.Head.Role))
		}
		for _, cl := range members {
			c.warnf(cl.Pos, "roles %s take each other on with no exit: every path from %s takes one of them on again", strings.Join(names, ", "), roleName(RoleKey(cl.Head.Role)))
		}
	}
}

// opening returns the first step that runs when d starts, or nil when d
// starts with several things at once.
func opening(d Def) *Step {
	for {
		switch x := d.(type) {
		case *Seq:
			d = x.Steps[0]
		case *Group:
			d = x.Def
		case *Step:
			return x
		default:
			return nil
		}
	}
}

// alwaysTaken reports whether an alternative is certain to be taken when
// it is tried: it opens with a send or null that has no condition.
func alwaysTaken(d Def) bool {
	s := opening(d)
	if s == nil || len(s.Cond) > 0 {
		return false
	}
	switch s.Event.(type) {
	case *Send, *Null:
		return true
	}
	return false
}

// stageAlternatives warns about or-alternatives that can never be chosen.
func (c *checker) stageAlternatives() {
	var visit func(Def)
	visit = func(d Def) {
		switch x := d.(type) {
		case *Or:
			for i, a := range x.Alts {
				visit(a)
				if r := leadingRecv(a); r != nil && r.Within == nil {
					// the or waits for this receive, together with the
					// receives after it: a later alternative that does not
					// open with a receive is never tried
					for _, later := range x.Alts[i+1:] {
						if leadingRecv(later) == nil {
							c.warnf(later.defPos(), "this alternative can never be chosen: the receive before it has no deadline (add within), so the or waits for a message")
						}
					}
				}
				if alwaysTaken(a) && i < len(x.Alts)-1 {
					for _, later := range x.Alts[i+1:] {
						c.warnf(later.defPos(), "this alternative can never be chosen: the one before it is always taken")
					}
					for _, later := range x.Alts[i+1:] {
						visit(later)
					}
					return
				}
			}
		case *Par:
			for _, b := range x.Branches {
				visit(b)
			}
		case *Seq:
			for _, s := range x.Steps {
				visit(s)
			}
		case *Group:
			visit(x.Def)
		}
	}
	for _, cl := range c.m.Clauses {
		visit(cl.Body)
	}
}

// stageReachability warns about clauses that no initial role can reach,
// through role changes or messages.
func (c *checker) stageReachability() {
	initial := c.m.InitialRoles()
	if len(initial) == 0 {
		if len(c.m.Clauses) > 0 {
			c.warnf(c.m.Clauses[0].Pos, "no role is declared initial: r(Role, initial)")
		}
		return
	}
	seen := map[string]bool{}
	queue := append([]string(nil), initial...)
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		if seen[k] {
			continue
		}
		seen[k] = true
		if cl := c.clauses[k]; cl != nil {
			walkSteps(cl.Body, func(s *Step) {
				switch ev := s.Event.(type) {
				case *RoleChange:
					queue = append(queue, RoleKey(ev.Agent.Role))
				case *Send:
					queue = append(queue, RoleKey(ev.To.Role))
				}
			})
		}
	}
	for _, cl := range c.m.Clauses {
		if k := RoleKey(cl.Head.Role); k != "" && !seen[k] {
			c.warnf(cl.Pos, "clause for role %s cannot be reached from any initial role", roleName(k))
		}
	}
}
