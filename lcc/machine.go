package lcc

import (
	"context"
	"errors"
	"strings"
)

// The machine runs a model in small steps over explicit state, for 'parley
// lcc verify' and 'parley lcc run --replay'. Its state is a value: every
// agent's continuation (the residual clauses still to run, with their
// variables), mailbox and status, so it can be copied, hashed and
// compared. It shares the interpreter's semantics by calling the
// interpreter's own code for every step that is not control flow: entering
// a role (head unification), solving conditions (builtins, facts,
// knowledge, the domain's oracles in place of Go constraints), building a
// sent message, evaluating a deadline and matching a message to a receive.
// The control flow (then, or, par, receive, commit) is the interpreter's,
// turned inside out: exec's recursion becomes a stack of frames, and a
// goroutine waiting in await becomes a thread with a wait set.
//
// One transition runs one agent (one par branch) until it blocks on a
// receive, ends, forks a par, or comes to a second send: local steps run
// eagerly, and every send is a point where other agents may interleave.

type frameKind uint8

const (
	fDef  frameKind = iota // run def (with env), tail and pre as in exec
	fOr                    // an or being decided, from alternative next
	fRecv                  // a receive waiting; its condition runs once a message is taken
	fRole                  // on return from a role taken on outside tail position: restore role
	fPar                   // the branches in thread.par are running
)

type frame struct {
	kind      frameKind
	def       Def // fDef: the definition; fOr: *Or; fRecv: *Step
	env       map[string]*Ref
	tail, pre bool
	next      int  // fOr: the next alternative to consider
	role      Term // fRole: the role to restore
}

// mWaiter is one receive of a wait set.
type mWaiter struct {
	recv    *Recv
	env     map[string]*Ref
	alt     int     // the or-alternative it opens; -1 for a plain receive
	ns      float64 // its deadline in nanoseconds; -1: none
	expired bool
}

// fallback is where a thread resumes when an or-alternative being tried
// fails before any step completes: its frames, and how much of the trail
// to undo.
type fallback struct {
	k     []frame
	role  Term
	depth int
	mark  int
	prev  *fallback
}

// mThread is a thread of one agent: the main one or a par branch.
type mThread struct {
	k     []frame
	role  Term
	depth int
	wait  []mWaiter  // non-nil: blocked on these
	par   []*mThread // the top frame is fPar: these branches run (nil: finished)
	trail []*Ref     // bindings since the oldest open try
	fb    *fallback
}

type agentStatus uint8

const (
	running agentStatus = iota
	closed
	failedStatus
	timedOut
)

func (s agentStatus) String() string {
	return [...]string{"running", "closed", "failed", "timed_out"}[s]
}

// mAgent is one agent's state.
type mAgent struct {
	idx    int
	status agentStatus
	reason string
	broken bool              // failed because the model is wrong (unknown constraint, bad send), not by its own logic
	woken  bool              // it has taken a message: a responder that never has was never started
	ser    map[string][]byte // its canonical form, by renaming: an agent is never changed once stored
	root   *mThread
	mbox   []Message
	late   []Term // late(Msg, a(Role, Id), CurrentRole): receives whose deadline passed, for telling late messages from lost ones
}

// VerifyEvent is one thing an agent did in a verified run.
type VerifyEvent struct {
	Kind  string `json:"kind"` // send receive call fail role expire end
	Agent string `json:"agent"`
	Role  string `json:"role"`
	Peer  string `json:"peer,omitempty"`
	Term  Term   `json:"-"`
	Text  string `json:"term"`
	Pos   Pos    `json:"-"`
	Where string `json:"where,omitempty"` // file:line:col, filled in for counterexamples
}

// monitorTerm is the event as a term for property monitors:
// send(From, To, Msg), receive(Agent, From, Msg), call(Agent, C),
// fail(Agent, C), role(Agent, R), expire(Agent, Msg), end(Agent, Status).
func (e VerifyEvent) monitorTerm() Term {
	a := &Atom{Name: e.Agent}
	switch e.Kind {
	case "send", "receive":
		return &Compound{Functor: e.Kind, Args: []Term{a, &Atom{Name: e.Peer}, e.Term}}
	}
	return &Compound{Functor: e.Kind, Args: []Term{a, e.Term}}
}

// mAgentSpec is one verified agent.
type mAgentSpec struct {
	id     string
	entry  Term
	interp *agent // the interpreter's agent whose helpers run this one's steps
	dom    *agent // solves the domain's rules for this agent
}

