package lcc

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseForms(t *testing.T) {
	tests := []struct {
		name, src, want string // want: the canonical form of the first clause's body
	}{
		{"then", "a(r, X) :: null then null.", "null\n    then null"},
		{"precedence", "a(r, X) :: null then null par null or null.", "null\n    then null\n    par null\n    or null"},
		{"parens", "a(r, X) :: null then (null or null).", "null\n    then ( null\n           or null )"},
		{"send pre-cond", "a(r, X) :: m(Y) => a(s, Z) <- p(Y) and q(Z).", "m(Y) => a(s, Z) <- p(Y) and q(Z)"},
		{"send cond on the left", "a(r, X) :: p(Y) <- m(Y) => a(s, Z).", "m(Y) => a(s, Z) <- p(Y)"},
		{"receive post-cond", "a(r, X) :: p(Y) <- m(Y) <= a(s, Z).", "p(Y) <- m(Y) <= a(s, Z)"},
		{"receive cond on the right", "a(r, X) :: m(Y) <= a(s, Z) <- p(Y).", "p(Y) <- m(Y) <= a(s, Z)"},
		{"long arrow", "a(r, X) :: m => a(s, Z) <-- p.", "m => a(s, Z) <- p"},
		{"within", "a(r, X) :: m <= a(s, Z) within 5.", "m <= a(s, Z) within 5"},
		{"within ms", "a(r, X) :: m <= a(s, Z) within ms(250).", "m <= a(s, Z) within ms(250)"},
		{"role change with args", "a(r, X) :: a(collect(VM, [], Bids), X).", "a(collect(VM, [], Bids), X)"},
		{"role with cond", "a(r, X) :: a(s, X) <- ok.", "a(s, X) <- ok"},
		{"not", "a(r, X) :: null <- not(p(X) and q).", "null <- not(p(X) and q)"},
		{"disjunction", "a(r, X) :: null <- (p or q and r) and s.", "null <- (p or q and r) and s"},
		{"comparisons", "a(r, X) :: null <- X = 1 and X \\= 2 and X == 1 and X \\== 2 and X < 2 and X =< 2 and X > 0 and X >= 1.",
			"null <- X = 1 and X \\= 2 and X == 1 and X \\== 2 and X < 2 and X =< 2 and X > 0 and X >= 1"},
		{"is", "a(r, X) :: null <- Y is (X - 1) * 2 + -3 / Z.", "null <- Y is (X - 1) * 2 + -3 / Z"},
		{"unary minus", "a(r, X) :: null <- Y is -X + -(3) - -(X).", "null <- Y is -X + -(3) - -X"},
		{"min max abs", "a(r, X) :: null <- Y is max(min(X, 2), abs(-4)).", "null <- Y is max(min(X, 2), abs(-4))"},
		{"cmp paren left", "a(r, X) :: null <- (X + 1) * 2 > 3.", "null <- (X + 1) * 2 > 3"},
		{"lists", "a(r, X) :: m([], [a], [a, b | T], [[1]]) => a(s, X).", "m([], [a], [a, b | T], [[1]]) => a(s, X)"},
		{"atoms and strings", `a(r, X) :: m('vm-42', 'It\'s', "a \"q\" \\ \n", 'then', a, r) => a(s, X).`,
			`m('vm-42', 'It\'s', "a \"q\" \\ \n", 'then', a, r) => a(s, X)`},
		{"numbers", "a(r, X) :: m(12, 0.85, -3, -0.5, 1.5e3, 2e-2) => a(s, X).", "m(12, 0.85, -3, -0.5, 1500.0, 0.02) => a(s, X)"},
		{"anonymous", "a(r, X) :: m(_) <= a(s, _).", "m(_) <= a(s, _)"},
		{"nested compound", "a(r, X) :: bid(vm(v1, 2048), offer(h3, 0.41)) => a(s, X).", "bid(vm(v1, 2048), offer(h3, 0.41)) => a(s, X)"},
		{"no final dot", "a(r, X) :: null\na(s, Y) :: null.", "null"},
		{"comments", "a(r, X) :: // c\n null /* b */ then null.", "null\n    then null"},
		{"leading disjunction cond", "a(r, X) :: (p or q) <- m <= a(s, Y).", "(p or q) <- m <= a(s, Y)"},
		{"leading cmp cond", "a(r, X) :: (Y + 1) > 3 <- m(Y) <= a(s, X).", "Y + 1 > 3 <- m(Y) <= a(s, X)"},
		{"leading not cond", "a(r, X) :: not(p) <- m <= a(s, Y).", "not(p) <- m <= a(s, Y)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.name, tt.src)
			pr := &printer{}
			pr.col = 4
			pr.def(m.Clauses[0].Body, 4)
			if got := pr.b.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			roundTrip(t, m)
		})
	}
}

