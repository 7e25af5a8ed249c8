package lcc

import (
	"strings"
	"testing"
)

func checkSrc(t *testing.T, src string, known Known) ErrorList {
	t.Helper()
	return Check(mustParse(t, "m.lcc", src), known)
}

// TestCheckFires shows every error and warning of LCC.md firing, at its
// line:col.
func TestCheckFires(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // "line:col: severity: substring"
	}{
		{"role taken on without clause", "r(x, initial)\na(x, X) :: a(y, X).", "2:12: error: role y has no clause, but it is taken on"},
		{"role messaged without clause", "r(x, initial)\na(x, X) :: m => a(y, X).", "2:17: error: role y has no clause, but a message is sent to it"},
		{"role awaited without clause", "r(x, initial)\na(x, X) :: m <= a(y, X).", "2:17: error: role y has no clause, but a message is awaited from it"},
		{"declared role without clause", "r(x, initial)\nr(z, optional)\na(x, X) :: null.", "2:1: error: role z is declared but has no clause"},
		{"duplicate clause", "r(x, initial)\na(x, X) :: null.\na(x, Y) :: null.", "3:1: error: role x already has a clause at m.lcc:2:1"},
		{"unknown constraint", "r(x, initial)\na(x, X) :: null <- nowhere(X).", "2:20: error: unknown constraint nowhere/1"},
		{"wrong arity", "r(x, initial)\nlimit(4).\na(x, X) :: null <- limit(X, Y).", "3:20: error: constraint limit/2 is used with the wrong arity (known: limit/1)"},
		{"wrong arity of builtin", "r(x, initial)\na(x, X) :: null <- member(X).", "2:20: error: constraint member/1 is used with the wrong arity (known: member/2)"},
		{"unknown constraint inside not", "r(x, initial)\na(x, X) :: null <- not(gone).", "2:24: error: unknown constraint gone/0"},
		{"send never received", "r(x, initial)\na(x, X) :: hello => a(y, X).\na(y, Y) :: bye <= a(x, Z).", "2:12: error: message hello/0 is sent to role y, which never receives"},
		{"receive never sent", "r(x, initial)\na(x, X) :: hello => a(y, X).\na(y, Y) :: hello <= a(x, Z) then bye <= a(x, Z).", "3:34: error: message bye/0 is awaited from role x, which never sends"},
		{"send arity mismatch", "r(x, initial)\na(x, X) :: m(1, 2) => a(y, X).\na(y, Y) :: m(A) <= a(x, Z).", "2:12: error: message m/2 is sent to role y"},
		{"unbound variable in message", "r(x, initial)\na(x, X) :: m(V) => a(y, X).\na(y, Y) :: m(A) <= a(x, Z).", "2:14: error: variable V is sent in message m(V) but no earlier step can bind it"},
		{"anonymous variable in message", "r(x, initial)\na(x, X) :: m(_) => a(y, X).\na(y, Y) :: m(A) <= a(x, Z).", "2:14: error: anonymous variable _ is sent"},
		{"unbound receiver id", "r(x, initial)\na(x, X) :: m => a(y, Who).\na(y, Y) :: m <= a(x, Z).", "2:22: error: variable Who is sent as the id of the agent"},
		{"comparison does not bind", "r(x, initial)\na(x, X) :: m(V) => a(y, X) <- V > 1.\na(y, Y) :: m(A) <= a(x, Z).", "2:14: error: variable V is sent"},
		{"bad within", "r(x, initial)\na(x, X) :: m <= a(y, X) within soon.\na(y, Y) :: m => a(x, Y).", "2:32: error: within takes a number of seconds or ms(N)"},
		{"recursion without exit", "r(x, initial)\na(x, X) :: a(loop, X).\na(loop, X) :: null then a(loop, X).", "3:1: warning: recursive role loop has no exit"},
		{"unreachable clause", "r(x, initial)\na(x, X) :: null.\na(island, Y) :: null.", "3:1: warning: clause for role island cannot be reached"},
		{"no initial role", "a(x, X) :: null.", "1:1: warning: no role is declared initial"},
		{"alternative never chosen", "r(x, initial)\na(x, X) :: null or null <- p.\np.", "2:20: warning: this alternative can never be chosen"},
		{"receive alternative never chosen", "r(x, initial)\na(x, X) :: m => a(y, X).\na(y, Y) :: (never <= a(x, Z) within 1) or m <= a(x, Z).", "3:13: warning: this alternative can never be chosen: it waits for message never/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := checkSrc(t, tt.src, nil)
			for _, d := range diags {
				if strings.Contains(d.Error(), "m.lcc:"+tt.want) {
					return
				}
			}
			t.Errorf("want %q, got:\n%v", tt.want, diags)
		})
	}
}