// machine holds what does not change between states.
type machine struct {
	prog    *Program
	specs   []mAgentSpec
	byID    map[string]int
	defIDs  map[any]int
	vars    map[Def]map[string]bool // defVars, memoized
	steps   []*Step                 // every step of the model, for "never reached"
	reached map[*Step]bool
	events  []VerifyEvent // the events of the transition being run
	curRole Term
	curPos  Pos
	sent    bool            // the transition being run has sent its message
	initial map[string]bool // role keys declared initial
}

func (m *machine) emit(ag *mAgent, e VerifyEvent) {
	e.Agent = m.specs[ag.idx].id
	if e.Role == "" && m.curRole != nil {
		e.Role = roleLabel(m.curRole)
	}
	if e.Pos == NoPos {
		e.Pos = m.curPos
	}
	if e.Term != nil {
		e.Text = FormatTerm(e.Term)
	}
	m.events = append(m.events, e)
}

// runCtx is the per-transition context: the chooser for oracles.
func (m *machine) xctx(ctx context.Context, th *mThread) *xctx {
	x := &xctx{ctx: ctx, role: th.role, depth: th.depth}
	x.trail.refs = th.trail
	return x
}

// stopKind says why a thread stopped running.
type stopKind uint8

const (
	stopBlocked stopKind = iota
	stopSent
	stopDone
	stopForked
	stopFailed
)

// runThread runs th from where it stands.
func (m *machine) runThread(ctx context.Context, s *mState, ag *mAgent, th *mThread) stopKind {
	return m.run(s, ag, th, m.xctx(ctx, th))
}

// run runs the loop and keeps what the thread's context learnt.
func (m *machine) run(s *mState, ag *mAgent, th *mThread, x *xctx) stopKind {
	defer func() {
		th.role, th.depth = x.role, x.depth
		if th.fb == nil {
			th.trail = nil
		} else {
			th.trail = x.trail.refs
		}
	}()
	return m.loop(s, ag, th, x)
}

func (m *machine) loop(s *mState, ag *mAgent, th *mThread, x *xctx) stopKind {
	a := m.specs[ag.idx].interp
	for {
		m.curRole = x.role
		if len(th.k) == 0 {
			return stopDone
		}
		f := th.k[len(th.k)-1]
		th.k = th.k[:len(th.k)-1]
		var err error
		var stop stopKind = 255
		switch f.kind {
		case fRole:
			x.role = f.role
			x.depth--
			continue
		case fOr:
			stop, err = m.or(a, th, x, f)
		case fDef:
			stop, err = m.def(s, a, ag, th, x, f)
		}
		if err != nil {
			if isUncommitted(err) && th.fb != nil {
				m.restore(th, x)
				continue
			}
			m.fail(ag, err)
			return stopFailed
		}
		if stop != 255 {
			return stop
		}
	}
}

// commit records that a step completed: every or-alternative being tried
// is taken, and nothing of it can be undone.
func (m *machine) commit(th *mThread, x *xctx) {
	th.fb = nil
	x.trail.refs = x.trail.refs[:0]
}

func (m *machine) restore(th *mThread, x *xctx) {
	fb := th.fb
	x.trail.Undo(fb.mark)
	th.k = append([]frame(nil), fb.k...)
	x.role, x.depth = fb.role, fb.depth
	th.fb = fb.prev
	th.wait = nil
}

func (m *machine) fail(ag *mAgent, err error) {
	ag.status = failedStatus
	ag.reason = err.Error()
	var f *failure
	if errors.As(err, &f) && f.timeout {
		ag.status = timedOut
	}
	if strings.HasPrefix(ag.reason, "unknown constraint") || strings.HasPrefix(ag.reason, "cannot send") ||
		strings.HasPrefix(ag.reason, "no clause for role") || strings.Contains(ag.reason, "no agent ") ||
		strings.HasPrefix(ag.reason, "roles nested deeper") || strings.HasPrefix(ag.reason, "internal:") {
		ag.broken = true
	}
}

func (m *machine) def(s *mState, a *agent, ag *mAgent, th *mThread, x *xctx, f frame) (stopKind, error) {
	d, env := f.def, f.env
	switch n := d.(type) {
	case *Group:
		th.k = append(th.k, frame{kind: fDef, def: n.Def, env: env, tail: f.tail, pre: f.pre})
	case *Seq:
		last := len(n.Steps) - 1
		for i := last; i >= 0; i-- {
			th.k = append(th.k, frame{kind: fDef, def: n.Steps[i], env: env, tail: f.tail && i == last, pre: f.pre && i == 0})
		}
	case *Or:
		th.k = append(th.k, frame{kind: fOr, def: n, env: env, tail: f.tail})
	case *Par:
		// A par commits what encloses it: a branch's failure fails the agent.
		m.commit(th, x)
		th.par = make([]*mThread, len(n.Branches))
		for i, br := range n.Branches {
			th.par[i] = &mThread{k: []frame{{kind: fDef, def: br, env: env}}, role: x.role, depth: x.depth}
		}
		th.k = append(th.k, frame{kind: fPar})
		return stopForked, nil
	case *Step:
		return m.step(s, a, ag, th, x, n, env, f.tail, f.pre)
	default:
		return 0, failf("internal: unknown definition %T", d)
	}
	return 255, nil
}

