package lcc

// Model is a parsed LCC file: role declarations, facts and clauses.
type Model struct {
	File     *File
	Roles    []*RoleDecl
	Facts    []*Fact
	Clauses  []*Clause
	Comments []Comment
}

// RoleDecl is r(Role, Kind[, Min[, Max]]).
type RoleDecl struct {
	Pos  Pos
	Role Term
	Kind string // initial, necessary, optional
	Min  int    // -1 when absent
	Max  int    // -1 when absent
}

// Fact is a ground term standing alone: param(high_load, 0.80).
type Fact struct {
	Pos  Pos
	Term Term
}

// Clause is a(Role, Id) :: Def.
type Clause struct {
	Pos  Pos
	Head *Agent
	Body Def
}

// Agent is a(Role, Id).
type Agent struct {
	Pos  Pos
	Role Term
	ID   Term
}

// Def is a clause body: *Or, *Par, *Seq, *Group or *Step.
type Def interface{ defPos() Pos }

// Or is A or B or ...: committed choice.
type Or struct{ Alts []Def }

// Par is A par B par ...
type Par struct{ Branches []Def }

// Seq is A then B then ...
type Seq struct{ Steps []Def }

// Group is a parenthesised definition.
type Group struct {
	Pos Pos
	Def Def
}

// Step is one event with its condition.
type Step struct {
	Pos   Pos
	Event Event
	Cond  []Lit // conjunction; nil when there is none
}

func (d *Or) defPos() Pos    { return d.Alts[0].defPos() }
func (d *Par) defPos() Pos   { return d.Branches[0].defPos() }
func (d *Seq) defPos() Pos   { return d.Steps[0].defPos() }
func (d *Group) defPos() Pos { return d.Pos }
func (d *Step) defPos() Pos  { return d.Pos }

// Event is *Send, *Recv, *Null or *RoleChange.
type Event interface{ eventPos() Pos }

// Send is Msg => a(R, I).
type Send struct {
	Msg Term
	To  *Agent
}

// Recv is Msg <= a(R, I) [within T].
type Recv struct {
	Msg    Term
	From   *Agent
	Within Term // nil when absent
}

// Null is the null event.
type Null struct{ Pos Pos }

// RoleChange is taking on a role: a(R, I).
type RoleChange struct{ Agent *Agent }

func (e *Send) eventPos() Pos       { return e.Msg.TermPos() }
func (e *Recv) eventPos() Pos       { return e.Msg.TermPos() }
func (e *Null) eventPos() Pos       { return e.Pos }
func (e *RoleChange) eventPos() Pos { return e.Agent.Pos }

// Lit is one literal of a condition: *Call, *Not, *Disj, *Cmp or *Is.
type Lit interface{ litPos() Pos }

// Call is a constraint: load(L).
type Call struct{ Term Term }

// Not is not(Cond).
type Not struct {
	Pos  Pos
	Cond []Lit
}

// Disj is (C1 or C2 or ...); a parenthesised condition has one alternative.
type Disj struct {
	Pos  Pos
	Alts [][]Lit
}

// Cmp is L op R with op one of = \= == \== < =< > >=.
type Cmp struct {
	Pos  Pos
	Op   string
	L, R Term
}

// Is is X is Expr.
type Is struct {
	Pos  Pos
	Var  Term
	Expr Term
}

func (l *Call) litPos() Pos { return l.Term.TermPos() }
func (l *Not) litPos() Pos  { return l.Pos }
func (l *Disj) litPos() Pos { return l.Pos }
func (l *Cmp) litPos() Pos  { return l.Pos }
func (l *Is) litPos() Pos   { return l.Pos }

// RoleKey is the name/arity of a role term: collect/3 for collect(VM, Acc, Bids).
func RoleKey(role Term) string { return Key(role) }

// Clause returns the clause for a role key, or nil.
func (m *Model) Clause(key string) *Clause {
	for _, c := range m.Clauses {
		if RoleKey(c.Head.Role) == key {
			return c
		}
	}
	return nil
}

// InitialRoles returns the role keys declared initial, in order.
func (m *Model) InitialRoles() []string {
	var out []string
	for _, r := range m.Roles {
		if r.Kind == "initial" {
			out = append(out, RoleKey(r.Role))
		}
	}
	return out
}

// FactTerms returns the model's facts as terms.
func (m *Model) FactTerms() []Term {
	out := make([]Term, len(m.Facts))
	for i, f := range m.Facts {
		out[i] = f.Term
	}
	return out
}
