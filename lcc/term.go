package lcc

import (
	"math"
	"sync/atomic"
)

// Term is an LCC term. The AST and the interpreter share these types: the
// parser builds them with positions, the interpreter builds them without and
// adds *Ref for run-time variables.
type Term interface {
	TermPos() Pos
}

// Atom is a constant name: host_17, 'vm-42', [].
type Atom struct {
	Name string
	Pos  Pos
}

// Var is a source variable. Name "_" is anonymous and never binds.
type Var struct {
	Name string
	Pos  Pos
}

// Int is an integer.
type Int struct {
	V   int64
	Pos Pos
}

// Float is a decimal number.
type Float struct {
	V   float64
	Pos Pos
}

// Str is a double-quoted string.
type Str struct {
	V   string
	Pos Pos
}

// Compound is functor(args...). Arithmetic is Compound too: X + 1 is '+'(X, 1).
type Compound struct {
	Functor string
	Args    []Term
	Pos     Pos
	ground  bool // holds no variable at all, so it never changes (see groundNode)
}

// Cons is a list cell [Head | Tail].
type Cons struct {
	Head, Tail Term
	Pos        Pos
	ground     bool
}

// Nil is the empty list [].
type Nil struct {
	Pos Pos
}

// Ref is a run-time variable: a cell that is unbound (Val == nil) or bound.
type Ref struct {
	Val  Term
	Name string // source name, for traces
	id   uint64 // creation order; younger refs bind to older ones
}

func (t *Atom) TermPos() Pos     { return t.Pos }
func (t *Var) TermPos() Pos      { return t.Pos }
func (t *Int) TermPos() Pos      { return t.Pos }
func (t *Float) TermPos() Pos    { return t.Pos }
func (t *Str) TermPos() Pos      { return t.Pos }
func (t *Compound) TermPos() Pos { return t.Pos }
func (t *Cons) TermPos() Pos     { return t.Pos }
func (t *Nil) TermPos() Pos      { return t.Pos }
func (t *Ref) TermPos() Pos      { return NoPos }

var refSeq atomic.Uint64

// NewRef returns a fresh unbound variable.
func NewRef(name string) *Ref { return &Ref{Name: name, id: refSeq.Add(1)} }

// Convenience constructors for host programs and tests.

// A makes an atom.
func A(name string) *Atom { return &Atom{Name: name} }

// I makes an integer.
func I(v int64) *Int { return &Int{V: v} }

// F makes a decimal.
func F(v float64) *Float { return &Float{V: v} }

// S makes a string.
func S(v string) *Str { return &Str{V: v} }

// C makes a compound term.
func C(functor string, args ...Term) *Compound { return mkCompound(functor, args, NoPos) }

// Ground nodes. A compound or list cell built from atomic terms and other
// ground nodes holds no variable, bound or not, so nothing can ever change
// it: it is shared instead of copied (Export, instantiate), and the occurs
// check and IsGround stop at it. This keeps loops that accumulate a list
// linear: each step checks one new cell, not the whole list. The flag is
// set only where a node is built (mkCompound, mkCons, markGround), never on
// a node another goroutine may be reading.

// groundNode reports whether t is atomic or a ground node.
func groundNode(t Term) bool {
	switch x := t.(type) {
	case *Atom, *Int, *Float, *Str, *Nil:
		return true
	case *Compound:
		return x.ground
	case *Cons:
		return x.ground
	}
	return false
}

func mkCompound(functor string, args []Term, pos Pos) *Compound {
	c := &Compound{Functor: functor, Args: args, Pos: pos, ground: true}
	for _, a := range args {
		if !groundNode(a) {
			c.ground = false
			break
		}
	}
	return c
}

func mkCons(h, t Term, pos Pos) *Cons {
	return &Cons{Head: h, Tail: t, Pos: pos, ground: groundNode(h) && groundNode(t)}
}

// markGround flags the ground nodes of a term that is not shared yet (a
// parsed model or fact), bottom up, and reports whether t is ground.
func markGround(t Term) bool {
	switch x := t.(type) {
	case *Atom, *Int, *Float, *Str, *Nil:
		return true
	case *Compound:
		g := true
		for _, a := range x.Args {
			if !markGround(a) {
				g = false
			}
		}
		x.ground = g
		return g
	case *Cons:
		g := true
		for {
			if !markGround(x.Head) {
				g = false
			}
			next, ok := x.Tail.(*Cons)
			if !ok {
				if !markGround(x.Tail) {
					g = false
				}
				break
			}
			x = next
		}
		if g { // every cell of a ground list is ground
			for c := t.(*Cons); ; {
				c.ground = true
				next, ok := c.Tail.(*Cons)
				if !ok {
					break
				}
				c = next
			}
		}
		return g
	}
	return false
}

