package lcc

import (
	"fmt"
	"sort"
	"strings"
)

// ConstraintInfo describes a constraint a policy may call.
type ConstraintInfo struct {
	Name  string `json:"name"`
	Arity int    `json:"arity"`
	Doc   string `json:"doc"`
}

// Key is name/arity.
func (c ConstraintInfo) Key() string { return keyOf(c.Name, c.Arity) }

// Known is a set of constraints, keyed by name/arity.
type Known map[string]ConstraintInfo

// NewKnown builds a set from a list.
func NewKnown(infos ...ConstraintInfo) Known {
	k := Known{}
	for _, i := range infos {
		k[i.Key()] = i
	}
	return k
}

// ParseConstraintSpec reads "name/arity".
func ParseConstraintSpec(s string) (ConstraintInfo, error) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 || i == len(s)-1 {
		return ConstraintInfo{}, fmt.Errorf("lcc: constraint %q: want name/arity", s)
	}
	n := 0
	for _, c := range s[i+1:] {
		if c < '0' || c > '9' || n > 1000 {
			return ConstraintInfo{}, fmt.Errorf("lcc: constraint %q: arity must be a small non-negative integer", s)
		}
		n = n*10 + int(c-'0')
	}
	return ConstraintInfo{Name: s[:i], Arity: n}, nil
}

// Check runs the static checks of REFERENCE.md over a parsed model and returns
// errors and warnings, sorted. known lists the constraints registered by the
// host program; the builtins and the model's facts are always known.
func Check(m *Model, known Known) ErrorList {
	c := &checker{m: m, known: known, clauses: map[string]*Clause{}}
	c.stageRoles()
	c.stageConstraints()
	c.stageMessages()
	c.stageBindings()
	c.stageRecursion()
	c.stageReachability()
	c.stageAlternatives()
	c.errs.Sort()
	return c.errs
}

type checker struct {
	m       *Model
	known   Known
	clauses map[string]*Clause
	errs    ErrorList
	flows   *messageFlow // built on first use
}

func (c *checker) errorf(pos Pos, format string, args ...any) {
	c.errs.Add(c.m.File.Position(pos), SevError, fmt.Sprintf(format, args...))
}

func (c *checker) warnf(pos Pos, format string, args ...any) {
	c.errs.Add(c.m.File.Position(pos), SevWarning, fmt.Sprintf(format, args...))
}

// walkSteps calls fn for every step of d in source order.
func walkSteps(d Def, fn func(*Step)) {
	switch x := d.(type) {
	case *Or:
		for _, a := range x.Alts {
			walkSteps(a, fn)
		}
	case *Par:
		for _, b := range x.Branches {
			walkSteps(b, fn)
		}
	case *Seq:
		for _, s := range x.Steps {
			walkSteps(s, fn)
		}
	case *Group:
		walkSteps(x.Def, fn)
	case *Step:
		fn(x)
	}
}

// walkDefs calls fn for d and every definition nested in it.
func walkDefs(d Def, fn func(Def)) {
	fn(d)
	switch x := d.(type) {
	case *Or:
		for _, a := range x.Alts {
			walkDefs(a, fn)
		}
	case *Par:
		for _, b := range x.Branches {
			walkDefs(b, fn)
		}
	case *Seq:
		for _, s := range x.Steps {
			walkDefs(s, fn)
		}
	case *Group:
		walkDefs(x.Def, fn)
	}
}

// walkLits calls fn for every literal of a condition, nested ones included.
func walkLits(lits []Lit, fn func(Lit)) {
	for _, l := range lits {
		fn(l)
		switch x := l.(type) {
		case *Not:
			walkLits(x.Cond, fn)
		case *Disj:
			for _, a := range x.Alts {
				walkLits(a, fn)
			}
		}
	}
}

func roleName(key string) string {
	if strings.HasSuffix(key, "/0") {
		return strings.TrimSuffix(key, "/0")
	}
	return key
}