func TestParseTopLevel(t *testing.T) {
	m := mustParse(t, "top", `
r(overloaded, initial)
r(underloaded, necessary, 1).
r(spare, optional, 0, 3)
param(high_load, 0.80).
anti_affinity(web1, web2).
flag.
a(overloaded, H) :: null.
`)
	if len(m.Roles) != 3 || m.Roles[1].Min != 1 || m.Roles[2].Max != 3 || m.Roles[0].Kind != "initial" {
		t.Errorf("roles: %+v", stripPos(m.Roles))
	}
	if len(m.Facts) != 3 || FormatTerm(m.Facts[0].Term) != "param(high_load, 0.8)" {
		t.Errorf("facts: %v", m.FactTerms())
	}
	if len(m.Clauses) != 1 {
		t.Errorf("clauses: %d", len(m.Clauses))
	}
}

// TestParseErrors checks that errors name line:col and what was expected,
// and that the parser recovers to report several errors in one pass.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // "line:col: substring", in order
	}{
		{"missing operand", "a(r, X) :: null then .", []string{"1:22: expected a term, found '.'"}},
		{"bad head", "b(r, X) :: null.", []string{"1:1: clause head must be a(Role, Id)"}},
		{"unterminated string", "a(r, X) :: m(\"abc) => a(s, X).", []string{"1:14: string not terminated"}},
		{"unterminated quote", "a(r, X) :: m('abc) => a(s, X).", []string{"1:14: quoted atom not terminated"}},
		{"unterminated comment", "a(r, X) :: null. /* never", []string{"1:18: block comment not terminated"}},
		{"bad char", "a(r, X) :: null <- p(X) & q.", []string{"1:25: unexpected character '&'"}},
		{"fact not ground", "p(X).\na(r, X) :: null.", []string{"1:3: a fact must be ground, but variable X is unbound"}},
		{"keyword as term", "a(r, X) :: m(then) => a(s, X).", []string{"1:14: expected a term, found keyword 'then'"}},
		{"send to non-agent", "a(r, X) :: m => b(s, X).", []string{"1:17: the other party of a message must be a(Role, Id)"}},
		{"term without event", "a(r, X) :: foo then null.", []string{"1:16: expected '=>', '<=' or '<-' after term foo"}},
		{"integer range", "a(r, X) :: m(99999999999999999999) => a(s, X).", []string{"1:14: integer 99999999999999999999 is out of range"}},
		{"bad escape", `a(r, X) :: m("a\q") => a(s, X).`, []string{`1:16: unknown escape sequence \q`}},
		{"is needs var", "a(r, X) :: null <- 3 is 4.", []string{"1:20: the left side of 'is' must be a variable"}},
		{"no clause", "p(a).", []string{"1:6: a model needs at least one clause"}},
		{"several errors recovered", "a(r, X) :: null then .\na(s, Y) :: m => b.\nq(Z).\na(t, Z) :: null.",
			[]string{"1:22: expected a term", "2:17: the other party of a message must be a(Role, Id)", "3:3: a fact must be ground"}},
		{"cardinality", "r(x, initial, a)\na(x, X) :: null.", []string{"1:15: role cardinality must be a non-negative integer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Parse("f.lcc", []byte(tt.src))
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), errs)
			}
			for i, w := range tt.want {
				if got := errs[i].Error(); !strings.Contains(got, "f.lcc:"+strings.Replace(w, ": ", ": error: ", 1)) {
					t.Errorf("error %d = %q, want it to contain %q", i, got, w)
				}
			}
		})
	}
}

func TestParseErrorLimit(t *testing.T) {
	src := strings.Repeat("a(r, X) :: null then .\n", 50)
	_, errs := Parse("f.lcc", []byte(src))
	if len(errs) != MaxErrors {
		t.Fatalf("got %d errors, want the limit %d", len(errs), MaxErrors)
	}
}

func TestParseDeepNesting(t *testing.T) {
	src := "a(r, X) :: null <- p(" + strings.Repeat("f(", 5000) + "x" + strings.Repeat(")", 5001) + "."
	_, errs := Parse("deep.lcc", []byte(src))
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "nesting too deep") {
		t.Fatalf("want one 'nesting too deep' error, got %v", errs)
	}
}

