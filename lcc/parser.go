package lcc

import (
	"fmt"
	"strconv"
)

const (
	// MaxErrors is how many syntax errors Parse reports before it stops.
	MaxErrors = 10
	// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
	maxDepth = 400
)

type parser struct {
	file  *File
	toks  []token
	p     int
	errs  ErrorList
	depth int
}

type bailout struct{} // too many errors: stop

type syncPanic struct{} // error reported: skip to the next item

// Parse parses one LCC source file. It always returns a Model (partial when
// there are errors) and the syntax errors found, at most MaxErrors of them.
// It never panics on any input.
func Parse(name string, src []byte) (m *Model, errs ErrorList) {
	f := NewFile(name, src)
	p := &parser{file: f}
	sc := &scanner{src: src, file: f, errs: &p.errs}
	p.toks = sc.scanAll()
	m = &Model{File: f, Comments: sc.comments}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(bailout); !ok {
				panic(r)
			}
		}
		errs = firstPerLine(p.errs)
		if len(errs) > MaxErrors {
			errs = errs[:MaxErrors]
		}
	}()
	if len(p.errs) >= MaxErrors {
		return m, p.errs
	}
	for p.tok().kind != tEOF {
		p.item(m)
	}
	if len(m.Clauses) == 0 && len(p.errs) == 0 {
		p.errs.Add(f.Position(p.tok().pos), SevError, "a model needs at least one clause a(Role, Id) :: ...")
	}
	return m, firstPerLine(p.errs)
}

// firstPerLine keeps the first error of each line: later ones on the same
// line are usually consequences of it.
func firstPerLine(errs ErrorList) ErrorList {
	var out ErrorList
	seen := map[int]bool{}
	for _, e := range errs {
		if seen[e.Pos.Line] {
			continue
		}
		seen[e.Pos.Line] = true
		out = append(out, e)
	}
	return out
}

// ParseTerm parses a single term, as used for facts and knowledge files.
func ParseTerm(src string) (t Term, err error) {
	f := NewFile("<term>", []byte(src))
	p := &parser{file: f}
	sc := &scanner{src: f.Src, file: f, errs: &p.errs}
	p.toks = sc.scanAll()
	defer func() {
		if r := recover(); r != nil {
			switch r.(type) {
			case bailout, syncPanic:
			default:
				panic(r)
			}
			t, err = nil, p.errs.Err()
		}
	}()
	if p.errs.HasErrors() {
		return nil, p.errs
	}
	t = p.expr()
	if p.tok().kind != tEOF {
		p.errorf(p.tok().pos, "expected end of term, found %s", describe(p.tok()))
	}
	return t, p.errs.Err()
}

// ParseFacts parses a knowledge file: ground terms, each ending in ".".
func ParseFacts(name string, src []byte) ([]Term, error) {
	f := NewFile(name, src)
	p := &parser{file: f}
	sc := &scanner{src: src, file: f, errs: &p.errs}
	p.toks = sc.scanAll()
	var out []Term
	p.items(func() {
		pos := p.tok().pos
		t := p.expr()
		p.expect(".")
		if p.checkFact(t, pos) {
			out = append(out, t)
		}
	})
	return out, p.errs.Err()
}

func (p *parser) tok() token { return p.toks[p.p] }

