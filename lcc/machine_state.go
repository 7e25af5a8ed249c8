package lcc

import (
	"context"
	"reflect"
)

// mState is the whole system: every agent, and the property monitors.
// A stored state is never changed: a transition copies what it touches.
type mState struct {
	agents []*mAgent
	mon    []monState
	fresh  []bool // during a transition: agents already copied
}

// deliver puts a message in an agent's mailbox, copying the agent first
// unless this transition already did.
func (s *mState) deliver(to int, msg Message) {
	ag := s.agents[to]
	if !s.fresh[to] {
		c := *ag
		c.ser = nil
		ag = &c
		s.agents[to] = ag
		s.fresh[to] = true
	}
	ag.mbox = append(append(make([]Message, 0, len(ag.mbox)+1), ag.mbox...), msg)
}

// cloner copies agent state, keeping which variables are shared.
type cloner struct {
	refs map[*Ref]*Ref
	envs map[uintptr]map[string]*Ref
}

func newCloner() *cloner {
	return &cloner{refs: map[*Ref]*Ref{}, envs: map[uintptr]map[string]*Ref{}}
}

func (c *cloner) ref(r *Ref) *Ref {
	if n, ok := c.refs[r]; ok {
		return n
	}
	n := NewRef(r.Name)
	c.refs[r] = n
	if r.Val != nil {
		n.Val = c.term(r.Val)
	}
	return n
}

func (c *cloner) term(t Term) Term {
	switch x := t.(type) {
	case nil:
		return nil
	case *Ref:
		return c.ref(x)
	case *Compound:
		if x.ground {
			return x
		}
		args := make([]Term, len(x.Args))
		for i, a := range x.Args {
			args[i] = c.term(a)
		}
		return &Compound{Functor: x.Functor, Args: args, Pos: x.Pos}
	case *Cons:
		if x.ground {
			return x
		}
		return &Cons{Head: c.term(x.Head), Tail: c.term(x.Tail), Pos: x.Pos}
	}
	return t
}

func envKey(e map[string]*Ref) uintptr { return uintptr(reflect.ValueOf(e).UnsafePointer()) }

func (c *cloner) env(e map[string]*Ref) map[string]*Ref {
	if e == nil {
		return nil
	}
	k := envKey(e)
	if n, ok := c.envs[k]; ok {
		return n
	}
	n := make(map[string]*Ref, len(e))
	c.envs[k] = n
	for name, r := range e {
		n[name] = c.ref(r)
	}
	return n
}

func (c *cloner) frames(fs []frame) []frame {
	out := make([]frame, len(fs), len(fs)+4)
	for i, f := range fs {
		f.env = c.env(f.env)
		f.role = c.term(f.role)
		out[i] = f
	}
	return out
}

func (c *cloner) thread(th *mThread) *mThread {
	if th == nil {
		return nil
	}
	n := &mThread{k: c.frames(th.k), role: c.term(th.role), depth: th.depth}
	if th.wait != nil {
		n.wait = make([]mWaiter, len(th.wait))
		for i, w := range th.wait {
			w.env = c.env(w.env)
			n.wait[i] = w
		}
	}
	if th.par != nil {
		n.par = make([]*mThread, len(th.par))
		for i, b := range th.par {
			n.par[i] = c.thread(b)
		}
	}
	if th.trail != nil {
		n.trail = make([]*Ref, len(th.trail))
		for i, r := range th.trail {
			n.trail[i] = c.ref(r)
		}
	}
	n.fb = c.fallback(th.fb)
	return n
}

func (c *cloner) fallback(fb *fallback) *fallback {
	if fb == nil {
		return nil
	}
	return &fallback{k: c.frames(fb.k), role: c.term(fb.role), depth: fb.depth, mark: fb.mark, prev: c.fallback(fb.prev)}
}

func (c *cloner) agent(ag *mAgent) *mAgent {
	n := *ag
	n.ser = nil
	n.root = c.thread(ag.root)
	n.mbox = append([]Message(nil), ag.mbox...)
	return &n
}

// Transitions.

type transKind uint8

const (
	tRun transKind = iota
	tRecv
	tExpire
)

func (k transKind) String() string { return [...]string{"run", "receive", "expire"}[k] }

// trans is one transition: an agent's thread runs, takes a message, or
// lets a deadline pass.
type trans struct {
	agent int
	kind  transKind
	path  []int // par branch indexes from the agent's main thread
}

