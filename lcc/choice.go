package lcc

import (
	"context"
	"errors"
	"sync"
)

// execOr runs a committed choice (see REFERENCE.md): alternatives are tried left
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
		if i == len(n.Alts)-1 && !try {
			// The last alternative with nothing enclosing it being tried:
			// its failure fails the or whether it committed or not, so it
			// runs as committed, and a role it ends in is a tail call.
			return a.execIn(x, alt, env, tail, false, nil)
		}
		mark := x.trail.Mark()
		x.tries++
		next, err := a.execIn(x, alt, env, tail, true, nil)
		if x.tries > 0 { // not committed by a step of the alternative
			x.tries--
		}
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
			bx := &xctx{ctx: ctx, role: x.role, depth: x.depth}
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
