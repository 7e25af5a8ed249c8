package lcc

import (
	"strconv"
	"strings"
)

// FormatTerm writes a term in canonical syntax.
func FormatTerm(t Term) string {
	var b strings.Builder
	writeTerm(&b, t, 0)
	return b.String()
}

// precedence of an arithmetic compound: 1 for + -, 2 for * /, 3 for unary -.
func arithPrec(t Term) int {
	c, ok := t.(*Compound)
	if !ok || !isArith(c) {
		return 4
	}
	switch {
	case len(c.Args) == 1:
		return 3
	case c.Functor == "+" || c.Functor == "-":
		return 1
	}
	return 2
}

func writeTerm(b *strings.Builder, t Term, depth int) {
	if depth > 10000 {
		b.WriteString("...")
		return
	}
	t = Deref(t)
	switch x := t.(type) {
	case *Atom:
		b.WriteString(quoteAtom(x.Name))
	case *Var:
		b.WriteString(x.Name)
	case *Ref:
		b.WriteString("_G")
		b.WriteString(strconv.FormatUint(x.id, 10))
	case *Int:
		b.WriteString(strconv.FormatInt(x.V, 10))
	case *Float:
		b.WriteString(formatFloat(x.V))
	case *Str:
		b.WriteString(quoteString(x.V))
	case *Nil:
		b.WriteString("[]")
	case *Cons:
		b.WriteByte('[')
		var cur Term = x
		first := true
		for {
			c, ok := Deref(cur).(*Cons)
			if !ok {
				break
			}
			if !first {
				b.WriteString(", ")
			}
			first = false
			writeTerm(b, c.Head, depth+1)
			cur = c.Tail
		}
		if _, ok := Deref(cur).(*Nil); !ok {
			b.WriteString(" | ")
			writeTerm(b, cur, depth+1)
		}
		b.WriteByte(']')
	case *Compound:
		if isArith(x) {
			writeArith(b, x, depth)
			return
		}
		b.WriteString(quoteAtom(x.Functor))
		b.WriteByte('(')
		for i, a := range x.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			writeTerm(b, a, depth+1)
		}
		b.WriteByte(')')
	default:
		b.WriteString("?")
	}
}

func writeArith(b *strings.Builder, x *Compound, depth int) {
	if len(x.Args) == 1 { // unary minus
		arg := Deref(x.Args[0])
		switch a := arg.(type) {
		case *Var, *Ref, *Atom:
			b.WriteByte('-')
			writeTerm(b, arg, depth+1)
		case *Compound:
			if !isArith(a) {
				b.WriteByte('-')
				writeTerm(b, arg, depth+1)
				return
			}
			b.WriteString("-(")
			writeTerm(b, arg, depth+1)
			b.WriteByte(')')
		default:
			b.WriteString("-(")
			writeTerm(b, arg, depth+1)
			b.WriteByte(')')
		}
		return
	}
	me := arithPrec(x)
	l, r := Deref(x.Args[0]), Deref(x.Args[1])
	writeOperand(b, l, arithPrec(l) < me, depth)
	b.WriteByte(' ')
	b.WriteString(x.Functor)
	b.WriteByte(' ')
	writeOperand(b, r, arithPrec(r) <= me, depth)
}

func writeOperand(b *strings.Builder, t Term, paren bool, depth int) {
	if paren {
		b.WriteByte('(')
	}
	writeTerm(b, t, depth+1)
	if paren {
		b.WriteByte(')')
	}
}

func formatFloat(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eIN") {
		s += ".0"
	} else if i := strings.IndexByte(s, 'e'); i >= 0 && !strings.Contains(s[:i], ".") {
		s = s[:i] + ".0" + s[i:]
	}
	return s
}

