package lcc

import (
	"math"
	"time"
)

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
	ns, err := within(w.recv, w.env)
	if err != nil {
		return err
	}
	w.deadline = deadlineAfter(time.Now(), ns)
	return nil
}

// within evaluates a receive's deadline in nanoseconds: T seconds, or
// ms(N) milliseconds. The interpreter and the verifier's machine share it.
func within(r *Recv, env map[string]*Ref) (float64, error) {
	t := Deref(instantiate(r.Within, env))
	unit, what := float64(time.Second), "seconds"
	if c, ok := t.(*Compound); ok && c.Functor == "ms" && len(c.Args) == 1 {
		t, unit, what = Deref(c.Args[0]), float64(time.Millisecond), "milliseconds"
	}
	v, ok := number(t)
	if !ok || math.IsNaN(v) {
		return 0, failf("within %s: not a number of %s", FormatTerm(instantiate(r.Within, env)), what)
	}
	return v * unit, nil
}

// deadlineAfter is now plus ns nanoseconds, saturated: a wait longer than
// time.Duration can hold (about 292 years) waits that long instead of
// overflowing into the past, and a negative one has already passed.
func deadlineAfter(now time.Time, ns float64) time.Time {
	switch {
	case ns <= 0:
		return now
	case ns >= math.MaxInt64:
		return now.Add(math.MaxInt64)
	}
	return now.Add(time.Duration(ns))
}

// addressed reports whether a message's receiving role unifies with this
// agent's entry role or the role the receiving thread plays now: only then
// may a receive take it (it waits in the mailbox until then).
func (a *agent) addressed(x *xctx, m *Message) bool {
	if m.ToRole == nil {
		return true
	}
	mark := x.trail.Mark()
	defer x.trail.Undo(mark)
	to := instantiate(m.ToRole, map[string]*Ref{})
	return Unify(to, instantiate(a.entry, map[string]*Ref{}), &x.trail) || Unify(to, x.role, &x.trail)
}

// match tries a message against a waiter, binding on success: the message
// term, the sender's id, and the sender's role (its entry role, or the role
// it played when it sent, with that role's arguments).
func (a *agent) match(x *xctx, w *waiter, m *Message) bool {
	if !a.addressed(x, m) {
		return false
	}
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
					a.trace(x, TraceEvent{Kind: TraceReceive, Peer: m.FromID, Term: FormatTerm(m.Body)})
				}
				a.take(i)
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
					a.trace(x, TraceEvent{Kind: TraceTimeout, Term: FormatTerm(instantiate(w.recv.Msg, w.env))})
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

// take removes message i from the mailbox (under mmu). Taking the oldest,
// the usual case, is constant time: the slice moves past it, and the array
// is released once the mailbox is empty.
func (a *agent) take(i int) {
	a.node.queued.Add(-int64(a.mbox[i].weight))
	a.mbox[i] = Message{} // drop its terms
	switch {
	case len(a.mbox) == 1:
		a.mbox = nil
	case i == 0:
		a.mbox = a.mbox[1:]
	default:
		a.mbox = append(a.mbox[:i], a.mbox[i+1:]...)
	}
}
