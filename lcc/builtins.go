package lcc

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// Goal is one call of a Go constraint: its arguments and the means to bind them.
type Goal struct {
	Args        []Term
	Agent       string
	Interaction string
	Policy      PolicyRef
	Program     *Program // the model being run: its facts hold the policy's tunables
	tr          *Trail
}

// Arg returns argument i with bound variables followed.
func (g *Goal) Arg(i int) Term { return Deref(g.Args[i]) }

// Unify binds argument i to t; it reports false when they cannot be unified.
func (g *Goal) Unify(i int, t Term) bool { return Unify(g.Args[i], t, g.tr) }

// Number reads argument i as a number.
func (g *Goal) Number(i int) (float64, bool) { return number(g.Arg(i)) }

// AtomName reads argument i as an atom (or string) name.
func (g *Goal) AtomName(i int) (string, bool) {
	switch x := g.Arg(i).(type) {
	case *Atom:
		return x.Name, true
	case *Str:
		return x.V, true
	}
	return "", false
}

// ConstraintFunc implements a constraint in Go. It returns true when the
// constraint holds (after binding what it binds), false when it fails, and
// an error when it cannot be evaluated; an error fails the agent. It must
// return promptly once ctx is done.
type ConstraintFunc func(ctx context.Context, g *Goal) (bool, error)

// Constraint is a registered Go constraint.
type Constraint struct {
	ConstraintInfo
	Fn ConstraintFunc
}

// Registry holds the Go constraints a host program provides.
type Registry struct {
	m map[string]Constraint
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Constraint{}} }

// Register adds a constraint. It returns an error when name/arity is a
// builtin or already registered.
func (r *Registry) Register(name string, arity int, doc string, fn ConstraintFunc) error {
	k := keyOf(name, arity)
	if _, ok := builtinInfo[k]; ok {
		return fmt.Errorf("lcc: constraint %s is a builtin", k)
	}
	if _, ok := r.m[k]; ok {
		return fmt.Errorf("lcc: constraint %s is already registered", k)
	}
	r.m[k] = Constraint{ConstraintInfo: ConstraintInfo{Name: name, Arity: arity, Doc: doc}, Fn: fn}
	return nil
}

// MustRegister is Register for static tables; it panics on a programming error.
func (r *Registry) MustRegister(name string, arity int, doc string, fn ConstraintFunc) {
	if err := r.Register(name, arity, doc, fn); err != nil {
		panic(err)
	}
}

// Known lists the registered constraints.
func (r *Registry) Known() Known {
	k := Known{}
	if r == nil {
		return k
	}
	for key, c := range r.m {
		k[key] = c.ConstraintInfo
	}
	return k
}

