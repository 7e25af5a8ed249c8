package lcc

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// MemTransport delivers messages between nodes of one process. It stands
// in for the HTTP transport that workers use.
type MemTransport struct {
	mu    sync.RWMutex
	nodes map[string]*Node
	drop  map[string]bool
}

// NewMemTransport returns an empty in-memory transport.
func NewMemTransport() *MemTransport {
	return &MemTransport{nodes: map[string]*Node{}, drop: map[string]bool{}}
}

// Add makes a node reachable by its id.
func (t *MemTransport) Add(n *Node) {
	t.mu.Lock()
	t.nodes[n.ID()] = n
	t.mu.Unlock()
}

// Silence makes every message to id vanish, as if the peer never answered.
func (t *MemTransport) Silence(id string) {
	t.mu.Lock()
	t.drop[id] = true
	t.mu.Unlock()
}

// Send implements Transport.
func (t *MemTransport) Send(ctx context.Context, m Message) error {
	t.mu.RLock()
	n, dropped := t.nodes[m.ToID], t.drop[m.ToID]
	t.mu.RUnlock()
	if dropped {
		return nil
	}
	if n == nil {
		return fmt.Errorf("%w: no agent %q", ErrUnreachable, m.ToID)
	}
	return n.Deliver(ctx, m)
}

// AgentSpec is one agent for RunLocal: a role for an id, with knowledge.
type AgentSpec struct {
	Role      Term
	ID        string
	Knowledge []Term
}

// LocalConfig configures RunLocal.
type LocalConfig struct {
	Program     *Program
	Agents      []AgentSpec
	Registry    *Registry
	Tracer      Tracer
	Timeout     time.Duration // default 30s
	Interaction string        // default "i1"
}

// RunLocal runs agents of one interaction in this process over a
// MemTransport and returns every agent's outcome (the listed agents first,
// in order, then responders started by messages, by id). Agents whose roles
// are declared initial start after the others, so that every listed agent
// exists before the first message.
func RunLocal(ctx context.Context, cfg LocalConfig) ([]Outcome, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Interaction == "" {
		cfg.Interaction = "i1"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	tr := NewMemTransport()
	var mu sync.Mutex
	var spawned []Outcome
	started := map[string]bool{}
	nodes := map[string]*Node{}
	knowledge := map[string][]Term{}
	declared := Known{} // what any agent knows is a constraint of the interaction
	for _, a := range cfg.Agents {
		knowledge[a.ID] = append(knowledge[a.ID], a.Knowledge...)
		for _, f := range a.Knowledge {
			if n, ar, ok := Functor(f); ok {
				declared[keyOf(n, ar)] = ConstraintInfo{Name: n, Arity: ar}
			}
		}
	}
	for _, a := range cfg.Agents {
		if nodes[a.ID] != nil {
			continue
		}
		id := a.ID
		n := NewNode(NodeConfig{
			ID: id, Transport: tr, Registry: cfg.Registry, Knowledge: knowledge[id], Declared: declared, Tracer: cfg.Tracer,
			ResponderTimeout: cfg.Timeout,
			OnOutcome: func(o Outcome) {
				mu.Lock()
				defer mu.Unlock()
				if !started[o.Agent] {
					spawned = append(spawned, o)
				}
			},
		})
		n.AddProgram(cfg.Program)
		nodes[id] = n
		tr.Add(n)
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	initial := map[string]bool{}
	for _, k := range cfg.Program.Model.InitialRoles() {
		initial[k] = true
	}
	handles := make([]*Handle, len(cfg.Agents))
	mu.Lock()
	for _, a := range cfg.Agents {
		started[a.ID] = true
	}
	mu.Unlock()
	for pass := 0; pass < 2; pass++ {
		for i, a := range cfg.Agents {
			if initial[RoleKey(a.Role)] != (pass == 1) {
				continue
			}
			h, err := nodes[a.ID].Start(ctx, cfg.Program, cfg.Interaction, a.Role)
			if err != nil {
				return nil, err
			}
			handles[i] = h
		}
	}
	out := make([]Outcome, len(handles))
	for i, h := range handles {
		out[i] = h.Wait()
	}
	for _, n := range nodes {
		n.Close()
	}
	mu.Lock()
	sort.Slice(spawned, func(i, j int) bool { return spawned[i].Agent < spawned[j].Agent })
	out = append(out, spawned...)
	mu.Unlock()
	return out, nil
}
