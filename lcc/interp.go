package lcc

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// agent is one node's part in one interaction.
type agent struct {
	node      *Node
	prog      *Program
	iid       string
	entry     Term
	startedBy string // the peer whose message started this responder ("" if started here)

	mu       sync.Mutex // held while executing; released while waiting
	progress bool       // a step has completed; guarded by mu

	mmu     sync.Mutex // guards the mailbox
	mbox    []Message
	ended   bool          // the agent has finished: a late message is dropped
	changed chan struct{} // closed and replaced when a message arrives

	handle *Handle
}

// post adds a message to the mailbox, unless it already holds max.
func (a *agent) post(m Message, max int) bool {
	a.mmu.Lock()
	defer a.mmu.Unlock()
	if a.ended {
		return true // too late: dropped, as a message for a finished interaction is
	}
	if len(a.mbox) >= max {
		return false
	}
	a.node.queued.Add(int64(m.weight))
	a.mbox = append(a.mbox, m)
	close(a.changed)
	a.changed = make(chan struct{})
	return true
}

// failure is why an agent's definition failed.
type failure struct {
	reason      string
	lazy        func() string // computes reason on demand: most failures are never printed
	timeout     bool
	uncommitted bool // failed before any event: an or may try the next alternative
}

func (f *failure) Error() string {
	if f.lazy != nil {
		f.reason, f.lazy = f.lazy(), nil
	}
	return f.reason
}

func failf(format string, args ...any) *failure {
	return &failure{reason: fmt.Sprintf(format, args...)}
}

// committed turns an uncommitted failure into a committed one.
func committed(err error) error {
	var f *failure
	if errors.As(err, &f) && f.uncommitted {
		c := *f
		c.uncommitted = false
		return &c
	}
	return err
}

func isUncommitted(err error) bool {
	var f *failure
	return errors.As(err, &f) && f.uncommitted
}

// maxRoleDepth bounds how deeply roles taken on outside tail position may
// nest. A role change in tail position runs in a loop and never counts; a
// recursion that is not in tail position nests, and past this depth fails
// the agent with a reason instead of exhausting the goroutine's stack.
const maxRoleDepth = 10000

// xctx is the state of one thread of execution: the main one, or one
// branch of a par.
type xctx struct {
	ctx   context.Context
	trail Trail
	// tries counts the or-alternatives whose opening is being tried: their
	// bindings may still be undone. A step that completes while being
	// tried commits them all (tries drops to 0), and a step that completes
	// with none open clears the trail, so a long loop keeps no bindings.
	tries int
	role  Term // the role this thread is playing now (a par branch has its own)
	depth int  // roles nested outside tail position
}