// List returns the registered constraints sorted by key.
func (r *Registry) List() []ConstraintInfo {
	var out []ConstraintInfo
	for _, c := range r.Known() {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

func (r *Registry) lookup(k string) (Constraint, bool) {
	if r == nil {
		return Constraint{}, false
	}
	c, ok := r.m[k]
	return c, ok
}

// builtin is a nondeterministic pure constraint: it calls yield once per
// answer (with the answer's bindings in place) and stops when yield returns
// true (the rest of the conjunction succeeded) or an error.
type builtin func(args []Term, tr *Trail, yield func() (bool, error)) (bool, error)

var builtinInfo = map[string]ConstraintInfo{}
var builtins = map[string]builtin{}

func defBuiltin(name string, arity int, doc string, fn builtin) {
	info := ConstraintInfo{Name: name, Arity: arity, Doc: doc}
	builtinInfo[info.Key()] = info
	builtins[info.Key()] = fn
}

// Builtins lists the interpreter's built-in constraints.
func Builtins() []ConstraintInfo {
	out := make([]ConstraintInfo, 0, len(builtinInfo))
	for _, i := range builtinInfo {
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// unifyThen unifies a and b, runs yield, and undoes the binding if yield
// does not succeed.
func unifyThen(a, b Term, tr *Trail, yield func() (bool, error)) (bool, error) {
	mark := tr.Mark()
	if !Unify(a, b, tr) {
		return false, nil
	}
	ok, err := yield()
	if !ok || err != nil {
		tr.Undo(mark)
	}
	return ok, err
}

func init() {
	defBuiltin("true", 0, "always holds", func(_ []Term, _ *Trail, y func() (bool, error)) (bool, error) { return y() })
	defBuiltin("fail", 0, "never holds", func([]Term, *Trail, func() (bool, error)) (bool, error) { return false, nil })
	defBuiltin("member", 2, "member(X, L): X unifies with an element of list L (each in turn)",
		func(args []Term, tr *Trail, y func() (bool, error)) (bool, error) {
			l := args[1]
			for {
				c, ok := Deref(l).(*Cons)
				if !ok {
					return false, nil
				}
				if ok, err := unifyThen(args[0], c.Head, tr, y); ok || err != nil {
					return ok, err
				}
				l = c.Tail
			}
		})
	defBuiltin("length", 2, "length(L, N): list L has N elements",
		func(args []Term, tr *Trail, y func() (bool, error)) (bool, error) {
			if elems, ok := ListElems(args[0]); ok {
				return unifyThen(args[1], &Int{V: int64(len(elems))}, tr, y)
			}
			n, ok := Deref(args[1]).(*Int)
			if !ok || n.V < 0 || n.V > 1<<20 {
				return false, nil
			}
			fresh := make([]Term, n.V)
			for i := range fresh {
				fresh[i] = NewRef("_")
			}
			return unifyThen(args[0], L(fresh...), tr, y)
		})
	defBuiltin("append", 3, "append(A, B, C): list C is A followed by B",
		func(args []Term, tr *Trail, y func() (bool, error)) (bool, error) {
			if a, ok := ListElems(args[0]); ok {
				return unifyThen(args[2], ListWithTail(a, args[1]), tr, y)
			}
			c, ok := ListElems(args[2])
			if !ok {
				return false, fmt.Errorf("append/3: the first or the third argument must be a proper list")
			}
			for i := 0; i <= len(c); i++ {
				mark := tr.Mark()
				if Unify(args[0], L(c[:i]...), tr) && Unify(args[1], L(c[i:]...), tr) {
					ok, err := y()
					if ok || err != nil {
						return ok, err
					}
				}
				tr.Undo(mark)
			}
			return false, nil
		})
	defBuiltin("nth", 3, "nth(I, L, X): X is element I of list L, counting from 1",
		func(args []Term, tr *Trail, y func() (bool, error)) (bool, error) {
			elems, ok := ListElems(args[1])
			if !ok {
				return false, nil
			}
			if i, ok := Deref(args[0]).(*Int); ok {
				if i.V < 1 || i.V > int64(len(elems)) {
					return false, nil
				}
				return unifyThen(args[2], elems[i.V-1], tr, y)
			}
			for i, e := range elems {
				mark := tr.Mark()
				if Unify(args[0], &Int{V: int64(i + 1)}, tr) && Unify(args[2], e, tr) {
					ok, err := y()
					if ok || err != nil {
						return ok, err
					}
				}
				tr.Undo(mark)
			}
			return false, nil
		})
	defBuiltin("sum", 2, "sum(L, S): S is the sum of the numbers in list L",
		func(args []Term, tr *Trail, y func() (bool, error)) (bool, error) {
			elems, ok := ListElems(args[0])
			if !ok {
				return false, fmt.Errorf("sum/2: first argument is not a proper list")
			}
			var acc Term = &Int{V: 0}
			for _, e := range elems {
				v, err := evalArith(e, 0)
				if err != nil {
					return false, fmt.Errorf("sum/2: %w", err)
				}
				acc, err = arith("+", acc, v)
				if err != nil {
					return false, fmt.Errorf("sum/2: %w", err)
				}
			}
			return unifyThen(args[1], acc, tr, y)
		})
}

func number(t Term) (float64, bool) {
	switch x := Deref(t).(type) {
	case *Int:
		return float64(x.V), true
	case *Float:
		return x.V, true
	}
	return 0, false
}

// evalArith evaluates an arithmetic expression to an *Int or *Float.
func evalArith(t Term, depth int) (Term, error) {
	if depth > 10000 {
		return nil, fmt.Errorf("expression too deep")
	}
	t = Deref(t)
	switch x := t.(type) {
	case *Int, *Float:
		return x, nil
	case *Ref:
		return nil, fmt.Errorf("unbound variable %s in arithmetic", x.Name)
	case *Compound:
		args := make([]Term, len(x.Args))
		for i, a := range x.Args {
			v, err := evalArith(a, depth+1)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
		switch {
		case len(args) == 2 && (x.Functor == "+" || x.Functor == "-" || x.Functor == "*" || x.Functor == "/" || x.Functor == "min" || x.Functor == "max"):
			return arith(x.Functor, args[0], args[1])
		case len(args) == 1 && x.Functor == "-":
			return arith("-", &Int{V: 0}, args[0])
		case len(args) == 1 && x.Functor == "abs":
			if i, ok := args[0].(*Int); ok {
				if i.V < 0 {
					if i.V == math.MinInt64 {
						return nil, fmt.Errorf("integer overflow in abs")
					}
					return &Int{V: -i.V}, nil
				}
				return i, nil
			}
			return &Float{V: math.Abs(args[0].(*Float).V)}, nil
		}
		return nil, fmt.Errorf("%s/%d is not an arithmetic function", x.Functor, len(x.Args))
	}
	return nil, fmt.Errorf("%s is not a number", FormatTerm(t))
}

func arith(op string, a, b Term) (Term, error) {
	ai, aInt := a.(*Int)
	bi, bInt := b.(*Int)
	if aInt && bInt {
		x, y := ai.V, bi.V
		switch op {
		case "+":
			r := x + y
			if (r > x) == (y > 0) {
				return &Int{V: r}, nil
			}
		case "-":
			r := x - y
			if (r < x) == (y > 0) {
				return &Int{V: r}, nil
			}
		case "*":
			if x == 0 || y == 0 {
				return &Int{V: 0}, nil
			}
			r := x * y
			if r/y == x && !(x == -1 && y == math.MinInt64) && !(y == -1 && x == math.MinInt64) {
				return &Int{V: r}, nil
			}
		case "/":
			if y == 0 {
				return nil, fmt.Errorf("division by zero")
			}
			if x%y == 0 && !(x == math.MinInt64 && y == -1) {
				return &Int{V: x / y}, nil
			}
			return &Float{V: float64(x) / float64(y)}, nil
		case "min":
			return &Int{V: min(x, y)}, nil
		case "max":
			return &Int{V: max(x, y)}, nil
		}
		// integer overflow: fall through to floating point
	}
	x, _ := number(a)
	y, _ := number(b)
	switch op {
	case "+":
		return &Float{V: x + y}, nil
	case "-":
		return &Float{V: x - y}, nil
	case "*":
		return &Float{V: x * y}, nil
	case "/":
		if y == 0 {
			return nil, fmt.Errorf("division by zero")
		}
		return &Float{V: x / y}, nil
	case "min":
		if x <= y {
			return a, nil
		}
		return b, nil
	case "max":
		if x >= y {
			return a, nil
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown operator %s", op)
}

// compare evaluates both sides arithmetically and applies a numeric relation.
func compare(op string, l, r Term) (bool, error) {
	a, err := evalArith(l, 0)
	if err != nil {
		return false, err
	}
	b, err := evalArith(r, 0)
	if err != nil {
		return false, err
	}
	var c int
	ai, aInt := a.(*Int)
	bi, bInt := b.(*Int)
	if aInt && bInt {
		c = cmpInt(ai.V, bi.V)
	} else {
		x, _ := number(a)
		y, _ := number(b)
		switch {
		case x < y:
			c = -1
		case x > y:
			c = 1
		}
	}
	switch op {
	case "<":
		return c < 0, nil
	case "=<":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	case ">=":
		return c >= 0, nil
	}
	return false, fmt.Errorf("unknown comparison %s", op)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
