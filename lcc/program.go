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