func plainAtom(s string) bool {
	if s == "" || !isLower(s[0]) || keywords[s] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func quoteAtom(s string) string {
	if plainAtom(s) {
		return s
	}
	return quoteWith(s, '\'')
}

func quoteString(s string) string { return quoteWith(s, '"') }

func quoteWith(s string, q byte) string {
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case q:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// Format writes a model in canonical form: role declarations, then facts,
// then clauses, each group separated by a blank line, with bodies laid out
// one step per line. Comments are kept, moved to the start of the line
// where the next item or step begins.
func Format(m *Model) string {
	pr := &printer{comments: m.Comments}
	for _, r := range m.Roles {
		pr.flush(r.Pos, 0)
		pr.s("r(")
		pr.term(r.Role)
		pr.s(", " + r.Kind)
		if r.Min >= 0 {
			pr.s(", " + strconv.Itoa(r.Min))
			if r.Max >= 0 {
				pr.s(", " + strconv.Itoa(r.Max))
			}
		}
		pr.s(")\n")
	}
	if len(m.Roles) > 0 && (len(m.Facts) > 0 || len(m.Clauses) > 0) {
		pr.s("\n")
	}
	for _, f := range m.Facts {
		pr.flush(f.Pos, 0)
		pr.term(f.Term)
		pr.s(".\n")
	}
	if len(m.Facts) > 0 && len(m.Clauses) > 0 {
		pr.s("\n")
	}
	for i, c := range m.Clauses {
		if i > 0 {
			pr.s("\n")
		}
		pr.flush(c.Pos, 0)
		pr.agent(c.Head)
		pr.s(" ::\n    ")
		pr.col = 4
		pr.def(c.Body, 4)
		pr.s(".\n")
	}
	pr.flush(Pos(1<<62), 0)
	return pr.b.String()
}

type printer struct {
	b        strings.Builder
	col      int
	comments []Comment
}

func (pr *printer) s(str string) {
	pr.b.WriteString(str)
	if i := strings.LastIndexByte(str, '\n'); i >= 0 {
		pr.col = len(str) - i - 1
	} else {
		pr.col += len(str)
	}
}

// flush writes the comments that come before pos, each on its own line at
// the given indent. It is called only at the start of a line.
func (pr *printer) flush(pos Pos, indent int) {
	for len(pr.comments) > 0 && pr.comments[0].Pos < pos {
		pr.s(pr.comments[0].Text + "\n" + strings.Repeat(" ", indent))
		pr.comments = pr.comments[1:]
	}
}

func (pr *printer) term(t Term) {
	pr.s(FormatTerm(t))
}

func (pr *printer) agent(a *Agent) {
	pr.s("a(")
	pr.term(a.Role)
	pr.s(", ")
	pr.term(a.ID)
	pr.s(")")
}

// def prints d starting at the current column, with continuation lines
// aligned at col.
func (pr *printer) def(d Def, col int) {
	switch x := d.(type) {
	case *Or:
		pr.list(x.Alts, "or ", col)
	case *Par:
		pr.list(x.Branches, "par ", col)
	case *Seq:
		pr.list(x.Steps, "then ", col)
	case *Group:
		pr.s("( ")
		pr.def(x.Def, col+2)
		pr.s(" )")
	case *Step:
		pr.step(x)
	}
}

func (pr *printer) list(ds []Def, kw string, col int) {
	for i, d := range ds {
		if i > 0 {
			pr.s("\n" + strings.Repeat(" ", col))
			pr.flush(d.defPos(), col)
			pr.s(kw)
			pr.def(d, col+len(kw))
			continue
		}
		pr.def(d, col)
	}
}

func (pr *printer) step(st *Step) {
	switch ev := st.Event.(type) {
	case *Send:
		pr.term(ev.Msg)
		pr.s(" => ")
		pr.agent(ev.To)
		pr.condAfter(st.Cond)
	case *Recv:
		// The condition goes on the left, as in classic LCC, unless it
		// opens with a constraint a/2, which would read as a role change.
		left := len(st.Cond) > 0 && !opensWithAgentCall(st.Cond)
		if left {
			pr.cond(st.Cond)
			pr.s(" <- ")
		}
		pr.term(ev.Msg)
		pr.s(" <= ")
		pr.agent(ev.From)
		if ev.Within != nil {
			pr.s(" within ")
			pr.term(ev.Within)
		}
		if !left {
			pr.condAfter(st.Cond)
		}
	case *Null:
		pr.s("null")
		pr.condAfter(st.Cond)
	case *RoleChange:
		pr.agent(ev.Agent)
		pr.condAfter(st.Cond)
	}
}

func opensWithAgentCall(c []Lit) bool {
	call, ok := c[0].(*Call)
	return ok && isAgentTerm(call.Term)
}

func (pr *printer) condAfter(c []Lit) {
	if len(c) > 0 {
		pr.s(" <- ")
		pr.cond(c)
	}
}

func (pr *printer) cond(c []Lit) { pr.s(FormatCond(c)) }

// FormatCond writes a conjunction in canonical syntax.
func FormatCond(c []Lit) string {
	var b strings.Builder
	writeCond(&b, c)
	return b.String()
}

func writeCond(b *strings.Builder, c []Lit) {
	for i, l := range c {
		if i > 0 {
			b.WriteString(" and ")
		}
		writeLit(b, l)
	}
}

func writeLit(b *strings.Builder, l Lit) {
	switch x := l.(type) {
	case *Call:
		writeTerm(b, x.Term, 0)
	case *Not:
		b.WriteString("not(")
		writeCond(b, x.Cond)
		b.WriteString(")")
	case *Disj:
		b.WriteString("(")
		for i, a := range x.Alts {
			if i > 0 {
				b.WriteString(" or ")
			}
			writeCond(b, a)
		}
		b.WriteString(")")
	case *Cmp:
		writeTerm(b, x.L, 0)
		b.WriteString(" " + x.Op + " ")
		writeTerm(b, x.R, 0)
	case *Is:
		writeTerm(b, x.Var, 0)
		b.WriteString(" is ")
		writeTerm(b, x.Expr, 0)
	}
}
