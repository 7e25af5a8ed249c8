package lcc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// ErrOverloaded is returned by Deliver when taking the message would
	// pass one of the node's bounds (responders, responders started by one
	// peer, mailbox length): the sender should back off.
	ErrOverloaded = errors.New("lcc: node overloaded")
)

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

	weight int // term nodes held while queued; set by Deliver
}

// TermSize counts the nodes of a term (atoms, numbers, compounds, list
// cells), following bound variables: what holding it costs.
func TermSize(t Term) int {
	n := 0
	for {
		t = Deref(t)
		n++
		switch x := t.(type) {
		case *Compound:
			for _, a := range x.Args {
				n += TermSize(a)
			}
			return n
		case *Cons:
			n += TermSize(x.Head)
			t = x.Tail
			continue
		}
		return n
	}
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

// NodeConfig configures a Node: one agent identity in a host program.
type NodeConfig struct {
	ID        string
	Transport Transport
	Registry  *Registry
	Knowledge []Term
	// Declared names constraints that exist in this interaction though
	// this node's knowledge may not define them (the knowledge of other
	// agents, say): a call to one that no fact here answers fails, as
	// LCC.md says, instead of being an unknown constraint.
	Declared Known
	Tracer   Tracer
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
	// Bounds on what peers can make this node hold. MaxInstances caps the
	// agent instances running at once (default 4096), MaxPerPeer the
	// responders started by messages from one sender (default: as many as
	// MaxInstances), and
	// MaxMailbox the messages waiting in one instance's mailbox (default
	// 4096). Past a bound Deliver refuses with ErrOverloaded.
	MaxInstances int
	MaxPerPeer   int
	MaxMailbox   int
	// MaxQueuedTerms caps the term nodes of all messages waiting in all
	// mailboxes (default 1,048,576, some 100 MB): many small or a few
	// large messages, the memory they hold is bounded.
	MaxQueuedTerms int
}

// Node runs the agent instances of one identity: one mailbox per
// interaction, responders created on the first message.
type Node struct {
	cfg       NodeConfig
	knowledge map[string][]Term
	ctx       context.Context
	cancel    context.CancelFunc

	mu         sync.Mutex
	inst       map[string]*agent
	programs   map[string]*Program // by policy hash
	done       map[string]struct{}
	doneFIFO   []string
	byPeer     map[string]int     // responders running, by the peer whose message started them
	rules      map[string][]*rule // Horn rules solved before the registry: a verification domain's helpers
	domainFile *File              // where the rules come from
	queued     atomic.Int64       // term nodes of the messages waiting in mailboxes
	wg         sync.WaitGroup
	closed     bool
}

// NewNode creates a node.
func NewNode(cfg NodeConfig) *Node {
	if cfg.DoneRetention <= 0 {
		cfg.DoneRetention = 4096
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 4096
	}
	if cfg.MaxPerPeer <= 0 {
		cfg.MaxPerPeer = cfg.MaxInstances
	}
	if cfg.MaxMailbox <= 0 {
		cfg.MaxMailbox = 4096
	}
	if cfg.MaxQueuedTerms <= 0 {
		cfg.MaxQueuedTerms = 1 << 20
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Node{
		cfg: cfg, knowledge: indexFacts(cfg.Knowledge), ctx: ctx, cancel: cancel,
		inst: map[string]*agent{}, programs: map[string]*Program{}, done: map[string]struct{}{}, byPeer: map[string]int{},
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
		node: n, prog: prog, iid: interaction, entry: role,
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
	m.weight = TermSize(m.Body) + TermSize(m.ToRole) + TermSize(m.FromRole)
	if m.FromCurrent != nil {
		m.weight += TermSize(m.FromCurrent)
	}
	if q := n.queued.Load(); q+int64(m.weight) > int64(n.cfg.MaxQueuedTerms) {
		return fmt.Errorf("%w: %d term nodes queued, this message has %d (bound %d)", ErrOverloaded, q, m.weight, n.cfg.MaxQueuedTerms)
	}
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
		if a = n.inst[m.Interaction]; a == nil && (len(n.inst) >= n.cfg.MaxInstances || n.byPeer[m.FromID] >= n.cfg.MaxPerPeer) {
			n.mu.Unlock()
			return fmt.Errorf("%w: %d interactions running, %d started by %s", ErrOverloaded, len(n.inst), n.byPeer[m.FromID], m.FromID)
		}
		if a == nil { // not started meanwhile
			rctx := n.ctx
			var cancel context.CancelFunc = func() {}
			if n.cfg.ResponderTimeout > 0 {
				rctx, cancel = context.WithTimeout(rctx, n.cfg.ResponderTimeout)
			}
			h := n.startLocked(rctx, prog, m.Interaction, Export(m.ToRole))
			go func() { <-h.done; cancel() }()
			a = n.inst[m.Interaction]
			a.startedBy = m.FromID
			n.byPeer[m.FromID]++
		}
	}
	n.mu.Unlock()
	if a.prog.Ref != m.Policy {
		return fmt.Errorf("%w: interaction %s runs %s, message names %s", ErrPolicyMismatch, m.Interaction, a.prog.Ref, m.Policy)
	}
	if !a.post(m, n.cfg.MaxMailbox) {
		return fmt.Errorf("%w: the mailbox of interaction %s holds %d messages", ErrOverloaded, m.Interaction, n.cfg.MaxMailbox)
	}
	return nil
}

func (n *Node) finished(a *agent) {
	a.mmu.Lock()
	for _, m := range a.mbox { // messages nobody will take
		n.queued.Add(-int64(m.weight))
	}
	a.mbox, a.ended = nil, true
	a.mmu.Unlock()
	n.mu.Lock()
	delete(n.inst, a.iid)
	if a.startedBy != "" {
		if n.byPeer[a.startedBy]--; n.byPeer[a.startedBy] <= 0 {
			delete(n.byPeer, a.startedBy)
		}
	}
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
