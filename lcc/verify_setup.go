package lcc

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// newMachine sets up the agents and their first state.
func newMachine(prog *Program, specs []AgentSpec, dom *Domain) (*machine, *mState, error) {
	m := &machine{prog: prog, byID: map[string]int{}, defIDs: map[any]int{}, vars: map[Def]map[string]bool{}, reached: map[*Step]bool{}, initial: map[string]bool{}}
	for _, k := range prog.Model.InitialRoles() {
		m.initial[k] = true
	}
	m.indexDefs()
	declared := Known{}
	knowledge := map[string][]Term{}
	for _, a := range specs {
		if _, dup := m.byID[a.ID]; dup {
			return nil, nil, fmt.Errorf("lcc: agent %s is given twice", a.ID)
		}
		m.byID[a.ID] = len(m.specs)
		m.specs = append(m.specs, mAgentSpec{id: a.ID, entry: a.Role})
		knowledge[a.ID] = append(knowledge[a.ID], a.Knowledge...)
		for _, f := range a.Knowledge {
			if n, ar, ok := Functor(f); ok {
				declared[keyOf(n, ar)] = ConstraintInfo{Name: n, Arity: ar}
			}
		}
	}
	s := &mState{}
	for i := range m.specs {
		sp := &m.specs[i]
		reg, dreg := NewRegistry(), NewRegistry()
		ag := &mAgent{idx: i}
		if dom != nil {
			for key, rs := range dom.rules {
				n, ar, _ := Functor(rs[0].head)
				if err := reg.Register(n, ar, "domain", m.oracle(ag, key, rs)); err != nil {
					return nil, nil, err
				}
			}
		}
		m.domainBuiltins(dreg, dom, i)
		node := NewNode(NodeConfig{ID: sp.id, Registry: reg, Knowledge: knowledge[sp.id], Declared: declared})
		sp.interp = &agent{node: node, prog: prog, iid: "verify", entry: sp.entry}
		dnode := NewNode(NodeConfig{ID: sp.id, Registry: dreg, Knowledge: knowledge[sp.id], Declared: declared})
		if dom != nil {
			dnode.rules, dnode.domainFile = dom.rules, dom.File
		}
		sp.dom = &agent{node: dnode, prog: prog, iid: "verify", entry: sp.entry}
		start := &Step{Event: &RoleChange{Agent: &Agent{Role: sp.entry, ID: &Atom{Name: sp.id}}}}
		ag.root = &mThread{k: []frame{{kind: fDef, def: start, tail: true}}, role: sp.entry}
		s.agents = append(s.agents, ag)
	}
	// Each agent's opening, up to its first receive, is run at once when it
	// is certain: no constraint with a choice, no message sent. A responder
	// waiting for the message that starts it is where every run begins.
	for i := range s.agents {
		ns, evs, ch := m.apply(s, trans{agent: i, kind: tRun}, nil)
		certain := len(ch.counts) == 0 && ns.agents[i].status == running
		for _, e := range evs {
			certain = certain && e.Kind != "send"
		}
		if certain {
			s = ns
		}
	}
	return m, s, nil
}

// domainBuiltins gives domain rules agents(Role, Ids) and self(Id).
func (m *machine) domainBuiltins(reg *Registry, dom *Domain, self int) {
	if dom == nil || dom.rules["agents/2"] == nil {
		reg.MustRegister("agents", 2, "agents(Role, Ids): the other verified agents that play Role", func(_ context.Context, g *Goal) (bool, error) {
			var ids []Term
			for j, sp := range m.specs {
				var tr Trail
				if j != self && Unify(instantiate(sp.entry, map[string]*Ref{}), g.Args[0], &tr) {
					ids = append(ids, &Atom{Name: sp.id})
				}
				tr.Undo(0)
			}
			return g.Unify(1, L(ids...)), nil
		})
	}
	if dom == nil || dom.rules["self/1"] == nil {
		reg.MustRegister("self", 1, "self(Id): this agent's id", func(_ context.Context, g *Goal) (bool, error) {
			return g.Unify(0, &Atom{Name: m.specs[self].id}), nil
		})
	}
}

