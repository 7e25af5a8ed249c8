package lcc

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// A property file states what every run of a model must (or may) do, as
// monitors over the events of a run. Events are terms:
//
//	send(From, To, Msg)   receive(Agent, From, Msg)   expire(Agent, Msg)
//	call(Agent, C)        fail(Agent, C)              role(Agent, Role)
//	end(Agent, Status)    (Status: closed, failed or timed_out)
//
// where call and fail are a domain constraint that succeeded (with its
// bindings) or failed. Three kinds of property, each ending in ".":
//
//	never NAME :: P1 and P2 ... [<- Cond].
//	    no run has distinct events matching every Pi (in any order) with
//	    Cond holding: never double_award :: send(_, A, award(VM, _, _))
//	    and send(_, B, award(VM, _, _)) <- A \= B.
//	after NAME :: P eventually Q1 or Q2 ... .
//	    every event matching P is followed, before the run ends, by one
//	    matching some Qi (variables shared with P keep their values).
//	sometimes NAME :: P [<- Cond].
//	    some run has such an event: a property that cannot pass because
//	    nothing ever happens.
type Property struct {
	Name  string
	Kind  string // never, after, sometimes
	Pos   Pos
	Pats  []Term // never: the events; after: the trigger; sometimes: the event
	Cond  []Lit
	Then  []Term // after: the events that discharge it
	vars  []string
	file  *File
	where string
}

// Properties is a parsed property file.
type Properties struct {
	File *File
	List []*Property
}

// ParseProperties parses a property file. Errors carry line:col.
func ParseProperties(name string, src []byte) (*Properties, error) {
	f := NewFile(name, src)
	p := &parser{file: f}
	sc := &scanner{src: src, file: f, errs: &p.errs}
	p.toks = sc.scanAll()
	ps := &Properties{File: f}
	names := map[string]bool{}
	p.items(func() {
		t := p.tok()
		kind := t.text
		if t.kind != tIdent || (kind != "never" && kind != "after" && kind != "sometimes") {
			p.fail(t.pos, "expected never, after or sometimes, found %s", describe(t))
		}
		p.next()
		nt := p.tok()
		if nt.kind != tIdent || keywords[nt.text] {
			p.fail(nt.pos, "expected the property's name, found %s", describe(nt))
		}
		p.next()
		if names[nt.text] {
			p.errorf(nt.pos, "property %s is defined twice", nt.text)
		}
		names[nt.text] = true
		p.expect("::")
		pr := &Property{Name: nt.text, Kind: kind, Pos: t.pos, file: f}
		pr.Pats = append(pr.Pats, p.pattern())
		switch kind {
		case "never":
			for p.isKw("and") {
				p.next()
				pr.Pats = append(pr.Pats, p.pattern())
			}
		case "after":
			if e := p.tok(); e.kind != tIdent || e.text != "eventually" {
				p.fail(e.pos, "expected eventually after the trigger of an after property, found %s", describe(e))
			}
			p.next()
			pr.Then = append(pr.Then, p.pattern())
			for p.isKw("or") {
				p.next()
				pr.Then = append(pr.Then, p.pattern())
			}
		}
		if kind != "after" && p.is("<-") {
			p.next()
			pr.Cond = p.cond()
		}
		p.expect(".")
		pr.where = f.Position(pr.Pos).String()
		pr.vars = propertyVars(pr)
		ps.List = append(ps.List, pr)
	})
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	return ps, nil
}

var eventArity = map[string]int{"send": 3, "receive": 3, "call": 2, "fail": 2, "role": 2, "expire": 2, "end": 2}

func (p *parser) pattern() Term {
	pos := p.tok().pos
	t := p.expr()
	c, ok := t.(*Compound)
	if !ok || eventArity[c.Functor] != len(c.Args) {
		p.fail(pos, "expected an event: send(From, To, Msg), receive(Agent, From, Msg), call(Agent, C), fail(Agent, C), role(Agent, R), expire(Agent, Msg) or end(Agent, Status); found %s", termSummary(t))
	}
	return t
}

func propertyVars(pr *Property) []string {
	seen := map[string]bool{}
	var out []string
	var walk func(t Term)
	walk = func(t Term) {
		switch x := t.(type) {
		case *Var:
			if x.Name != "_" && !seen[x.Name] {
				seen[x.Name] = true
				out = append(out, x.Name)
			}
		case *Compound:
			for _, a := range x.Args {
				walk(a)
			}
		case *Cons:
			walk(x.Head)
			walk(x.Tail)
		}
	}
	for _, t := range append(append([]Term(nil), pr.Pats...), pr.Then...) {
		walk(t)
	}
	return out
}

// Names of the agents a property file mentions (atoms in patterns), to
// turn symmetry off when it names one.
func (ps *Properties) mentions(id string) bool {
	if ps == nil {
		return false
	}
	for _, pr := range ps.List {
		for _, t := range append(append([]Term(nil), pr.Pats...), pr.Then...) {
			if mentionsAtom(t, id) {
				return true
			}
		}
	}
	return false
}

func mentionsAtom(t Term, id string) bool {
	switch x := Deref(t).(type) {
	case *Atom:
		return x.Name == id
	case *Str:
		return x.V == id
	case *Compound:
		for _, a := range x.Args {
			if mentionsAtom(a, id) {
				return true
			}
		}
	case *Cons:
		return mentionsAtom(x.Head, id) || mentionsAtom(x.Tail, id)
	}
	return false
}

// monState is one property's monitor: for never, the partial matches
// (which patterns matched, with the variables' values); for after, the
// obligations still open.
type monState struct {
	items []monItem
}