func (p *parser) peek(n int) token {
	if p.p+n < len(p.toks) {
		return p.toks[p.p+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() {
	if p.p < len(p.toks)-1 {
		p.p++
	}
}

func (p *parser) is(text string) bool {
	t := p.tok()
	return t.kind == tPunct && t.text == text
}

func (p *parser) isKw(kw string) bool {
	t := p.tok()
	return t.kind == tIdent && t.text == kw
}

func (p *parser) errorf(pos Pos, format string, args ...any) {
	p.errs.Add(p.file.Position(pos), SevError, fmt.Sprintf(format, args...))
	if len(p.errs) >= MaxErrors {
		panic(bailout{})
	}
}

// fail reports an error and abandons the current item.
func (p *parser) fail(pos Pos, format string, args ...any) {
	p.errorf(pos, format, args...)
	panic(syncPanic{})
}

func (p *parser) recoverSync() {
	if r := recover(); r != nil {
		if _, ok := r.(syncPanic); !ok {
			panic(r)
		}
		p.sync()
	}
}

// sync skips to just after the next ".", or to the start of a line that
// begins a new clause or role declaration.
func (p *parser) sync() {
	moved := false
	for p.tok().kind != tEOF {
		t := p.tok()
		if moved && t.lineStart && t.kind == tIdent && (t.text == "a" || t.text == "r") && p.peek(1).kind == tPunct && p.peek(1).text == "(" {
			return
		}
		p.next()
		moved = true
		if t.kind == tPunct && t.text == "." {
			return
		}
	}
}

func (p *parser) expect(text string) Pos {
	if !p.is(text) {
		p.fail(p.tok().pos, "expected '%s', found %s", text, describe(p.tok()))
	}
	pos := p.tok().pos
	p.next()
	return pos
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tIdent:
		if keywords[t.text] {
			return "keyword '" + t.text + "'"
		}
		return "atom '" + t.text + "'"
	case tQAtom:
		return "quoted atom " + quoteAtom(t.text)
	case tVar:
		return "variable " + t.text
	case tInt, tFloat:
		return "number " + t.text
	case tString:
		return "string " + strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

func (p *parser) enter(pos Pos) {
	p.depth++
	if p.depth > maxDepth {
		p.errs.Add(p.file.Position(pos), SevError, "nesting too deep")
		panic(bailout{})
	}
}

func (p *parser) leave() { p.depth-- }

// item parses one top-level item: a clause, a role declaration or a fact.
func (p *parser) item(m *Model) {
	defer p.recoverSync()
	p.depth = 0
	pos := p.tok().pos
	t := p.expr()
	if p.is("::") {
		p.next()
		head := p.asAgent(t, pos, "clause head")
		body := p.def()
		if p.is(".") {
			p.next()
		} else if !(p.tok().kind == tEOF || p.tok().kind == tIdent && p.tok().text == "a") {
			p.fail(p.tok().pos, "expected 'then', 'or', 'par', '.' or a new clause, found %s", describe(p.tok()))
		}
		m.Clauses = append(m.Clauses, &Clause{Pos: pos, Head: head, Body: body})
		return
	}
	if c, ok := t.(*Compound); ok && c.Functor == "r" && len(c.Args) >= 2 && len(c.Args) <= 4 {
		if k, ok := c.Args[1].(*Atom); ok && (k.Name == "initial" || k.Name == "necessary" || k.Name == "optional") {
			d := &RoleDecl{Pos: pos, Role: c.Args[0], Kind: k.Name, Min: -1, Max: -1}
			for i, a := range c.Args[2:] {
				n, ok := a.(*Int)
				if !ok || n.V < 0 || n.V > 1<<31 {
					p.errorf(a.TermPos(), "role cardinality must be a non-negative integer")
					continue
				}
				if i == 0 {
					d.Min = int(n.V)
				} else {
					d.Max = int(n.V)
				}
			}
			if _, _, ok := Functor(d.Role); !ok {
				p.errorf(d.Role.TermPos(), "role must be an atom or compound term")
			}
			if p.is(".") {
				p.next()
			}
			m.Roles = append(m.Roles, d)
			return
		}
	}
	if !p.is(".") {
		p.fail(p.tok().pos, "expected '::' after a clause head, or '.' after a fact, found %s", describe(p.tok()))
	}
	p.next()
	if p.checkFact(t, pos) {
		m.Facts = append(m.Facts, &Fact{Pos: pos, Term: t})
	}
}

func (p *parser) checkFact(t Term, pos Pos) bool {
	if _, _, ok := Functor(t); !ok {
		p.errorf(pos, "a fact must be an atom or compound term")
		return false
	}
	if v := firstVar(t); v != nil {
		p.errorf(v.Pos, "a fact must be ground, but variable %s is unbound", v.Name)
		return false
	}
	return true
}

func firstVar(t Term) *Var {
	switch x := t.(type) {
	case *Var:
		return x
	case *Compound:
		for _, a := range x.Args {
			if v := firstVar(a); v != nil {
				return v
			}
		}
	case *Cons:
		for {
			if v := firstVar(x.Head); v != nil {
				return v
			}
			next, ok := x.Tail.(*Cons)
			if !ok {
				return firstVar(x.Tail)
			}
			x = next
		}
	}
	return nil
}

func (p *parser) asAgent(t Term, pos Pos, what string) *Agent {
	c, ok := t.(*Compound)
	if !ok || c.Functor != "a" || len(c.Args) != 2 {
		p.fail(pos, "%s must be a(Role, Id)", what)
	}
	return &Agent{Pos: c.Pos, Role: c.Args[0], ID: c.Args[1]}
}

// def = alt { "or" alt }
func (p *parser) def() Def {
	p.enter(p.tok().pos)
	defer p.leave()
	first := p.alt()
	if !p.isKw("or") {
		return first
	}
	alts := []Def{first}
	for p.isKw("or") {
		p.next()
		alts = append(alts, p.alt())
	}
	return &Or{Alts: alts}
}

// alt = seq { "par" seq }
func (p *parser) alt() Def {
	first := p.seq()
	if !p.isKw("par") {
		return first
	}
	bs := []Def{first}
	for p.isKw("par") {
		p.next()
		bs = append(bs, p.seq())
	}
	return &Par{Branches: bs}
}

// seq = step { "then" step }
func (p *parser) seq() Def {
	first := p.step()
	if !p.isKw("then") {
		return first
	}
	steps := []Def{first}
	for p.isKw("then") {
		p.next()
		steps = append(steps, p.step())
	}
	return &Seq{Steps: steps}
}

// afterParen returns the token that follows the ")" matching the "(" at the
// current token.
func (p *parser) afterParen() token {
	depth := 0
	for i := p.p; i < len(p.toks); i++ {
		t := p.toks[i]
		if t.kind == tEOF {
			return t
		}
		if t.kind == tPunct {
			switch t.text {
			case "(", "[":
				depth++
			case ")", "]":
				depth--
				if depth == 0 {
					return p.peek(i - p.p + 1)
				}
			}
		}
	}
	return p.toks[len(p.toks)-1]
}

var relops = map[string]bool{"=": true, "\\=": true, "==": true, "\\==": true, "<": true, "=<": true, ">": true, ">=": true}

func isPunct(t token, texts ...string) bool {
	if t.kind != tPunct {
		return false
	}
	for _, s := range texts {
		if t.text == s {
			return true
		}
	}
	return false
}

// step = [cond "<-"] event ["<-" cond] | "(" def ")"
func (p *parser) step() Def {
	pos := p.tok().pos
	if p.is("(") && !startsCond(p.afterParen()) {
		p.next()
		d := p.def()
		p.expect(")")
		return &Group{Pos: pos, Def: d}
	}
	var lead []Lit
	switch {
	case p.isKw("not") || p.is("("):
		lead = p.cond()
		p.expect("<-")
	case p.isKw("null"):
	default:
		t := p.expr()
		if p.is("=>") || p.is("<=") {
			return p.finishStep(pos, p.event(t, pos), nil)
		}
		// a(P, Q) == a(1, 2) <- ...: a term that a comparison, "is" or
		// "and" follows opens a condition, even when it looks like a role
		opensCond := p.isKw("and") || p.isKw("is") || relops[p.tok().text] && p.tok().kind == tPunct
		if isAgentTerm(t) && !opensCond {
			return p.finishStep(pos, p.event(t, pos), nil)
		}
		if p.is("<-") || opensCond {
			lead = []Lit{p.finishLit(t, pos)}
			for p.isKw("and") {
				p.next()
				lead = append(lead, p.lit())
			}
			p.expect("<-")
		} else {
			return p.finishStep(pos, p.event(t, pos), nil)
		}
	}
	evPos := p.tok().pos
	if p.isKw("null") {
		p.next()
		return p.finishStep(pos, &Null{Pos: evPos}, lead)
	}
	t := p.expr()
	return p.finishStep(pos, p.event(t, evPos), lead)
}

// startsCond reports whether the token after a parenthesis shows that the
// parenthesis opened a condition, not a grouped definition.
func startsCond(after token) bool {
	if after.kind == tIdent {
		return after.text == "is" || after.text == "and"
	}
	return after.kind == tPunct && (after.text == "<-" || relops[after.text] || isPunct(after, "+", "-", "*", "/"))
}

func isAgentTerm(t Term) bool {
	c, ok := t.(*Compound)
	return ok && c.Functor == "a" && len(c.Args) == 2
}

// event finishes a send, a receive or a role change whose first term is t.
func (p *parser) event(t Term, pos Pos) Event {
	switch {
	case p.is("=>"):
		p.next()
		return &Send{Msg: t, To: p.agent()}
	case p.is("<="):
		p.next()
		r := &Recv{Msg: t, From: p.agent()}
		if p.isKw("within") {
			p.next()
			r.Within = p.expr()
		}
		return r
	}
	c, ok := t.(*Compound)
	if !ok || c.Functor != "a" || len(c.Args) != 2 {
		p.fail(p.tok().pos, "expected '=>', '<=' or '<-' after %s, or a role a(Role, Id); found %s", termSummary(t), describe(p.tok()))
	}
	return &RoleChange{Agent: &Agent{Pos: c.Pos, Role: c.Args[0], ID: c.Args[1]}}
}

func termSummary(t Term) string {
	s := FormatTerm(t)
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return "term " + s
}

func (p *parser) finishStep(pos Pos, ev Event, lead []Lit) Def {
	if p.is("<-") {
		p.next()
		lead = append(lead, p.cond()...)
	}
	return &Step{Pos: pos, Event: ev, Cond: lead}
}

func (p *parser) agent() *Agent {
	pos := p.tok().pos
	t := p.primary()
	return p.asAgent(t, pos, "the other party of a message")
}