// L makes a proper list.
func L(elems ...Term) Term { return ListWithTail(elems, &Nil{}) }

// ListWithTail makes [e1, e2, ... | tail].
func ListWithTail(elems []Term, tail Term) Term {
	t := tail
	for i := len(elems) - 1; i >= 0; i-- {
		t = mkCons(elems[i], t, NoPos)
	}
	return t
}

// Deref follows bound variables to the term they stand for.
func Deref(t Term) Term {
	for {
		r, ok := t.(*Ref)
		if !ok || r.Val == nil {
			return t
		}
		t = r.Val
	}
}

// Trail records bindings so that a failed attempt can be undone.
type Trail struct{ refs []*Ref }

func (tr *Trail) bind(r *Ref, v Term) {
	r.Val = v
	if tr != nil {
		tr.refs = append(tr.refs, r)
	}
}

// Mark returns a point to undo to.
func (tr *Trail) Mark() int { return len(tr.refs) }

// Undo unbinds every variable bound since mark.
func (tr *Trail) Undo(mark int) {
	for i := len(tr.refs) - 1; i >= mark; i-- {
		tr.refs[i].Val = nil
	}
	tr.refs = tr.refs[:mark]
}

// Unify makes a and b equal by binding run-time variables, with an occurs
// check. On failure the bindings it made are undone. Source *Var nodes must
// have been instantiated to *Ref first; an anonymous "_" Var unifies with
// anything without binding.
func Unify(a, b Term, tr *Trail) bool {
	if tr == nil {
		tr = &Trail{}
	}
	mark := tr.Mark()
	if unify(a, b, tr) {
		return true
	}
	tr.Undo(mark)
	return false
}

func unify(a, b Term, tr *Trail) bool {
	for {
		a, b = Deref(a), Deref(b)
		if a == b {
			return true
		}
		if v, ok := a.(*Var); ok && v.Name == "_" {
			return true
		}
		if v, ok := b.(*Var); ok && v.Name == "_" {
			return true
		}
		ra, aRef := a.(*Ref)
		rb, bRef := b.(*Ref)
		switch {
		case aRef && bRef:
			if ra.id < rb.id {
				tr.bind(rb, ra)
			} else {
				tr.bind(ra, rb)
			}
			return true
		case aRef:
			if occurs(ra, b) {
				return false
			}
			tr.bind(ra, b)
			return true
		case bRef:
			if occurs(rb, a) {
				return false
			}
			tr.bind(rb, a)
			return true
		}
		switch x := a.(type) {
		case *Compound:
			y, ok := b.(*Compound)
			if !ok || x.Functor != y.Functor || len(x.Args) != len(y.Args) {
				return false
			}
			n := len(x.Args)
			for i := 0; i < n-1; i++ {
				if !unify(x.Args[i], y.Args[i], tr) {
					return false
				}
			}
			if n == 0 {
				return true
			}
			a, b = x.Args[n-1], y.Args[n-1] // loop on the last argument
		case *Cons:
			y, ok := b.(*Cons)
			if !ok || !unify(x.Head, y.Head, tr) {
				return false
			}
			a, b = x.Tail, y.Tail // loop on the tail: long lists use no stack
		case *Var: // a named source variable: not instantiated, never equal
			return false
		default:
			return atomicEqual(a, b)
		}
	}
}

func occurs(r *Ref, t Term) bool {
	for {
		t = Deref(t)
		if groundNode(t) {
			return false
		}
		switch x := t.(type) {
		case *Ref:
			return x == r
		case *Compound:
			for _, a := range x.Args {
				if occurs(r, a) {
					return true
				}
			}
			return false
		case *Cons:
			if occurs(r, x.Head) {
				return true
			}
			t = x.Tail
		default:
			return false
		}
	}
}

// Resolve returns t with every bound variable replaced by its value.
// Unbound variables stay as they are.
func Resolve(t Term) Term { return copyOut(t, func(r *Ref) Term { return r }) }

// copyOut copies t with bound variables followed, replacing each unbound
// one by what unbound returns.
func copyOut(t Term, unbound func(*Ref) Term) Term {
	t = Deref(t)
	if groundNode(t) {
		return t // nothing in it can change: share it
	}
	switch x := t.(type) {
	case *Ref:
		return unbound(x)
	case *Compound:
		args := make([]Term, len(x.Args))
		for i, a := range x.Args {
			args[i] = copyOut(a, unbound)
		}
		return mkCompound(x.Functor, args, x.Pos)
	case *Cons:
		var elems []Term
		var cur Term = x
		for {
			c, ok := cur.(*Cons)
			if !ok || c.ground {
				break
			}
			elems = append(elems, copyOut(c.Head, unbound))
			cur = Deref(c.Tail)
		}
		return ListWithTail(elems, copyOut(cur, unbound))
	}
	return t
}