func (m *machine) indexDefs() {
	for _, c := range m.prog.Model.Clauses {
		walkDefs(c.Body, func(d Def) {
			m.defIDs[d] = len(m.defIDs) + 1
			if st, ok := d.(*Step); ok {
				m.steps = append(m.steps, st)
				if r, ok := st.Event.(*Recv); ok {
					m.defIDs[r] = len(m.defIDs) + 1
				}
			}
		})
	}
}

func (v *verifier) symmetryGroups() {
	m := v.m
	named := func(id string) bool {
		if v.cfg.Properties.mentions(id) {
			return true
		}
		for _, f := range m.prog.Model.Facts {
			if mentionsAtom(f.Term, id) {
				return true
			}
		}
		for _, st := range m.steps {
			if stepMentions(st, id) {
				return true
			}
		}
		for _, c := range m.prog.Model.Clauses {
			if mentionsAtom(c.Head.Role, id) || mentionsAtom(c.Head.ID, id) {
				return true
			}
		}
		if v.cfg.Domain != nil {
			for _, rs := range v.cfg.Domain.rules {
				for _, r := range rs {
					if mentionsAtom(r.head, id) || mentionsAtom(&Compound{Functor: "b", Args: []Term{r.reason}}, id) || litsMention(r.body, id) {
						return true
					}
				}
			}
		}
		for _, a := range v.cfg.Agents {
			for _, k := range a.Knowledge {
				if mentionsAtom(k, id) {
					return true
				}
			}
		}
		return false
	}
	byKey := map[string][]int{}
	var keys []string
	for i, a := range v.cfg.Agents {
		if named(a.ID) {
			continue
		}
		var kb strings.Builder
		kb.WriteString(FormatTerm(a.Role))
		for _, k := range a.Knowledge {
			kb.WriteString("|" + FormatTerm(k))
		}
		k := kb.String()
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	for _, k := range keys {
		if g := byKey[k]; len(g) > 1 {
			sort.Slice(g, func(i, j int) bool { return m.specs[g[i]].id < m.specs[g[j]].id })
			v.groups = append(v.groups, g)
			var ids []string
			for _, i := range g {
				ids = append(ids, m.specs[i].id)
			}
			v.report.Symmetry = append(v.report.Symmetry, strings.Join(ids, ", "))
			if v.blank == nil {
				v.blank = map[string]string{}
			}
			for _, id := range ids {
				v.blank[id] = "?"
			}
		}
	}
}

func stepMentions(st *Step, id string) bool {
	for _, t := range stepTerms(st) {
		if mentionsAtom(t, id) {
			return true
		}
	}
	return litsMention(st.Cond, id)
}

// stepTerms are the terms of a step's event: the message and the agent
// sent to or received from, or the role taken on.
func stepTerms(st *Step) []Term {
	switch ev := st.Event.(type) {
	case *Send:
		return []Term{ev.Msg, ev.To.Role, ev.To.ID}
	case *Recv:
		if ev.Within != nil {
			return []Term{ev.Msg, ev.From.Role, ev.From.ID, ev.Within}
		}
		return []Term{ev.Msg, ev.From.Role, ev.From.ID}
	case *RoleChange:
		return []Term{ev.Agent.Role, ev.Agent.ID}
	}
	return nil
}

func litsMention(lits []Lit, id string) bool {
	for _, l := range lits {
		if mentionsAtom(litTerm(l), id) {
			return true
		}
	}
	return false
}

// litTerm is a literal's terms gathered in one term, for searching.
func litTerm(l Lit) Term {
	switch x := l.(type) {
	case *Call:
		return x.Term
	case *Cmp:
		return &Compound{Functor: "c", Args: []Term{x.L, x.R}}
	case *Is:
		return &Compound{Functor: "c", Args: []Term{x.Var, x.Expr}}
	case *Not:
		var ts []Term
		for _, s := range x.Cond {
			ts = append(ts, litTerm(s))
		}
		return L(ts...)
	case *Disj:
		var ts []Term
		for _, alt := range x.Alts {
			for _, s := range alt {
				ts = append(ts, litTerm(s))
			}
		}
		return L(ts...)
	}
	return &Nil{}
}
