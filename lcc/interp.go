package lcc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sentinel errors.
var (
	// ErrUnreachable is returned by a Transport when the receiving agent
	// cannot be reached.
	ErrUnreachable = errors.New("lcc: peer unreachable")
	// ErrPolicyMismatch is returned by Deliver when a message names a policy
	// version other than the one its interaction runs.
	ErrPolicyMismatch = errors.New("lcc: message names another policy version than its interaction")
	// ErrUnknownRole is returned by Deliver when the receiving role has no clause.
	ErrUnknownRole = errors.New("lcc: no clause for the receiving role")
	// ErrClosed is returned once a Node has been closed.
	ErrClosed = errors.New("lcc: node closed")
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

// Message is one LCC message between agents.
type Message struct {
	Interaction string
	Policy      PolicyRef
	FromID      string
	FromRole    Term // the sender's entry role
	FromCurrent Term // the role the sender was playing when it sent
	ToID        string
	ToRole      Term
	Body        Term
}

// Transport carries messages between nodes. Send must not block for long:
// delivery is into a mailbox.
type Transport interface {
	Send(ctx context.Context, m Message) error
}

// Status is how an agent's part in an interaction ended.
type Status int

const (
	Closed Status = iota
	Failed
	TimedOut
)

func (s Status) String() string {
	switch s {
	case Closed:
		return "closed"
	case Failed:
		return "failed"
	}
	return "timed out"
}

// Outcome is the result of one agent in one interaction.
type Outcome struct {
	Interaction string
	Agent       string
	Role        string
	Policy      PolicyRef
	Status      Status
	Reason      string
	// Declined is true when the agent failed before any step completed:
	// its opening condition did not hold, so nothing was said or done.
	Declined bool
}

// TraceKind names what a TraceEvent records.
type TraceKind string

const (
	TraceSend       TraceKind = "send"
	TraceReceive    TraceKind = "receive"
	TraceConstraint TraceKind = "constraint"
	TraceRole       TraceKind = "role"
	TraceTimeout    TraceKind = "timeout"
	TraceDrop       TraceKind = "drop"
	TraceOutcome    TraceKind = "outcome"
)

// TraceEvent is one step an agent took.
type TraceEvent struct {
	Time        time.Time
	Interaction string
	Policy      PolicyRef
	Agent       string
	Role        string // the role being played, printed
	Kind        TraceKind
	Peer        string // the other agent of a send or receive
	Term        string // the message, the solved condition, or the role taken on
}

func (e TraceEvent) String() string {
	switch e.Kind {
	case TraceSend:
		return fmt.Sprintf("%s sends %s to %s", e.Agent, e.Term, e.Peer)
	case TraceReceive:
		return fmt.Sprintf("%s receives %s from %s", e.Agent, e.Term, e.Peer)
	case TraceConstraint:
		return fmt.Sprintf("%s solves %s", e.Agent, e.Term)
	case TraceRole:
		return fmt.Sprintf("%s takes on %s", e.Agent, e.Term)
	case TraceTimeout:
		return fmt.Sprintf("%s: deadline passed waiting for %s", e.Agent, e.Term)
	case TraceDrop:
		return fmt.Sprintf("%s drops %s from %s", e.Agent, e.Term, e.Peer)
	}
	return fmt.Sprintf("%s %s: %s", e.Agent, e.Kind, e.Term)
}

// Tracer sees every step. It is called from agent goroutines and must be
// safe for concurrent use.
type Tracer interface{ Trace(TraceEvent) }

// TracerFunc adapts a function to Tracer.
type TracerFunc func(TraceEvent)

// Trace implements Tracer.
func (f TracerFunc) Trace(e TraceEvent) { f(e) }

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

// NodeConfig configures a Node: one agent identity in a host program.
type NodeConfig struct {
	ID        string
	Transport Transport
	Registry  *Registry
	Knowledge []Term
	Tracer    Tracer
	// Resolve finds the program for a policy version named by an incoming
	// message that starts a responder. Nil: only Programs given to Start
	// (and AddProgram) are known.
	Resolve func(ctx context.Context, ref PolicyRef) (*Program, error)
	// OnOutcome is called once for every agent instance that ends.
	OnOutcome func(Outcome)
	// UnreachableIsSilence makes a send to an unreachable peer count as a
	// message that was lost (the peer never answers) instead of failing
	// the agent.
	UnreachableIsSilence bool
	// ResponderTimeout bounds the life of an instance started by an
	// incoming message. Zero means no bound.
	ResponderTimeout time.Duration
	// DoneRetention is how many finished interaction ids are remembered,
	// so that late messages are dropped instead of starting a new
	// responder. Default 4096.
	DoneRetention int
}

// Node runs the agent instances of one identity: one mailbox per
// interaction, responders created on the first message.
type Node struct {
	cfg       NodeConfig
	knowledge map[string][]Term
	ctx       context.Context
	cancel    context.CancelFunc

	mu       sync.Mutex
	inst     map[string]*agent
	programs map[string]*Program // by policy hash
	done     map[string]struct{}
	doneFIFO []string
	wg       sync.WaitGroup
	closed   bool
}

// NewNode creates a node.
func NewNode(cfg NodeConfig) *Node {
	if cfg.DoneRetention <= 0 {
		cfg.DoneRetention = 4096
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Node{
		cfg: cfg, knowledge: indexFacts(cfg.Knowledge), ctx: ctx, cancel: cancel,
		inst: map[string]*agent{}, programs: map[string]*Program{}, done: map[string]struct{}{},
	}
}

// ID returns the node's agent id.
func (n *Node) ID() string { return n.cfg.ID }

// AddProgram makes a program known for responders without a Resolve call.
func (n *Node) AddProgram(p *Program) {
	n.mu.Lock()
	n.programs[p.Ref.Hash] = p
	n.mu.Unlock()
}

// Active returns the number of running agent instances.
func (n *Node) Active() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.inst)
}

