package lcc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// A Domain says, for 'parley lcc verify', what the host program's
// constraints may answer. It is a file of rules in LCC's term and
// condition syntax, one per outcome:
//
//	fits(_, _, _).                          // may succeed
//	fits(_, _, _) <- fail.                  // may fail
//	reserve(_, _, _, _) <- error("store unreachable").  // may return an error
//	bid_score(_, _, _, 0.2).                // succeeds, binding Score to 0.2 ...
//	bid_score(_, _, _, 0.5).                // ... or to 0.5
//	peers(Role, Ps) <- agents(Role, Ps).    // computed: the other agents in Role
//
// A constraint the model calls that a domain defines is an oracle: every
// distinct outcome (each solution of each rule whose head unifies, each
// fail and each error) is a branch the verifier explores. Rules for names
// the model does not call are helpers that rule bodies may use; bodies
// may also use the builtins, the model's facts, agents(Role, Ids) (the
// other verified agents that play Role, in the order given) and self(Id).
type Domain struct {
	File  *File
	rules map[string][]*rule
}

// rule is Head <- Body. outcome is "" for an ordinary rule, "fail" or
// "error" for a rule whose body is exactly fail or error(Reason).
type rule struct {
	pos     Pos
	head    Term
	body    []Lit
	outcome string
	reason  Term
}

// ParseDomain parses a domain file. Errors carry line:col.
func ParseDomain(name string, src []byte) (*Domain, error) {
	f := NewFile(name, src)
	p := &parser{file: f}
	sc := &scanner{src: src, file: f, errs: &p.errs}
	p.toks = sc.scanAll()
	d := &Domain{File: f, rules: map[string][]*rule{}}
	p.items(func() {
		pos := p.tok().pos
		head := p.expr()
		key := Key(head)
		if key == "" {
			p.fail(pos, "a domain rule's head must be a constraint such as fits(VM, CPU, Mem), found %s", termSummary(head))
		}
		if _, ok := builtinInfo[key]; ok {
			p.fail(pos, "%s is a builtin: a domain cannot redefine it", key)
		}
		r := &rule{pos: pos, head: head}
		if p.is("<-") {
			p.next()
			r.body = p.cond()
			if len(r.body) == 1 {
				if c, ok := r.body[0].(*Call); ok {
					switch t := c.Term.(type) {
					case *Atom:
						if t.Name == "fail" {
							r.outcome, r.body = "fail", nil
						}
					case *Compound:
						if t.Functor == "error" && len(t.Args) == 1 {
							r.outcome, r.reason, r.body = "error", t.Args[0], nil
						}
					}
				}
			}
		}
		p.expect(".")
		d.rules[key] = append(d.rules[key], r)
	})
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	markRulesGround(d.rules)
	return d, nil
}

// items parses items until the end of the file, skipping to the next
// item after an error.
func (p *parser) items(item func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(bailout); !ok {
				panic(r)
			}
		}
	}()
	for p.tok().kind != tEOF {
		func() {
			defer p.recoverSync()
			item()
		}()
	}
}

func markRulesGround(rules map[string][]*rule) {
	for _, rs := range rules {
		for _, r := range rs {
			markGround(r.head)
		}
	}
}

