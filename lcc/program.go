package lcc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// PolicyRef names the exact model an interaction runs.
type PolicyRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Hash    string `json:"hash"`
}

func (p PolicyRef) String() string { return fmt.Sprintf("%s@v%d", p.Name, p.Version) }

// HashSource returns the content hash used in a PolicyRef.
func HashSource(src []byte) string {
	h := sha256.Sum256(src)
	return hex.EncodeToString(h[:])
}

// Program is a model ready to run, pinned to a policy version.
type Program struct {
	Model   *Model
	Ref     PolicyRef
	clauses map[string]*Clause
	facts   map[string][]Term
}

// NewProgram indexes a parsed model. The model should have passed Check.
func NewProgram(m *Model, ref PolicyRef) *Program {
	markModelGround(m)
	p := &Program{Model: m, Ref: ref, clauses: map[string]*Clause{}, facts: indexFacts(m.FactTerms())}
	for _, c := range m.Clauses {
		k := RoleKey(c.Head.Role)
		if _, dup := p.clauses[k]; !dup {
			p.clauses[k] = c
		}
	}
	return p
}

// Compile parses and checks src and returns a Program, or the diagnostics.
// Warnings do not stop compilation and are returned with the program.
func Compile(name string, src []byte, ref PolicyRef, known Known) (*Program, ErrorList, error) {
	m, errs := Parse(name, src)
	if errs.HasErrors() {
		return nil, errs, errs
	}
	diags := Check(m, known)
	if diags.HasErrors() {
		return nil, diags, diags
	}
	if ref.Hash == "" {
		ref.Hash = HashSource(src)
	}
	return NewProgram(m, ref), diags, nil
}

// Fact returns the first model fact that unifies with pattern, resolved, or nil.
func (p *Program) Fact(pattern Term) Term {
	for _, f := range p.facts[Key(pattern)] {
		tr := &Trail{}
		if Unify(pattern, f, tr) {
			r := Resolve(pattern)
			tr.Undo(0)
			return r
		}
	}
	return nil
}

func indexFacts(ts []Term) map[string][]Term {
	out := map[string][]Term{}
	for _, t := range ts {
		k := Key(t)
		out[k] = append(out[k], t)
	}
	return out
}

// markModelGround flags the ground terms of a model (see markGround) while
// it is not shared yet, so that running it copies and checks them in
// constant time.
func markModelGround(m *Model) {
	for _, f := range m.Facts {
		markGround(f.Term)
	}
	agent := func(a *Agent) {
		if a != nil {
			markGround(a.Role)
			markGround(a.ID)
		}
	}
	lits := func(ls []Lit) {
		walkLits(ls, func(l Lit) {
			switch x := l.(type) {
			case *Call:
				markGround(x.Term)
			case *Cmp:
				markGround(x.L)
				markGround(x.R)
			case *Is:
				markGround(x.Expr)
			}
		})
	}
	for _, c := range m.Clauses {
		agent(c.Head)
		walkSteps(c.Body, func(s *Step) {
			lits(s.Cond)
			switch e := s.Event.(type) {
			case *Send:
				markGround(e.Msg)
				agent(e.To)
			case *Recv:
				markGround(e.Msg)
				agent(e.From)
				if e.Within != nil {
					markGround(e.Within)
				}
			case *RoleChange:
				agent(e.Agent)
			}
		})
	}
}