// Close cancels every running instance and waits for them to end.
func (n *Node) Close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
}

// Handle follows one running agent instance.
type Handle struct {
	done    chan struct{}
	outcome Outcome
}

// Wait blocks until the instance ends and returns its outcome.
func (h *Handle) Wait() Outcome { <-h.done; return h.outcome }

// Done is closed when the instance has ended.
func (h *Handle) Done() <-chan struct{} { return h.done }

// Start runs role on this node as a new agent of interaction id, using
// prog. ctx bounds the agent's whole life.
func (n *Node) Start(ctx context.Context, prog *Program, interaction string, role Term) (*Handle, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if _, ok := n.inst[interaction]; ok {
		return nil, fmt.Errorf("lcc: node %s already runs interaction %s", n.cfg.ID, interaction)
	}
	if prog.clauses[RoleKey(role)] == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownRole, FormatTerm(role))
	}
	n.programs[prog.Ref.Hash] = prog
	return n.startLocked(ctx, prog, interaction, role), nil
}

func (n *Node) startLocked(ctx context.Context, prog *Program, interaction string, role Term) *Handle {
	a := &agent{
		node: n, prog: prog, iid: interaction, entry: role, current: role,
		changed: make(chan struct{}), handle: &Handle{done: make(chan struct{})},
	}
	n.inst[interaction] = a
	n.wg.Add(1)
	go a.run(ctx)
	return a.handle
}