func (m *machine) step(s *mState, a *agent, ag *mAgent, th *mThread, x *xctx, st *Step, env map[string]*Ref, tail, pre bool) (stopKind, error) {
	m.curPos = st.Pos
	try := th.fb != nil
	switch ev := st.Event.(type) {
	case *Null:
		m.reached[st] = true
		if err := a.solveStep(x, st.Cond, env, try); err != nil {
			return 0, err
		}
	case *Send:
		if m.sent {
			// A second send: others may act before it, so the transition
			// ends here and the send opens the next one.
			th.k = append(th.k, frame{kind: fDef, def: st, env: env, tail: tail, pre: pre})
			return stopSent, nil
		}
		m.reached[st] = true
		if err := a.solveStep(x, st.Cond, env, try); err != nil {
			return 0, err
		}
		msg, err := a.message(x, ev, env)
		if err != nil {
			return 0, err
		}
		to, ok := m.byID[msg.ToID]
		if !ok {
			return 0, failf("send %s to %s: no agent %s takes part", FormatTerm(msg.Body), msg.ToID, msg.ToID)
		}
		m.curPos = ev.Msg.TermPos()
		m.emit(ag, VerifyEvent{Kind: "send", Peer: msg.ToID, Term: msg.Body})
		s.deliver(to, msg)
		m.sent = true
		m.commit(th, x)
		return 255, nil
	case *Recv:
		if !pre {
			ns := -1.0
			if ev.Within != nil {
				v, err := within(ev, env)
				if err != nil {
					return 0, err
				}
				ns = v
			}
			th.wait = []mWaiter{{recv: ev, env: env, alt: -1, ns: ns}}
			th.k = append(th.k, frame{kind: fRecv, def: st, env: env, tail: tail})
			return stopBlocked, nil
		}
		m.reached[st] = true
		if len(st.Cond) > 0 {
			if err := a.solveStep(x, st.Cond, env, false); err != nil {
				return 0, committed(err)
			}
		}
	case *RoleChange:
		m.reached[st] = true
		if err := a.solveStep(x, st.Cond, env, try); err != nil {
			return 0, err
		}
		call := &Agent{Role: instantiate(ev.Agent.Role, env), ID: instantiate(ev.Agent.ID, env)}
		if tail && !try {
			m.commit(th, x)
		} else {
			if x.depth >= maxRoleDepth {
				return 0, failf("roles nested deeper than %d taking on %s: a recursion that is not in tail position", maxRoleDepth, FormatTerm(call.Role))
			}
			th.k = append(th.k, frame{kind: fRole, role: x.role})
			x.depth++
		}
		body, err := a.enter(x, call, try)
		if err != nil {
			return 0, err
		}
		m.curRole = x.role
		m.emit(ag, VerifyEvent{Kind: "role", Term: Export(x.role), Pos: ev.Agent.Pos})
		b := body.(*bound)
		th.k = append(th.k, frame{kind: fDef, def: b.def, env: b.env, tail: true})
		return 255, nil
	}
	m.commit(th, x)
	return 255, nil
}

// or decides a committed choice as execOr does: alternatives are tried
// left to right; those opening with a receive wait together from the
// moment every alternative before them has failed.
func (m *machine) or(a *agent, th *mThread, x *xctx, f frame) (stopKind, error) {
	n := f.def.(*Or)
	var waiting []mWaiter
	for i := f.next; i < len(n.Alts); i++ {
		alt := n.Alts[i]
		if r := leadingRecv(alt); r != nil {
			ns := -1.0
			if r.Within != nil {
				v, err := within(r, f.env)
				if err != nil {
					return 0, err
				}
				ns = v
			}
			waiting = append(waiting, mWaiter{recv: r, env: f.env, alt: i, ns: ns})
			continue
		}
		if len(waiting) > 0 {
			f.next = i
			th.k = append(th.k, f)
			th.wait = waiting
			return stopBlocked, nil
		}
		if i == len(n.Alts)-1 && th.fb == nil {
			th.k = append(th.k, frame{kind: fDef, def: alt, env: f.env, tail: f.tail})
			return 255, nil
		}
		resume := f
		resume.next = i + 1
		k := append(append([]frame(nil), th.k...), resume)
		th.fb = &fallback{k: k, role: x.role, depth: x.depth, mark: x.trail.Mark(), prev: th.fb}
		th.k = append(th.k, frame{kind: fDef, def: alt, env: f.env, tail: f.tail})
		return 255, nil
	}
	if len(waiting) > 0 {
		f.next = len(n.Alts)
		th.k = append(th.k, f)
		th.wait = waiting
		return stopBlocked, nil
	}
	return 0, &failure{reason: "no alternative could be taken", uncommitted: true}
}

