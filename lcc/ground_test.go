package lcc

import "testing"

// TestGroundNodes: terms built only of atomic terms and other ground
// nodes are flagged, shared by Export and instantiate instead of copied,
// and the occurs check still refuses every cycle.
func TestGroundNodes(t *testing.T) {
	l := L(I(1), I(2), I(3))
	if !groundNode(l) || !groundNode(C("f", l, A("a"))) {
		t.Fatal("a list of integers and a compound of ground terms must be ground nodes")
	}
	r := NewRef("X")
	if groundNode(C("f", r)) || groundNode(L(r)) {
		t.Fatal("a term holding a variable is not a ground node")
	}
	if Export(l) != l {
		t.Error("Export copied a ground node")
	}
	if instantiate(l, map[string]*Ref{}) != l {
		t.Error("instantiate copied a ground node")
	}
	// a compound holding a bound variable is not a ground node even once
	// bound: undoing the binding would change it
	tr := &Trail{}
	x := NewRef("X")
	f := C("f", x)
	if !Unify(x, I(1), tr) || groundNode(f) || !IsGround(f) {
		t.Fatal("a bound variable inside a compound: IsGround yes, ground node no")
	}
	tr.Undo(0)
	if IsGround(f) {
		t.Fatal("after the binding is undone the compound is not ground")
	}
	for _, c := range []struct {
		name string
		a, b func(*Ref) Term
	}{
		{"X = f(X)", func(x *Ref) Term { return x }, func(x *Ref) Term { return C("f", x) }},
		{"X = [X | ground list]", func(x *Ref) Term { return x }, func(x *Ref) Term { return mkCons(x, l, NoPos) }},
		{"X = [1, 2 | X]", func(x *Ref) Term { return x }, func(x *Ref) Term { return ListWithTail([]Term{I(1), I(2)}, x) }},
		{"X = g(ground, h(X))", func(x *Ref) Term { return x }, func(x *Ref) Term { return C("g", l, C("h", x)) }},
	} {
		x := NewRef("X")
		if Unify(c.a(x), c.b(x), &Trail{}) {
			t.Errorf("%s unified: the occurs check must refuse it", c.name)
		}
	}
}

// TestBoundVariablesInstantiateToTheirValues: a clause variable that is
// bound already is replaced by its value when a term is instantiated, so a
// list built step by step is made of ground cells.
func TestBoundVariablesInstantiateToTheirValues(t *testing.T) {
	env := map[string]*Ref{}
	tr := &Trail{}
	acc := instantiate(&Var{Name: "Acc"}, env)
	if !Unify(acc, L(I(1), I(2)), tr) {
		t.Fatal("bind Acc")
	}
	n := instantiate(&Var{Name: "N"}, env)
	Unify(n, I(0), tr)
	got := instantiate(&Cons{Head: &Var{Name: "N"}, Tail: &Var{Name: "Acc"}}, env)
	if !groundNode(got) || FormatTerm(got) != "[0, 1, 2]" {
		t.Fatalf("[N | Acc] with both bound: %s, ground node %v", FormatTerm(got), groundNode(got))
	}
}