// Deliver puts an incoming message into the mailbox of its interaction,
// starting a responder on the exact policy version the message names when
// the interaction is new here. A message for an interaction that has ended
// here is dropped.
func (n *Node) Deliver(ctx context.Context, m Message) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	a := n.inst[m.Interaction]
	if a == nil {
		if _, ended := n.done[m.Interaction]; ended {
			n.mu.Unlock()
			n.trace(TraceEvent{Interaction: m.Interaction, Policy: m.Policy, Kind: TraceDrop, Peer: m.FromID, Term: FormatTerm(m.Body)})
			return nil
		}
		prog := n.programs[m.Policy.Hash]
		n.mu.Unlock()
		if prog == nil && n.cfg.Resolve != nil {
			p, err := n.cfg.Resolve(ctx, m.Policy)
			if err != nil {
				return fmt.Errorf("lcc: policy %s for interaction %s: %w", m.Policy, m.Interaction, err)
			}
			prog = p
		}
		if prog == nil || prog.Ref.Hash != m.Policy.Hash || prog.Ref.Name != m.Policy.Name || prog.Ref.Version != m.Policy.Version {
			return fmt.Errorf("%w: policy %s (hash %.12s) is not known here", ErrPolicyMismatch, m.Policy, m.Policy.Hash)
		}
		if prog.clauses[RoleKey(m.ToRole)] == nil {
			return fmt.Errorf("%w: %s", ErrUnknownRole, FormatTerm(m.ToRole))
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return ErrClosed
		}
		n.programs[prog.Ref.Hash] = prog
		if a = n.inst[m.Interaction]; a == nil { // not started meanwhile
			rctx := n.ctx
			var cancel context.CancelFunc = func() {}
			if n.cfg.ResponderTimeout > 0 {
				rctx, cancel = context.WithTimeout(rctx, n.cfg.ResponderTimeout)
			}
			h := n.startLocked(rctx, prog, m.Interaction, Export(m.ToRole))
			go func() { <-h.done; cancel() }()
			a = n.inst[m.Interaction]
		}
	}
	n.mu.Unlock()
	if a.prog.Ref != m.Policy {
		return fmt.Errorf("%w: interaction %s runs %s, message names %s", ErrPolicyMismatch, m.Interaction, a.prog.Ref, m.Policy)
	}
	a.post(m)
	return nil
}

func (n *Node) finished(a *agent) {
	n.mu.Lock()
	delete(n.inst, a.iid)
	n.done[a.iid] = struct{}{}
	n.doneFIFO = append(n.doneFIFO, a.iid)
	for len(n.doneFIFO) > n.cfg.DoneRetention {
		delete(n.done, n.doneFIFO[0])
		n.doneFIFO = n.doneFIFO[1:]
	}
	n.mu.Unlock()
}

func (n *Node) trace(e TraceEvent) {
	if n.cfg.Tracer == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Agent == "" {
		e.Agent = n.cfg.ID
	}
	n.cfg.Tracer.Trace(e)
}

// agent is one node's part in one interaction.
type agent struct {
	node  *Node
	prog  *Program
	iid   string
	entry Term

	mu       sync.Mutex // held while executing; released while waiting
	current  Term       // role being played; guarded by mu
	progress bool       // a step has completed; guarded by mu

	mmu     sync.Mutex // guards the mailbox
	mbox    []Message
	changed chan struct{} // closed and replaced when a message arrives

	handle *Handle
}