// roundTrip checks that parse(print(m)) equals m, ignoring positions.
func roundTrip(t *testing.T, m *Model) {
	t.Helper()
	out := Format(m)
	m2, errs := Parse("printed", []byte(out))
	if errs.HasErrors() {
		t.Fatalf("printed form does not parse: %v\n%s", errs, out)
	}
	if !reflect.DeepEqual(stripPos(m), stripPos(m2)) {
		t.Fatalf("parse(print(m)) != m; printed:\n%s", out)
	}
	if again := Format(m2); again != out {
		t.Fatalf("printing is not stable:\n%s\n---\n%s", out, again)
	}
}

func lccFiles(t *testing.T) []string {
	var files []string
	for _, pat := range []string{"testdata/*.lcc", "testdata/conformance/*.lcc", "testdata/golden/*.lcc", "../policies/*.lcc"} {
		fs, _ := filepath.Glob(pat)
		files = append(files, fs...)
	}
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	return files
}

// TestRoundTripTestdata: parse(print(m)) == m for every model in testdata.
func TestRoundTripTestdata(t *testing.T) {
	for _, f := range lccFiles(t) {
		t.Run(f, func(t *testing.T) {
			roundTrip(t, mustParse(t, f, readFile(t, f)))
		})
	}
}

// TestGolden compares the canonical form of testdata/golden/*.lcc with the
// .golden file beside it (go test -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.lcc")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			got := Format(mustParse(t, f, readFile(t, f)))
			golden := strings.TrimSuffix(f, ".lcc") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := readFile(t, golden); got != want {
				t.Errorf("canonical form differs from %s:\n%s", golden, got)
			}
		})
	}
}

func TestCommentsSurviveFormat(t *testing.T) {
	src := "// head\nr(x, initial)\n\n// the clause\na(x, X) ::\n    null // trailing\n    then null.\n// tail\n"
	out := Format(mustParse(t, "c", src))
	for _, c := range []string{"// head", "// the clause", "// trailing", "// tail"} {
		if !strings.Contains(out, c) {
			t.Errorf("comment %q lost:\n%s", c, out)
		}
	}
	roundTrip(t, mustParse(t, "c", src))
}

func TestParseFactsFile(t *testing.T) {
	ts, err := ParseFacts("k", []byte("peer(t).\nload(0.9). colour(blue).\n"))
	if err != nil || len(ts) != 3 {
		t.Fatalf("got %v, %v", ts, err)
	}
	if _, err := ParseFacts("k", []byte("peer(X).\n")); err == nil || !strings.Contains(err.Error(), "k:1:6") {
		t.Fatalf("want a ground error at k:1:6, got %v", err)
	}
	if _, err := ParseFacts("k", []byte("peer(t)\n")); err == nil || !strings.Contains(err.Error(), "expected '.'") {
		t.Fatalf("want a missing '.' error, got %v", err)
	}
}

// TestConditionOpeningWithAnAgentTerm: a condition may open with an
// a(_, _) term; followed by a comparison, "is" or "and" it is a condition,
// not a role change, on either side of the event, and the printer's
// canonical form parses back to the same model.
func TestConditionOpeningWithAnAgentTerm(t *testing.T) {
	for _, src := range []string{
		"a(r, X) :: m(P, Q) <= a(s, S) <- a(P, Q) == a(1, 2).",
		"a(r, X) :: a(P, Q) == a(1, 2) <- m(P, Q) <= a(s, S).",
		"a(r, X) :: a(P, Q) = a(1, 2) and P > 0 <- null.",
		"a(r, X) :: null <- a(P, Q) = a(1, 2).",
	} {
		m, errs := Parse("t.lcc", []byte(src))
		if errs.HasErrors() {
			t.Errorf("%s: %v", src, errs)
			continue
		}
		st, ok := m.Clauses[0].Body.(*Step)
		if !ok || len(st.Cond) == 0 {
			t.Errorf("%s: parsed as %T without a condition", src, m.Clauses[0].Body)
			continue
		}
		if _, isRole := st.Event.(*RoleChange); isRole {
			t.Errorf("%s: the condition was taken for a role change", src)
		}
		out := Format(m)
		m2, errs := Parse("printed", []byte(out))
		if errs.HasErrors() || !reflect.DeepEqual(stripPos(m), stripPos(m2)) {
			t.Errorf("%s: printed %q does not parse back to the same model: %v", src, out, errs)
		}
	}
}