// enabled lists the transitions of s. Deadlines are separate: with
// quiescent timeouts they count only when nothing else can happen.
func (m *machine) enabled(s *mState) (steps, expiries []trans) {
	for i, ag := range s.agents {
		if ag.status.ended() {
			continue
		}
		var walk func(th *mThread, path []int)
		walk = func(th *mThread, path []int) {
			switch {
			case th.par != nil:
				for j, b := range th.par {
					if b != nil {
						walk(b, append(append([]int(nil), path...), j))
					}
				}
			case th.wait != nil:
				if mi, _ := m.takeable(ag, th); mi >= 0 {
					// A message that has arrived is taken before any
					// deadline of the wait can pass, as await does.
					steps = append(steps, trans{agent: i, kind: tRecv, path: path})
					return
				}
				for _, w := range th.wait {
					if !w.expired && w.ns >= 0 {
						expiries = append(expiries, trans{agent: i, kind: tExpire, path: path})
						break
					}
				}
			default:
				steps = append(steps, trans{agent: i, kind: tRun, path: path})
			}
		}
		walk(ag.root, nil)
	}
	return steps, expiries
}

// apply runs transition t from s with the given oracle choices. It
// returns the new state, what happened, and the chooser (which tells the
// caller how many choices there were).
func (m *machine) apply(s *mState, t trans, choices []int) (*mState, []VerifyEvent, *chooser) {
	ns := &mState{agents: append([]*mAgent(nil), s.agents...), mon: s.mon, fresh: make([]bool, len(s.agents))}
	ag := newCloner().agent(s.agents[t.agent])
	ns.agents[t.agent] = ag
	ns.fresh[t.agent] = true
	ch := &chooser{prefix: choices}
	ctx := context.WithValue(context.Background(), chooserKey{}, ch)
	m.events = nil
	m.sent = false
	threads := []*mThread{ag.root}
	for _, i := range t.path {
		threads = append(threads, threads[len(threads)-1].par[i])
	}
	th := threads[len(threads)-1]
	var stop stopKind
	switch t.kind {
	case tRun:
		stop = m.runThread(ctx, ns, ag, th)
	case tRecv:
		i, j := m.takeable(ag, th)
		stop = m.receive(ctx, ns, ag, th, i, j)
	case tExpire:
		stop = m.expire(ctx, ns, ag, th)
	}
	// A finished branch may finish its par, and the thread that forked it
	// runs on.
	for lvl := len(threads) - 1; stop == stopDone && lvl > 0; lvl-- {
		parent := threads[lvl-1]
		parent.par[t.path[lvl-1]] = nil
		for _, b := range parent.par {
			if b != nil {
				stop = stopBlocked
			}
		}
		if stop == stopBlocked {
			break
		}
		parent.par = nil
		parent.k = parent.k[:len(parent.k)-1] // the fPar frame
		stop = m.runThread(ctx, ns, ag, parent)
	}
	switch stop {
	case stopDone:
		ag.status = closed
		fallthrough
	case stopFailed:
		ag.root = nil
		m.curRole = nil
		m.emit(ag, VerifyEvent{Kind: "end", Term: &Atom{Name: ag.status.String()}, Role: roleLabel(m.specs[ag.idx].entry)})
	}
	ns.fresh = nil
	return ns, m.events, ch
}

// wouldHaveTaken reports whether a receive that gave up (a late(...)
// record) would have taken msg: the message is late, not lost.
func (m *machine) wouldHaveTaken(ag *mAgent, late Term, msg Message) bool {
	c, ok := late.(*Compound)
	if !ok || c.Functor != "late" || len(c.Args) != 3 {
		return false
	}
	env := map[string]*Ref{}
	var tr Trail
	from := instantiate(c.Args[1], env).(*Compound)
	if !Unify(instantiate(c.Args[0], env), instantiate(msg.Body, env), &tr) ||
		!Unify(from.Args[1], &Atom{Name: msg.FromID}, &tr) {
		return false
	}
	mark := tr.Mark()
	if !Unify(from.Args[0], instantiate(msg.FromRole, env), &tr) {
		tr.Undo(mark)
		if msg.FromCurrent == nil || !Unify(from.Args[0], instantiate(msg.FromCurrent, env), &tr) {
			return false
		}
	}
	if msg.ToRole == nil {
		return true
	}
	to := instantiate(msg.ToRole, env)
	mark = tr.Mark()
	if Unify(to, instantiate(m.specs[ag.idx].entry, env), &tr) {
		return true
	}
	tr.Undo(mark)
	return Unify(to, instantiate(c.Args[2], env), &tr)
}