func (a *agent) post(m Message) {
	a.mmu.Lock()
	a.mbox = append(a.mbox, m)
	close(a.changed)
	a.changed = make(chan struct{})
	a.mmu.Unlock()
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

// xctx is the state of one thread of execution: the main one, or one
// branch of a par.
type xctx struct {
	ctx   context.Context
	trail Trail
	tries int // enclosing or-alternatives still being tried
}

func (a *agent) run(ctx context.Context) {
	defer a.node.wg.Done()
	out := Outcome{Interaction: a.iid, Agent: a.node.cfg.ID, Role: FormatTerm(a.entry), Policy: a.prog.Ref}
	a.mu.Lock()
	x := &xctx{ctx: ctx}
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
	a.trace(TraceEvent{Kind: TraceOutcome, Term: out.Status.String() + reasonSuffix(out.Reason)})
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

// roleShape is the name and arity of a role with anonymous arguments: what
// a message says of the sender's current role. Sending the arguments would
// copy them (a list of peers, say) into every message.
func roleShape(role Term) Term {
	c, ok := Deref(role).(*Compound)
	if !ok {
		return Export(role)
	}
	args := make([]Term, len(c.Args))
	for i := range args {
		args[i] = &Var{Name: "_"}
	}
	return &Compound{Functor: c.Functor, Args: args}
}

func (a *agent) trace(e TraceEvent) {
	if a.node.cfg.Tracer == nil {
		return
	}
	e.Interaction = a.iid
	e.Policy = a.prog.Ref
	if e.Role == "" {
		e.Role = FormatTerm(a.current)
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
	a.current = role
	if a.tracing() {
		a.trace(TraceEvent{Kind: TraceRole, Term: FormatTerm(role)})
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

func (a *agent) t(env map[string]*Ref, t Term) Term { return instantiate(t, env) }

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
			return call, nil
		}
		saved := a.current
		err := a.runRole(x, call, try)
		a.current = saved
		return nil, err
	}
	a.progress = true
	if x.tries == 0 {
		x.trail.refs = x.trail.refs[:0] // nothing can undo past here
	}
	return nil, nil
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
		a.trace(TraceEvent{Kind: TraceConstraint, Term: formatCondIn(lits, env)})
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

func (a *agent) send(x *xctx, ev *Send, env map[string]*Ref) error {
	msg := instantiate(ev.Msg, env)
	if !IsGround(msg) {
		return failf("cannot send %s: the message has an unbound variable", FormatTerm(msg))
	}
	to, ok := idString(instantiate(ev.To.ID, env))
	if !ok {
		return failf("cannot send %s: the receiver's id %s is not bound to an atom", FormatTerm(msg), FormatTerm(instantiate(ev.To.ID, env)))
	}
	m := Message{
		Interaction: a.iid, Policy: a.prog.Ref,
		FromID: a.node.cfg.ID, FromRole: Export(a.entry), FromCurrent: roleShape(a.current),
		ToID: to, ToRole: Export(instantiate(ev.To.Role, env)), Body: Export(msg),
	}
	if a.tracing() {
		a.trace(TraceEvent{Kind: TraceSend, Peer: to, Term: FormatTerm(m.Body)})
	}
	if a.node.cfg.Transport == nil {
		return failf("cannot send %s to %s: no transport", FormatTerm(m.Body), to)
	}
	if err := a.node.cfg.Transport.Send(x.ctx, m); err != nil {
		if errors.Is(err, ErrUnreachable) && a.node.cfg.UnreachableIsSilence {
			if a.tracing() {
				a.trace(TraceEvent{Kind: TraceDrop, Peer: to, Term: FormatTerm(m.Body)})
			}
			return nil
		}
		return failf("send %s to %s: %v", FormatTerm(m.Body), to, err)
	}
	return nil
}

// waiter is one receive waiting for a message.
type waiter struct {
	recv     *Recv
	env      map[string]*Ref
	deadline time.Time // zero: none
	alt      int
	expired  bool
}

func (a *agent) deadline(w *waiter) error {
	if w.recv.Within == nil {
		return nil
	}
	t := Deref(instantiate(w.recv.Within, w.env))
	var d time.Duration
	if c, ok := t.(*Compound); ok && c.Functor == "ms" && len(c.Args) == 1 {
		v, ok := number(c.Args[0])
		if !ok {
			return failf("within %s: not a number of milliseconds", FormatTerm(t))
		}
		d = time.Duration(v * float64(time.Millisecond))
	} else {
		v, ok := number(t)
		if !ok {
			return failf("within %s: not a number of seconds", FormatTerm(t))
		}
		d = time.Duration(v * float64(time.Second))
	}
	w.deadline = time.Now().Add(d)
	return nil
}

// match tries a message against a waiter, binding on success.
func (a *agent) match(x *xctx, w *waiter, m *Message) bool {
	mark := x.trail.Mark()
	body := instantiate(m.Body, map[string]*Ref{})
	if !Unify(instantiate(w.recv.Msg, w.env), body, &x.trail) {
		return false
	}
	if !Unify(instantiate(w.recv.From.ID, w.env), &Atom{Name: m.FromID}, &x.trail) {
		x.trail.Undo(mark)
		return false
	}
	role := instantiate(w.recv.From.Role, w.env)
	m2 := x.trail.Mark()
	if Unify(role, instantiate(m.FromRole, map[string]*Ref{}), &x.trail) {
		return true
	}
	x.trail.Undo(m2)
	if m.FromCurrent != nil && Unify(role, instantiate(m.FromCurrent, map[string]*Ref{}), &x.trail) {
		return true
	}
	x.trail.Undo(mark)
	return false
}

// await waits until a message matches one of the waiters (which it
// returns, with the message's bindings made and the message taken from the
// mailbox), or until every waiter's deadline has passed (nil). Waiters
// without a deadline wait until the context ends.
func (a *agent) await(x *xctx, ws []*waiter) (*waiter, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		a.mmu.Lock()
		for i := range a.mbox {
			m := &a.mbox[i]
			for _, w := range ws {
				if w.expired || !a.match(x, w, m) {
					continue
				}
				if a.tracing() {
					a.trace(TraceEvent{Kind: TraceReceive, Peer: m.FromID, Term: FormatTerm(m.Body)})
				}
				a.mbox = append(a.mbox[:i], a.mbox[i+1:]...)
				a.mmu.Unlock()
				return w, nil
			}
		}
		changed := a.changed
		a.mmu.Unlock()

		now := time.Now()
		var next time.Time
		live := 0
		for _, w := range ws {
			if w.expired {
				continue
			}
			if !w.deadline.IsZero() && !now.Before(w.deadline) {
				w.expired = true
				if a.tracing() {
					a.trace(TraceEvent{Kind: TraceTimeout, Term: FormatTerm(instantiate(w.recv.Msg, w.env))})
				}
				continue
			}
			live++
			if !w.deadline.IsZero() && (next.IsZero() || w.deadline.Before(next)) {
				next = w.deadline
			}
		}
		if live == 0 {
			return nil, nil
		}
		var tc <-chan time.Time
		if !next.IsZero() {
			if timer == nil {
				timer = time.NewTimer(next.Sub(now))
			} else {
				timer.Reset(next.Sub(now))
			}
			tc = timer.C
		}
		a.mu.Unlock()
		select {
		case <-changed:
		case <-tc:
		case <-x.ctx.Done():
		}
		a.mu.Lock()
		if err := x.ctx.Err(); err != nil {
			return nil, ctxFailure(err)
		}
	}
}

// leadingRecv returns the receive that an alternative opens with, or nil.
func leadingRecv(d Def) *Recv {
	if s := opening(d); s != nil {
		if r, ok := s.Event.(*Recv); ok {
			return r
		}
	}
	return nil
}

// execOr runs a committed choice (see LCC.md): alternatives are tried left
// to right; those that open with a receive wait together from the moment
// every alternative before them has failed.
func (a *agent) execOr(x *xctx, n *Or, env map[string]*Ref, tail, try bool, pre *Message) (*Agent, error) {
	var waiting []*waiter
	resolveWaiting := func() (*Agent, bool, error) {
		if len(waiting) == 0 {
			return nil, false, nil
		}
		w, err := a.await(x, waiting)
		waiting = nil
		if err != nil {
			return nil, true, err
		}
		if w == nil {
			return nil, false, nil
		}
		next, err := a.execIn(x, n.Alts[w.alt], env, tail, false, &Message{})
		return next, true, committed(err)
	}
	for i, alt := range n.Alts {
		if r := leadingRecv(alt); r != nil {
			w := &waiter{recv: r, env: env, alt: i}
			if err := a.deadline(w); err != nil {
				return nil, err
			}
			waiting = append(waiting, w)
			continue
		}
		if next, decided, err := resolveWaiting(); decided {
			return next, err
		}
		mark := x.trail.Mark()
		x.tries++
		next, err := a.execIn(x, alt, env, tail, true, nil)
		x.tries--
		if err != nil && isUncommitted(err) {
			x.trail.Undo(mark)
			continue
		}
		return next, committed(err)
	}
	if next, decided, err := resolveWaiting(); decided {
		return next, err
	}
	return nil, &failure{reason: "no alternative could be taken", uncommitted: true}
}

// execPar runs branches together; the first failure cancels the others.
func (a *agent) execPar(x *xctx, n *Par, env map[string]*Ref) error {
	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	errs := make([]error, len(n.Branches))
	var wg sync.WaitGroup
	for i, br := range n.Branches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.mu.Lock()
			defer a.mu.Unlock()
			bx := &xctx{ctx: ctx}
			_, err := a.execIn(bx, br, env, false, false, nil)
			if err != nil {
				errs[i] = committed(err)
				cancel()
			}
		}()
	}
	a.mu.Unlock()
	wg.Wait()
	a.mu.Lock()
	for _, err := range errs {
		var f *failure
		if err != nil && !(errors.As(err, &f) && f.Error() == "cancelled") {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