// Keys lists the name/arity of every constraint the domain defines.
func (d *Domain) Keys() []string {
	var out []string
	for k := range d.rules {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Known returns what the domain defines, for the static checker.
func (d *Domain) Known() Known {
	k := Known{}
	if d == nil {
		return k
	}
	for key, rs := range d.rules {
		n, ar, _ := Functor(rs[0].head)
		k[key] = ConstraintInfo{Name: n, Arity: ar, Doc: "verification domain"}
	}
	return k
}

// outcome is one answer an oracle may give.
type outcome struct {
	kind string // "ok", "fail" or "error"
	args []Term // ok: the arguments' values (resolved; may hold the call's own variables)
	why  string // error: the reason
}

func (o outcome) String() string {
	switch o.kind {
	case "ok":
		return "ok(" + FormatTerm(&Compound{Functor: "x", Args: o.args}) + ")"
	case "error":
		return "error(" + o.why + ")"
	}
	return o.kind
}

// outcomes enumerates what an oracle may answer for a call with args:
// in rule order, duplicates dropped. A rule whose head does not unify
// with the call is an answer that makes the call fail; no answer at all
// means it fails.
func (a *agent) outcomes(x *xctx, rs []*rule, args []Term) ([]outcome, error) {
	tr := &x.trail
	var out []outcome
	seen := map[string]bool{}
	add := func(o outcome) {
		if k := o.String(); !seen[k] {
			seen[k] = true
			out = append(out, o)
		}
	}
	call := &Compound{Functor: "x", Args: args}
	for _, r := range rs {
		env := map[string]*Ref{}
		mark := tr.Mark()
		h := instantiate(r.head, env)
		var hargs []Term
		if c, ok := h.(*Compound); ok {
			hargs = c.Args
		}
		if !Unify(call, &Compound{Functor: "x", Args: hargs}, tr) {
			// The host may answer with something the caller did not ask
			// for (vm_count(1) to vm_count(0)): the call fails.
			tr.Undo(mark)
			add(outcome{kind: "fail"})
			continue
		}
		switch r.outcome {
		case "fail":
			add(outcome{kind: "fail"})
		case "error":
			add(outcome{kind: "error", why: termText(instantiate(r.reason, env))})
		default:
			_, err := a.conj(x, r.body, env, func() (bool, error) {
				vals := make([]Term, len(args))
				for i, t := range args {
					vals[i] = Resolve(t)
				}
				add(outcome{kind: "ok", args: vals})
				return false, nil // on to the next solution
			})
			if err != nil {
				tr.Undo(mark)
				return nil, fmt.Errorf("domain rule at %s: %v", a.node.domainFile.Position(r.pos), err)
			}
		}
		tr.Undo(mark)
	}
	if len(out) == 0 {
		out = append(out, outcome{kind: "fail"})
	}
	return out, nil
}

func termText(t Term) string {
	if s, ok := Deref(t).(*Str); ok {
		return s.V
	}
	return FormatTerm(t)
}

// chooser picks among an oracle's outcomes: it replays a prefix of
// choices and takes the first outcome past it, recording how many there
// were, so that the verifier can enumerate every combination.
type chooser struct {
	prefix []int
	took   []int
	counts []int
}

type chooserKey struct{}

func (c *chooser) choose(n int) int {
	i := len(c.took)
	pick := 0
	if i < len(c.prefix) {
		pick = c.prefix[i]
	}
	if pick >= n {
		pick = n - 1
	}
	c.took = append(c.took, pick)
	c.counts = append(c.counts, n)
	return pick
}

// next returns the choice sequence after c's, or false when every
// combination has been taken.
func (c *chooser) next() ([]int, bool) {
	for i := len(c.took) - 1; i >= 0; i-- {
		if c.took[i]+1 < c.counts[i] {
			p := append([]int(nil), c.took[:i]...)
			return append(p, c.took[i]+1), true
		}
	}
	return nil, false
}

var errNoChooser = errors.New("internal: an oracle was called outside the verifier")

// oracle makes the registry function for one domain constraint: it
// enumerates the outcomes, lets the chooser pick one, and reports the
// call to the machine when it succeeds.
func (m *machine) oracle(ag *mAgent, key string, rs []*rule) ConstraintFunc {
	return func(ctx context.Context, g *Goal) (bool, error) {
		ch, _ := ctx.Value(chooserKey{}).(*chooser)
		if ch == nil {
			return false, errNoChooser
		}
		x := &xctx{ctx: ctx}
		outs, err := m.specs[ag.idx].dom.outcomes(x, rs, g.Args)
		if err != nil {
			return false, err
		}
		o := outs[ch.choose(len(outs))]
		name, _, _ := strings.Cut(key, "/")
		switch o.kind {
		case "fail":
			m.emit(ag, VerifyEvent{Kind: "fail", Term: Export(&Compound{Functor: name, Args: g.Args})})
			return false, nil
		case "error":
			return false, errors.New(o.why)
		}
		for i := range g.Args {
			if !g.Unify(i, o.args[i]) {
				return false, nil
			}
		}
		var t Term = &Atom{Name: name}
		if len(g.Args) > 0 {
			t = &Compound{Functor: name, Args: g.Args}
		}
		m.emit(ag, VerifyEvent{Kind: "call", Term: Export(t)})
		return true, nil
	}
}