// stageRoles: one clause per role, and every role that is taken on,
// messaged or declared has a clause.
func (c *checker) stageRoles() {
	for _, cl := range c.m.Clauses {
		k := RoleKey(cl.Head.Role)
		if k == "" {
			c.errorf(cl.Head.Pos, "the role of a clause must be an atom or compound term, found %s", FormatTerm(cl.Head.Role))
			continue
		}
		if prev, ok := c.clauses[k]; ok {
			c.errorf(cl.Pos, "role %s already has a clause at %s", roleName(k), c.m.File.Position(prev.Pos))
			continue
		}
		c.clauses[k] = cl
	}
	for _, r := range c.m.Roles {
		if k := RoleKey(r.Role); k != "" && c.clauses[k] == nil {
			c.errorf(r.Pos, "role %s is declared but has no clause", roleName(k))
		}
		if r.Min >= 0 && r.Max >= 0 && r.Max < r.Min {
			c.errorf(r.Pos, "role %s: maximum %d is below minimum %d", roleName(RoleKey(r.Role)), r.Max, r.Min)
		}
	}
	for _, cl := range c.m.Clauses {
		walkSteps(cl.Body, func(s *Step) {
			var ag *Agent
			what := ""
			switch ev := s.Event.(type) {
			case *Send:
				ag, what = ev.To, "a message is sent to it"
			case *Recv:
				ag, what = ev.From, "a message is awaited from it"
			case *RoleChange:
				ag, what = ev.Agent, "it is taken on"
			}
			if ag == nil {
				return
			}
			k := RoleKey(ag.Role)
			if k != "" && c.clauses[k] == nil {
				c.errorf(ag.Pos, "role %s has no clause, but %s", roleName(k), what)
			}
		})
	}
}

func (c *checker) isKnown(key string) bool {
	if _, ok := builtinInfo[key]; ok {
		return true
	}
	if _, ok := c.known[key]; ok {
		return true
	}
	for _, f := range c.m.Facts {
		if Key(f.Term) == key {
			return true
		}
	}
	return false
}

func (c *checker) arities(name string) []string {
	seen := map[string]bool{}
	add := func(k string) {
		if i := strings.LastIndexByte(k, '/'); i > 0 && k[:i] == name {
			seen[k] = true
		}
	}
	for k := range builtinInfo {
		add(k)
	}
	for k := range c.known {
		add(k)
	}
	for _, f := range c.m.Facts {
		add(Key(f.Term))
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// stageConstraints: every constraint is a builtin, registered, or a fact.
func (c *checker) stageConstraints() {
	for _, cl := range c.m.Clauses {
		walkSteps(cl.Body, func(s *Step) {
			walkLits(s.Cond, func(l Lit) {
				call, ok := l.(*Call)
				if !ok {
					return
				}
				k := Key(call.Term)
				if k == "" || c.isKnown(k) {
					return
				}
				name, _, _ := Functor(call.Term)
				if other := c.arities(name); len(other) > 0 {
					c.errorf(call.Term.TermPos(), "constraint %s is used with the wrong arity (known: %s)", k, strings.Join(other, ", "))
					return
				}
				c.errorf(call.Term.TermPos(), "unknown constraint %s: it is not built in, not registered, and no fact has that name and arity", k)
			})
			if r, ok := s.Event.(*Recv); ok && r.Within != nil {
				switch w := r.Within.(type) {
				case *Int, *Float, *Var:
				case *Compound:
					if w.Functor != "ms" || len(w.Args) != 1 {
						c.errorf(w.Pos, "within takes a number of seconds or ms(N), found %s", FormatTerm(w))
					}
				default:
					c.errorf(r.Within.TermPos(), "within takes a number of seconds or ms(N), found %s", FormatTerm(w))
				}
			}
		})
	}
}

func (c *checker) stageMessages() {
	// A receive that opens an or-alternative only makes that alternative
	// impossible, which is a warning: the other alternatives still run.
	optional := map[*Recv]bool{}
	for _, cl := range c.m.Clauses {
		walkDefs(cl.Body, func(d Def) {
			if or, ok := d.(*Or); ok {
				for _, alt := range or.Alts {
					if r := leadingRecv(alt); r != nil {
						optional[r] = true
					}
				}
			}
		})
	}
	for _, cl := range c.m.Clauses {
		walkSteps(cl.Body, func(s *Step) {
			switch ev := s.Event.(type) {
			case *Send:
				rk, mk := RoleKey(ev.To.Role), Key(ev.Msg)
				if rk == "" || mk == "" || c.clauses[rk] == nil {
					return
				}
				if !c.flow().reaches(rk, mk, false) {
					c.errorf(ev.Msg.TermPos(), "message %s is sent to role %s, which never receives a message of that name and arity", mk, roleName(rk))
				}
			case *Recv:
				rk, mk := RoleKey(ev.From.Role), Key(ev.Msg)
				if rk == "" || mk == "" || c.clauses[rk] == nil {
					return
				}
				sent := c.flow().reaches(rk, mk, true)
				if !sent && optional[ev] {
					c.warnf(ev.Msg.TermPos(), "this alternative can never be chosen: it waits for message %s from role %s, which never sends a message of that name and arity", mk, roleName(rk))
				} else if !sent {
					c.errorf(ev.Msg.TermPos(), "message %s is awaited from role %s, which never sends a message of that name and arity", mk, roleName(rk))
				}
			}
		})
	}
}