// TestCheckSilent shows each check silent on a correct model of the same
// shape as the one that fires it.
func TestCheckSilent(t *testing.T) {
	tests := []struct{ name, src string }{
		{"roles with clauses", "r(x, initial)\nr(y, necessary)\na(x, X) :: null <- peer(P) then m => a(y, P) then a(z(1), X).\na(y, Y) :: m <= a(x, Z).\na(z(N), X) :: null.\npeer(p)."},
		{"facts and builtins are known", "r(x, initial)\nlimit(4).\na(x, X) :: null <- limit(L) and member(L, [1, 4]) and length([a], 1) and nth(1, [a], A) and sum([1], S) and append([], [], []) and true."},
		{"registered constraint", "r(x, initial)\na(x, X) :: null <- load(L)."},
		{"messages match through sub-roles", "r(x, initial)\na(x, X) :: null <- peer(P) then a(tell(hello, P), X) then bye(B) <= a(y, P).\na(tell(M, P), X) :: M => a(y, P).\na(y, Y) :: hello <= a(x, Z) then a(answer(Z), Y).\na(answer(Z), Y) :: bye(1) => a(x, Z).\npeer(p)."},
		{"variables bound by receive, constraint, is, =, role", "r(x, initial)\na(x, X) :: m(A) <= a(y, P) then null <- q(B) and C is B + 1 and D = f(C) then a(sub(E), X) then n(A, B, C, D, E) => a(y, P).\na(sub(E), X) :: null <- E = 1.\na(y, Y) :: m(1) => a(x, x) then n(A, B, C, D, E) <= a(x, Z).\nq(1)."},
		{"variable bound in another par branch", "r(x, initial)\na(x, X) :: (m(V) => a(y, X)) par (null <- V = 1).\na(y, Y) :: m(A) <= a(x, Z)."},
		{"recursion with exit", "r(x, initial)\na(x, X) :: a(loop(0), X).\na(loop(N), X) :: null <- N > 3 or (null <- M is N + 1 then a(loop(M), X))."},
		{"alternatives with conditions", "r(x, initial)\np.\na(x, X) :: null <- p or null."},
		{"receive alternatives", "r(x, initial)\na(x, X) :: go => a(y, y) then ((m <= a(y, Y) within 1) or null).\na(y, Y) :: go <= a(x, X) then m => a(x, X)."},
	}
	known := NewKnown(ConstraintInfo{Name: "load", Arity: 1})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diags := checkSrc(t, tt.src, known); len(diags) > 0 {
				t.Errorf("want no diagnostics, got:\n%v", diags)
			}
		})
	}
}

func TestCheckShippedModelsClean(t *testing.T) {
	host := &auctionHost{}
	known := host.registry().Known()
	for _, f := range []string{"testdata/auction.lcc", "testdata/auction_counted.lcc"} {
		if diags := checkSrc(t, readFile(t, f), known); len(diags) > 0 {
			t.Errorf("%s: %v", f, diags)
		}
	}
}

func TestParseConstraintSpec(t *testing.T) {
	if c, err := ParseConstraintSpec("load/1"); err != nil || c.Key() != "load/1" {
		t.Errorf("load/1: %v %v", c, err)
	}
	for _, bad := range []string{"load", "/1", "load/", "load/x", "load/99999"} {
		if _, err := ParseConstraintSpec(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// TestCheckerWarnsAboutRingsAndBlockedAlternatives: a ring of roles with
// no way out, and an alternative that follows a receive without a deadline
// (the or waits for the message, so it is never tried), are warnings; a
// ring with an exit and a receive with a deadline are not.
func TestCheckerWarnsAboutRingsAndBlockedAlternatives(t *testing.T) {
	for _, c := range []struct {
		src, want string // want "" means no warning of this kind
	}{
		{"r(p, initial)\na(p, X) :: a(ping, X).\na(ping, X) :: null <- true then a(pong, X).\na(pong, X) :: a(ping, X).\n",
			"t.lcc:3:1: warning: roles ping, pong take each other on with no exit"},
		{"r(p, initial)\na(p, X) :: a(ping, X).\na(ping, X) :: null <- true then a(pong, X).\na(pong, X) :: null <- done or a(ping, X).\n", ""},
		{"r(p, initial)\nr(q, necessary)\na(p, X) :: m => a(q, q).\na(q, X) :: ( m <= a(p, P) ) or null.\n",
			"t.lcc:4:32: warning: this alternative can never be chosen: the receive before it has no deadline"},
		{"r(p, initial)\nr(q, necessary)\na(p, X) :: m => a(q, q).\na(q, X) :: ( m <= a(p, P) within 5 ) or null.\n", ""},
	} {
		m, errs := Parse("t.lcc", []byte(c.src))
		if errs.HasErrors() {
			t.Fatal(errs)
		}
		diags := Check(m, NewKnown(ConstraintInfo{Name: "done", Arity: 0}))
		var found []string
		for _, d := range diags {
			if strings.Contains(d.Msg, "no exit") || strings.Contains(d.Msg, "no deadline") {
				found = append(found, d.Error())
			}
		}
		switch {
		case c.want == "" && len(found) > 0:
			t.Errorf("%s: unexpected %v", c.src, found)
		case c.want != "" && (len(found) == 0 || !strings.HasPrefix(found[0], c.want)):
			t.Errorf("%s: got %v, want %s", c.src, found, c.want)
		}
	}
}