type monItem struct {
	mask uint64
	vals []Term // the property's variables in order; _ when unbound
	key  string
}

func (it *monItem) setKey() {
	it.key = fmt.Sprintf("%x:%s", it.mask, FormatTerm(&Compound{Functor: "v", Args: append([]Term{&Atom{Name: "x"}}, it.vals...)}))
}

// shape is what an event or a pattern is at a glance: its kind and the
// name/arity of its last argument (the message or constraint), so that
// most events are told apart from a pattern without unifying.
func shape(t Term) (string, string) {
	c, ok := t.(*Compound)
	if !ok || len(c.Args) == 0 {
		return "", ""
	}
	return c.Functor, Key(c.Args[len(c.Args)-1])
}

func mayMatch(pat, ev Term) bool {
	pk, pi := shape(pat)
	ek, ei := shape(ev)
	return pk == ek && (pi == "" || pi == ei)
}

// bind matches an event against a pattern under a monitor item's values,
// and returns the new values, or false.
func (pr *Property) bind(vals []Term, pat, ev Term) ([]Term, map[string]*Ref, bool) {
	if !mayMatch(pat, ev) {
		return nil, nil, false
	}
	env := map[string]*Ref{}
	var tr Trail
	for i, name := range pr.vars {
		r := NewRef(name)
		env[name] = r
		if vals != nil {
			if _, unbound := vals[i].(*Var); !unbound {
				r.Val = vals[i]
			}
		}
	}
	if !Unify(instantiate(pat, env), ev, &tr) {
		return nil, nil, false
	}
	out := make([]Term, len(pr.vars))
	for i, name := range pr.vars {
		out[i] = Export(env[name])
	}
	return out, env, true
}

func (m *machine) condHolds(pr *Property, env map[string]*Ref) bool {
	if len(pr.Cond) == 0 {
		return true
	}
	a := m.specs[0].interp
	x := &xctx{ctx: context.Background()}
	ok, err := a.solve(x, pr.Cond, env)
	return ok && err == nil
}

// observe runs the monitors over a transition's events. It returns the
// new monitor states, the never-properties violated, and the sometimes
// properties witnessed.
func (m *machine) observe(props []*Property, mons []monState, events []VerifyEvent) ([]monState, []int, []int) {
	if len(props) == 0 || len(events) == 0 {
		return mons, nil, nil
	}
	evs := make([]Term, len(events))
	for i, e := range events {
		evs[i] = e.monitorTerm()
	}
	var out []monState
	var bad, seen []int
	for pi, pr := range props {
		items := mons[pi].items
		changed := false
		for _, ev := range evs {
			if !pr.mayConcern(ev) {
				continue
			}
			switch pr.Kind {
			case "sometimes":
				if _, env, ok := pr.bind(nil, pr.Pats[0], ev); ok && m.condHolds(pr, env) {
					seen = append(seen, pi)
				}
			case "never":
				full := uint64(1)<<len(pr.Pats) - 1
				next := items
				for _, it := range append([]monItem{{}}, items...) {
					for j, pat := range pr.Pats {
						if it.mask&(1<<j) != 0 {
							continue
						}
						vals, env, ok := pr.bind(it.vals, pat, ev)
						if !ok {
							continue
						}
						ni := monItem{mask: it.mask | 1<<j, vals: vals}
						if ni.mask == full {
							if m.condHolds(pr, env) {
								bad = append(bad, pi)
							}
							continue
						}
						ni.setKey()
						next = addItem(next, ni)
						changed = true
					}
				}
				items = next
			case "after":
				var kept []monItem
				for _, it := range items {
					done := false
					for _, q := range pr.Then {
						if _, _, ok := pr.bind(it.vals, q, ev); ok {
							done = true
							break
						}
					}
					if done {
						changed = true
					} else {
						kept = append(kept, it)
					}
				}
				items = kept
				if vals, _, ok := pr.bind(nil, pr.Pats[0], ev); ok {
					ni := monItem{vals: vals}
					ni.setKey()
					items = addItem(items, ni)
					changed = true
				}
			}
		}
		if changed {
			if out == nil {
				out = append([]monState(nil), mons...)
			}
			out[pi] = monState{items: items}
		}
	}
	if out == nil {
		out = mons
	}
	return out, bad, seen
}

// mayConcern reports whether an event could match any of a property's
// patterns, at a glance.
func (pr *Property) mayConcern(ev Term) bool {
	for _, p := range pr.Pats {
		if mayMatch(p, ev) {
			return true
		}
	}
	for _, p := range pr.Then {
		if mayMatch(p, ev) {
			return true
		}
	}
	return false
}

func addItem(items []monItem, it monItem) []monItem {
	i := sort.Search(len(items), func(i int) bool { return items[i].key >= it.key })
	if i < len(items) && items[i].key == it.key {
		return items
	}
	out := make([]monItem, 0, len(items)+1)
	out = append(out, items[:i]...)
	out = append(out, it)
	return append(out, items[i:]...)
}

// pending describes an after-property's open obligations.
func (pr *Property) pending(ms monState) string {
	var parts []string
	for _, it := range ms.items {
		env := map[string]*Ref{}
		for i, name := range pr.vars {
			r := NewRef(name)
			if _, unbound := it.vals[i].(*Var); !unbound {
				r.Val = it.vals[i]
			}
			env[name] = r
		}
		var qs []string
		for _, q := range pr.Then {
			qs = append(qs, FormatTerm(Export(instantiate(q, env))))
		}
		parts = append(parts, strings.Join(qs, " or "))
	}
	return strings.Join(parts, "; ")
}