// IsGround reports whether t holds no unbound variable.
func IsGround(t Term) bool {
	for {
		t = Deref(t)
		if groundNode(t) {
			return true
		}
		switch x := t.(type) {
		case *Ref, *Var:
			return false
		case *Compound:
			for _, a := range x.Args {
				if !IsGround(a) {
					return false
				}
			}
			return true
		case *Cons:
			if !IsGround(x.Head) {
				return false
			}
			t = x.Tail
		default:
			return true
		}
	}
}

// Equal reports whether a and b are the same term, ignoring positions and
// following bound variables. Unbound variables are equal only to themselves
// (source variables: to a variable of the same name).
func Equal(a, b Term) bool {
	for {
		a, b = Deref(a), Deref(b)
		if a == b {
			return true
		}
		switch x := a.(type) {
		case *Var:
			y, ok := b.(*Var)
			return ok && x.Name == y.Name
		case *Compound:
			y, ok := b.(*Compound)
			if !ok || x.Functor != y.Functor || len(x.Args) != len(y.Args) {
				return false
			}
			for i := range x.Args {
				if !Equal(x.Args[i], y.Args[i]) {
					return false
				}
			}
			return true
		case *Cons:
			y, ok := b.(*Cons)
			if !ok || !Equal(x.Head, y.Head) {
				return false
			}
			a, b = x.Tail, y.Tail
		case *Ref:
			return false
		default:
			return atomicEqual(a, b)
		}
	}
}

func atomicEqual(a, b Term) bool {
	switch x := a.(type) {
	case *Atom:
		y, ok := b.(*Atom)
		return ok && x.Name == y.Name
	case *Int:
		y, ok := b.(*Int)
		return ok && x.V == y.V
	case *Float:
		y, ok := b.(*Float)
		return ok && (x.V == y.V || math.IsNaN(x.V) && math.IsNaN(y.V))
	case *Str:
		y, ok := b.(*Str)
		return ok && x.V == y.V
	case *Nil:
		_, ok := b.(*Nil)
		return ok
	}
	return false
}

// Key is the name/arity of a callable term: "load/1". Atoms have arity 0.
// Other terms have no key and give "".
func Key(t Term) string {
	name, arity, ok := Functor(t)
	if !ok {
		return ""
	}
	return keyOf(name, arity)
}

// Functor returns the name and arity of an atom or compound term.
func Functor(t Term) (string, int, bool) {
	switch x := Deref(t).(type) {
	case *Atom:
		return x.Name, 0, true
	case *Compound:
		return x.Functor, len(x.Args), true
	}
	return "", 0, false
}

func keyOf(name string, arity int) string {
	return name + "/" + itoa(arity)
}

func itoa(n int) string {
	if n >= 0 && n < 10 {
		return string(rune('0' + n))
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// ListElems returns the elements of a proper list, or false if t is not one.
func ListElems(t Term) ([]Term, bool) {
	var out []Term
	for {
		t = Deref(t)
		switch x := t.(type) {
		case *Nil:
			return out, true
		case *Cons:
			out = append(out, x.Head)
			t = x.Tail
		default:
			return nil, false
		}
	}
}

// instantiate copies a source term, replacing each named variable with a
// run-time variable from env (creating it on first use) and each "_" with a
// fresh one. Ground subterms are shared, not copied.
func instantiate(t Term, env map[string]*Ref) Term {
	switch x := t.(type) {
	case *Var:
		if x.Name == "_" {
			return NewRef("_")
		}
		r, ok := env[x.Name]
		if !ok {
			r = NewRef(x.Name)
			env[x.Name] = r
		}
		if r.Val != nil {
			// Bound already: the value stands for it. A binding is undone
			// only together with everything done after it, this term
			// included; and a term built of values can be a ground node.
			return Deref(r)
		}
		return r
	case *Compound:
		if x.ground {
			return x
		}
		var args []Term
		for i, a := range x.Args {
			na := instantiate(a, env)
			if na != a && args == nil {
				args = make([]Term, len(x.Args))
				copy(args, x.Args[:i])
			}
			if args != nil {
				args[i] = na
			}
		}
		if args == nil {
			return x
		}
		return mkCompound(x.Functor, args, x.Pos)
	case *Cons:
		if x.ground {
			return x
		}
		h, tl := instantiate(x.Head, env), instantiate(x.Tail, env)
		if h == x.Head && tl == x.Tail {
			return x
		}
		return mkCons(h, tl, x.Pos)
	}
	return t
}

// Export resolves t for use outside this agent (a message, a trace): bound
// variables are replaced by their values and unbound ones by anonymous
// source variables, so no *Ref leaks across agents.
func Export(t Term) Term { return copyOut(t, func(*Ref) Term { return &Var{Name: "_"} }) }