// takeable returns the index of the first message in the mailbox that a
// live waiter of th takes, and which waiter, as await does; -1 if none.
func (m *machine) takeable(ag *mAgent, th *mThread) (int, int) {
	a := m.specs[ag.idx].interp
	x := &xctx{role: th.role}
	for i := range ag.mbox {
		for j, w := range th.wait {
			if w.expired {
				continue
			}
			mark := x.trail.Mark()
			ok := a.match(x, &waiter{recv: w.recv, env: w.env}, &ag.mbox[i])
			x.trail.Undo(mark)
			if ok {
				return i, j
			}
		}
	}
	return -1, -1
}

// receive takes message i for waiter j of th and runs on.
func (m *machine) receive(ctx context.Context, s *mState, ag *mAgent, th *mThread, i, j int) stopKind {
	a := m.specs[ag.idx].interp
	x := m.xctx(ctx, th)
	w := th.wait[j]
	msg := ag.mbox[i]
	if !a.match(x, &waiter{recv: w.recv, env: w.env}, &msg) {
		m.fail(ag, failf("internal: message no longer matches"))
		return stopFailed
	}
	ag.mbox = append(append([]Message(nil), ag.mbox[:i]...), ag.mbox[i+1:]...)
	ag.woken = true
	th.wait = nil
	m.curRole = x.role
	m.curPos = w.recv.Msg.TermPos()
	m.emit(ag, VerifyEvent{Kind: "receive", Peer: msg.FromID, Term: msg.Body})
	f := th.k[len(th.k)-1]
	th.k = th.k[:len(th.k)-1]
	m.commit(th, x)
	if f.kind == fOr {
		alt := f.def.(*Or).Alts[w.alt]
		th.k = append(th.k, frame{kind: fDef, def: alt, env: f.env, tail: f.tail, pre: true})
	} else {
		th.k = append(th.k, frame{kind: fDef, def: f.def, env: f.env, tail: f.tail, pre: true})
	}
	return m.run(s, ag, th, x)
}

// expire lets the earliest deadline of th's wait set pass (every waiter
// with that deadline); when none is left waiting the thread runs on.
func (m *machine) expire(ctx context.Context, s *mState, ag *mAgent, th *mThread) stopKind {
	first := -1.0
	for _, w := range th.wait {
		if !w.expired && w.ns >= 0 && (first < 0 || w.ns < first) {
			first = w.ns
		}
	}
	wait := append([]mWaiter(nil), th.wait...)
	live := 0
	for i := range wait {
		w := &wait[i]
		if w.expired {
			continue
		}
		if w.ns == first {
			w.expired = true
			pat := Export(instantiate(w.recv.Msg, w.env))
			from := Export(&Compound{Functor: "a", Args: []Term{instantiate(w.recv.From.Role, w.env), instantiate(w.recv.From.ID, w.env)}})
			ag.late = append(append([]Term(nil), ag.late...), &Compound{Functor: "late", Args: []Term{pat, from, Export(th.role)}})
			m.curRole = th.role
			m.curPos = w.recv.Msg.TermPos()
			m.emit(ag, VerifyEvent{Kind: "expire", Term: pat})
			continue
		}
		live++
	}
	th.wait = wait
	if live > 0 {
		return stopBlocked
	}
	th.wait = nil
	x := m.xctx(ctx, th)
	f := th.k[len(th.k)-1]
	if f.kind == fRecv {
		th.k = th.k[:len(th.k)-1]
		st := f.def.(*Step)
		err := &failure{reason: "deadline passed waiting for " + FormatTerm(instantiate(st.Event.(*Recv).Msg, f.env)), timeout: true}
		m.fail(ag, err)
		return stopFailed
	}
	return m.run(s, ag, th, x)
}

func (s agentStatus) ended() bool { return s != running }

// roleLabel is a role's name for a counterexample: collect for
// collect(VM, N, Acc, Bids).
func roleLabel(t Term) string {
	if n, _, ok := Functor(t); ok {
		return n
	}
	return FormatTerm(Export(t))
}