func (a *agent) run(ctx context.Context) {
	defer a.node.wg.Done()
	out := Outcome{Interaction: a.iid, Agent: a.node.cfg.ID, Role: FormatTerm(a.entry), Policy: a.prog.Ref}
	a.mu.Lock()
	x := &xctx{ctx: ctx, role: a.entry}
	err := a.runRole(x, &Agent{Role: a.entry, ID: &Atom{Name: a.node.cfg.ID}}, false)
	a.mu.Unlock()
	if err != nil {
		out.Status = Failed
		out.Reason = err.Error()
		var f *failure
		if errors.As(err, &f) && f.timeout {
			out.Status = TimedOut
		}
		if ctx.Err() == context.DeadlineExceeded {
			out.Status = TimedOut
		}
		out.Declined = !a.progress
	}
	a.node.finished(a)
	a.trace(x, TraceEvent{Kind: TraceOutcome, Term: out.Status.String() + reasonSuffix(out.Reason)})
	a.handle.outcome = out
	close(a.handle.done)
	if a.node.cfg.OnOutcome != nil {
		a.node.cfg.OnOutcome(out)
	}
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

func (a *agent) tracing() bool { return a.node.cfg.Tracer != nil }

func (a *agent) trace(x *xctx, e TraceEvent) {
	if a.node.cfg.Tracer == nil {
		return
	}
	e.Interaction = a.iid
	e.Policy = a.prog.Ref
	if e.Role == "" {
		e.Role = FormatTerm(x.role)
	}
	a.node.trace(e)
}

// runRole takes on a role and runs its clause; a role taken on in tail
// position loops here instead of growing the stack.
func (a *agent) runRole(x *xctx, call *Agent, try bool) error {
	for {
		body, err := a.enter(x, call, try)
		if err != nil {
			return err
		}
		next, err := a.exec(x, body, true, try, nil)
		if err != nil || next == nil {
			return err
		}
		call, try = next, false
	}
}

// enter instantiates the clause for call's role and unifies its head.
func (a *agent) enter(x *xctx, call *Agent, try bool) (Def, error) {
	if err := x.ctx.Err(); err != nil {
		return nil, ctxFailure(err)
	}
	role := Deref(call.Role)
	k := RoleKey(role)
	cl := a.prog.clauses[k]
	if cl == nil {
		return nil, failf("no clause for role %s", FormatTerm(role))
	}
	env := map[string]*Ref{}
	head := instantiate(&Compound{Functor: "a", Args: []Term{cl.Head.Role, cl.Head.ID}}, env)
	if !Unify(head, &Compound{Functor: "a", Args: []Term{call.Role, call.ID}}, &x.trail) {
		return nil, &failure{reason: fmt.Sprintf("role %s does not match the head of its clause", FormatTerm(role)), uncommitted: try}
	}
	x.role = role
	if a.tracing() {
		a.trace(x, TraceEvent{Kind: TraceRole, Term: FormatTerm(role)})
	}
	return instDef(cl.Body, env), nil
}

// instDef instantiates the terms of a definition for one clause instance.
// The tree is copied lazily: only the terms are instantiated, so a clause's
// structure is shared.
func instDef(d Def, env map[string]*Ref) Def {
	return &bound{def: d, env: env}
}

// bound pairs a source definition with its clause instance's variables.
type bound struct {
	def Def
	env map[string]*Ref
}

func (b *bound) defPos() Pos { return b.def.defPos() }

func ctxFailure(err error) *failure {
	if errors.Is(err, context.DeadlineExceeded) {
		return &failure{reason: "interaction timed out", timeout: true}
	}
	return &failure{reason: "cancelled"}
}

// exec runs a definition. tail is true when nothing follows it in its
// clause; a role change in tail position is returned instead of run. try is
// true while the definition is an or-alternative being tried. pre is a
// message already taken for its opening receive.
func (a *agent) exec(x *xctx, d Def, tail, try bool, pre *Message) (*Agent, error) {
	b := d.(*bound)
	return a.execIn(x, b.def, b.env, tail, try, pre)
}

func (a *agent) execIn(x *xctx, d Def, env map[string]*Ref, tail, try bool, pre *Message) (*Agent, error) {
	switch n := d.(type) {
	case *Group:
		return a.execIn(x, n.Def, env, tail, try, pre)
	case *Seq:
		last := len(n.Steps) - 1
		for i, s := range n.Steps {
			var p *Message
			if i == 0 {
				p = pre
			}
			next, err := a.execIn(x, s, env, tail && i == last, try && i == 0, p)
			if err != nil {
				if i > 0 {
					return nil, committed(err)
				}
				return nil, err
			}
			if next != nil {
				return next, nil
			}
		}
		return nil, nil
	case *Or:
		return a.execOr(x, n, env, tail, try, pre)
	case *Par:
		return nil, a.execPar(x, n, env)
	case *Step:
		return a.execStep(x, n, env, tail, try, pre)
	}
	return nil, failf("internal: unknown definition %T", d)
}

func (a *agent) execStep(x *xctx, s *Step, env map[string]*Ref, tail, try bool, pre *Message) (*Agent, error) {
	if err := x.ctx.Err(); err != nil {
		return nil, ctxFailure(err)
	}
	switch ev := s.Event.(type) {
	case *Null:
		if err := a.solveStep(x, s.Cond, env, try); err != nil {
			return nil, err
		}
	case *Send:
		if err := a.solveStep(x, s.Cond, env, try); err != nil {
			return nil, err
		}
		if err := a.send(x, ev, env); err != nil {
			return nil, err
		}
	case *Recv:
		if pre == nil {
			w := &waiter{recv: ev, env: env}
			if err := a.deadline(w); err != nil {
				return nil, err
			}
			got, err := a.await(x, []*waiter{w})
			if err != nil {
				return nil, err
			}
			if got == nil {
				return nil, &failure{reason: "deadline passed waiting for " + FormatTerm(instantiate(ev.Msg, env)), timeout: true}
			}
		}
		if len(s.Cond) > 0 {
			if err := a.solveStep(x, s.Cond, env, false); err != nil {
				return nil, committed(err)
			}
		}
	case *RoleChange:
		if err := a.solveStep(x, s.Cond, env, try); err != nil {
			return nil, err
		}
		call := &Agent{Role: instantiate(ev.Agent.Role, env), ID: instantiate(ev.Agent.ID, env)}
		if tail && !try {
			a.step(x, false) // the condition held: a step, though the role runs in the caller's loop
			return call, nil
		}
		if x.depth >= maxRoleDepth {
			return nil, failf("roles nested deeper than %d taking on %s: a recursion that is not in tail position", maxRoleDepth, FormatTerm(call.Role))
		}
		saved := x.role
		x.depth++
		err := a.runRole(x, call, try)
		x.depth--
		x.role = saved
		return nil, err
	}
	a.step(x, try)
	return nil, nil
}

// step records that a step completed. A step tried as the opening of
// or-alternatives commits them: none of their bindings can be undone any
// more. With no alternative open, the trail is cleared.
func (a *agent) step(x *xctx, try bool) {
	a.progress = true
	if try {
		x.tries = 0
	}
	if x.tries == 0 {
		clear(x.trail.refs) // drop the references, so the values can be collected
		x.trail.refs = x.trail.refs[:0]
	}
}

// solveStep solves a step's condition; a failure is uncommitted when the
// step is being tried as an or-alternative.
func (a *agent) solveStep(x *xctx, lits []Lit, env map[string]*Ref, try bool) error {
	if len(lits) == 0 {
		return nil
	}
	ok, err := a.solve(x, lits, env)
	if err != nil {
		return err
	}
	if !ok {
		return &failure{lazy: func() string { return "condition failed: " + formatCondIn(lits, env) }, uncommitted: try}
	}
	if a.node.cfg.Tracer != nil {
		a.trace(x, TraceEvent{Kind: TraceConstraint, Term: formatCondIn(lits, env)})
	}
	return nil
}

func formatCondIn(lits []Lit, env map[string]*Ref) string {
	inst := make([]Lit, len(lits))
	for i, l := range lits {
		inst[i] = instLit(l, env)
	}
	return FormatCond(inst)
}

func instLit(l Lit, env map[string]*Ref) Lit {
	switch x := l.(type) {
	case *Call:
		return &Call{Term: instantiate(x.Term, env)}
	case *Cmp:
		return &Cmp{Op: x.Op, L: instantiate(x.L, env), R: instantiate(x.R, env)}
	case *Is:
		return &Is{Var: instantiate(x.Var, env), Expr: instantiate(x.Expr, env)}
	case *Not:
		c := make([]Lit, len(x.Cond))
		for i, s := range x.Cond {
			c[i] = instLit(s, env)
		}
		return &Not{Cond: c}
	case *Disj:
		alts := make([][]Lit, len(x.Alts))
		for i, alt := range x.Alts {
			alts[i] = make([]Lit, len(alt))
			for j, s := range alt {
				alts[i][j] = instLit(s, env)
			}
		}
		return &Disj{Alts: alts}
	}
	return l
}

func idString(t Term) (string, bool) {
	switch x := Deref(t).(type) {
	case *Atom:
		return x.Name, true
	case *Str:
		return x.V, true
	case *Int:
		return FormatTerm(x), true
	}
	return "", false
}

// message builds the message a send step sends: it must be ground, and
// its receiver's id bound. The interpreter and the verifier's machine both
// build messages here.
func (a *agent) message(x *xctx, ev *Send, env map[string]*Ref) (Message, error) {
	msg := instantiate(ev.Msg, env)
	if !IsGround(msg) {
		return Message{}, failf("cannot send %s: the message has an unbound variable", FormatTerm(msg))
	}
	to, ok := idString(instantiate(ev.To.ID, env))
	if !ok {
		return Message{}, failf("cannot send %s: the receiver's id %s is not bound to an atom", FormatTerm(msg), FormatTerm(instantiate(ev.To.ID, env)))
	}
	return Message{
		Interaction: a.iid, Policy: a.prog.Ref,
		FromID: a.node.cfg.ID, FromRole: Export(a.entry), FromCurrent: Export(x.role),
		ToID: to, ToRole: Export(instantiate(ev.To.Role, env)), Body: Export(msg),
	}, nil
}

func (a *agent) send(x *xctx, ev *Send, env map[string]*Ref) error {
	m, err := a.message(x, ev, env)
	if err != nil {
		return err
	}
	to := m.ToID
	if a.tracing() {
		a.trace(x, TraceEvent{Kind: TraceSend, Peer: to, Term: FormatTerm(m.Body)})
	}
	if a.node.cfg.Transport == nil {
		return failf("cannot send %s to %s: no transport", FormatTerm(m.Body), to)
	}
	if err := a.node.cfg.Transport.Send(x.ctx, m); err != nil {
		if errors.Is(err, ErrUnreachable) && a.node.cfg.UnreachableIsSilence {
			if a.tracing() {
				a.trace(x, TraceEvent{Kind: TraceDrop, Peer: to, Term: FormatTerm(m.Body)})
			}
			return nil
		}
		return failf("send %s to %s: %v", FormatTerm(m.Body), to, err)
	}
	return nil
}
