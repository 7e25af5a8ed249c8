package lcc

import "strconv"

// cond = lit { "and" lit }
func (p *parser) cond() []Lit {
	lits := []Lit{p.lit()}
	for p.isKw("and") {
		p.next()
		lits = append(lits, p.lit())
	}
	return lits
}

// lit = "not" "(" cond ")" | "(" cond { "or" cond } ")" | term | expr relop expr | VAR "is" expr
func (p *parser) lit() Lit {
	pos := p.tok().pos
	p.enter(pos)
	defer p.leave()
	if p.isKw("not") {
		p.next()
		p.expect("(")
		c := p.cond()
		p.expect(")")
		return &Not{Pos: pos, Cond: c}
	}
	if p.is("(") {
		after := p.afterParen()
		if !(after.kind == tPunct && (relops[after.text] || isPunct(after, "+", "-", "*", "/"))) && !(after.kind == tIdent && after.text == "is") {
			p.next()
			alts := [][]Lit{p.cond()}
			for p.isKw("or") {
				p.next()
				alts = append(alts, p.cond())
			}
			p.expect(")")
			return &Disj{Pos: pos, Alts: alts}
		}
	}
	return p.finishLit(p.expr(), pos)
}

func (p *parser) finishLit(t Term, pos Pos) Lit {
	if p.tok().kind == tPunct && relops[p.tok().text] {
		op := p.tok().text
		p.next()
		return &Cmp{Pos: pos, Op: op, L: t, R: p.expr()}
	}
	if p.isKw("is") {
		p.next()
		if _, ok := t.(*Var); !ok {
			p.errorf(pos, "the left side of 'is' must be a variable, found %s", termSummary(t))
		}
		return &Is{Pos: pos, Var: t, Expr: p.expr()}
	}
	switch x := t.(type) {
	case *Atom:
		return &Call{Term: t}
	case *Compound:
		if isArith(x) {
			p.fail(p.tok().pos, "expected a comparison or 'is' after the expression %s, found %s", FormatTerm(t), describe(p.tok()))
		}
		return &Call{Term: t}
	}
	p.fail(pos, "expected a constraint, found %s", termSummary(t))
	return nil
}

func isArith(c *Compound) bool {
	switch c.Functor {
	case "+", "*", "/":
		return len(c.Args) == 2
	case "-":
		return len(c.Args) == 1 || len(c.Args) == 2
	}
	return false
}

// expr = mul { ("+" | "-") mul }
func (p *parser) expr() Term {
	p.enter(p.tok().pos)
	defer p.leave()
	l := p.mul()
	for p.is("+") || p.is("-") {
		op := p.tok()
		p.next()
		r := p.mul()
		l = &Compound{Functor: op.text, Args: []Term{l, r}, Pos: op.pos}
	}
	return l
}

// mul = unary { ("*" | "/") unary }
func (p *parser) mul() Term {
	l := p.unary()
	for p.is("*") || p.is("/") {
		op := p.tok()
		p.next()
		r := p.unary()
		l = &Compound{Functor: op.text, Args: []Term{l, r}, Pos: op.pos}
	}
	return l
}

// unary = ["-"] primary; "-" directly before a number makes a negative literal.
func (p *parser) unary() Term {
	if !p.is("-") {
		return p.primary()
	}
	pos := p.tok().pos
	p.next()
	switch t := p.tok(); t.kind {
	case tInt, tFloat:
		n := p.number(t, true)
		p.next()
		return n
	}
	p.enter(pos)
	defer p.leave()
	return &Compound{Functor: "-", Args: []Term{p.unary()}, Pos: pos}
}

func (p *parser) number(t token, neg bool) Term {
	text := t.text
	if neg {
		text = "-" + text
	}
	if t.kind == tInt {
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			p.errorf(t.pos, "integer %s is out of range", text)
		}
		return &Int{V: v, Pos: t.pos}
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		p.errorf(t.pos, "number %s is out of range", text)
	}
	return &Float{V: v, Pos: t.pos}
}

func (p *parser) primary() Term {
	t := p.tok()
	switch t.kind {
	case tInt, tFloat:
		p.next()
		return p.number(t, false)
	case tString:
		p.next()
		return &Str{V: t.text, Pos: t.pos}
	case tVar:
		p.next()
		return &Var{Name: t.text, Pos: t.pos}
	case tIdent, tQAtom:
		if t.kind == tIdent && keywords[t.text] {
			p.fail(t.pos, "expected a term, found %s (quote it to use it as an atom: '%s')", describe(t), t.text)
		}
		p.next()
		if !p.is("(") {
			return &Atom{Name: t.text, Pos: t.pos}
		}
		p.next()
		p.enter(t.pos)
		defer p.leave()
		var args []Term
		if !p.is(")") {
			args = append(args, p.expr())
			for p.is(",") {
				p.next()
				args = append(args, p.expr())
			}
		}
		p.expect(")")
		if len(args) == 0 {
			p.errorf(t.pos, "compound term %s() needs at least one argument", t.text)
			return &Atom{Name: t.text, Pos: t.pos}
		}
		return &Compound{Functor: t.text, Args: args, Pos: t.pos}
	case tPunct:
		switch t.text {
		case "[":
			p.next()
			if p.is("]") {
				p.next()
				return &Nil{Pos: t.pos}
			}
			p.enter(t.pos)
			defer p.leave()
			elems := []Term{p.expr()}
			for p.is(",") {
				p.next()
				elems = append(elems, p.expr())
			}
			var tail Term = &Nil{Pos: t.pos}
			if p.is("|") {
				p.next()
				tail = p.expr()
			}
			p.expect("]")
			l := ListWithTail(elems, tail)
			if c, ok := l.(*Cons); ok {
				c.Pos = t.pos
			}
			return l
		case "(":
			p.next()
			e := p.expr()
			p.expect(")")
			return e
		}
	}
	p.fail(t.pos, "expected a term, found %s", describe(t))
	return nil
}
