package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/vsphere"
)

// cReserve reserves capacity on this host for a VM, checking again under
// a lock with a linearizable read so that two awards never oversubscribe.
func (w *Worker) cReserve(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, cpu, mem, err := demandArgs(g, 0)
	if err != nil {
		return false, err
	}
	key := api.ReserveKey(w.cfg.Host, vm)
	if w.dryRun(g.Program) {
		return g.Unify(3, lcc.C("res", lcc.A(w.cfg.ID), lcc.I(0), lcc.S(key))), nil
	}
	w.reserveMu.Lock()
	defer w.reserveMu.Unlock()
	// decide on vCenter's placement now, not the last tick's: VMs that
	// moved here since then no longer hold a reservation
	if err := w.refresh(ctx); err != nil {
		return false, err
	}
	ok, projected, err := w.fits(ctx, g.Program, vm, cpu, mem, false)
	if err != nil || !ok {
		return false, err
	}
	if problem := w.checkRelocate(ctx, vm); problem != "" {
		w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Str("problem", problem).
			Msg("vCenter says the VM cannot run here: refusing the award")
		return false, nil
	}
	gr, err := w.store.Acquire(ctx, raftstore.AcquireRequest{Holder: w.cfg.ID, TTLMillis: w.params(g.Program).LeaseTTL.Milliseconds(),
		Items: []raftstore.AcquireItem{{Key: key, Attrs: map[string]string{"cpu_mhz": strconv.FormatInt(cpu, 10), "mem_mb": strconv.FormatInt(mem, 10), "interaction": g.Interaction}}}})
	if err != nil {
		if errors.Is(err, raftstore.ErrLeaseHeld) {
			return false, nil
		}
		return false, err
	}
	w.arriving.reserved(vm, key, cpu, mem)
	w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Uint64("token", gr.Token).
		Float64("projected_load", round(projected)).Msg("reserved capacity")
	return g.Unify(3, lcc.C("res", lcc.A(w.cfg.ID), lcc.I(int64(gr.Token)), lcc.S(key))), nil
}

// leaseRef is a grant as LCC terms carry it: res(Holder, Token, Key) for a
// reservation, lease(Token, [Keys]) for the migration leases.
type leaseRef struct {
	holder string
	token  uint64
	keys   []string
}

func parseLease(t lcc.Term, holder string) (leaseRef, error) {
	c, ok := lcc.Deref(t).(*lcc.Compound)
	if !ok {
		return leaseRef{}, fmt.Errorf("not a lease term: %s", lcc.FormatTerm(t))
	}
	g := &lcc.Goal{Args: c.Args}
	switch {
	case c.Functor == "res" && len(c.Args) == 3:
		h, _ := g.AtomName(0)
		tok, _ := g.Number(1)
		k, _ := g.AtomName(2)
		return leaseRef{holder: h, token: uint64(tok), keys: []string{k}}, nil
	case c.Functor == "lease" && len(c.Args) == 2:
		tok, _ := g.Number(0)
		elems, _ := lcc.ListElems(c.Args[1])
		var keys []string
		for _, e := range elems {
			k, _ := (&lcc.Goal{Args: []lcc.Term{e}}).AtomName(0)
			keys = append(keys, k)
		}
		return leaseRef{holder: holder, token: uint64(tok), keys: keys}, nil
	}
	return leaseRef{}, fmt.Errorf("not a lease term: %s", lcc.FormatTerm(t))
}

func (w *Worker) peerHost(peer string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.peers[peer]
	return p.Host, ok && p.Host != ""
}

// targetDrained asks the store (a linearizable read) whether an operator
// has asked for host to be drained.
func (w *Worker) targetDrained(ctx context.Context, host string) (bool, error) {
	hs, err := w.store.Hosts(ctx, false)
	if err != nil {
		return false, err
	}
	for _, h := range hs {
		if h.Name == host && h.Drain {
			return true, nil
		}
	}
	return false, nil
}

// cTakeLeases takes, all or nothing, the VM lease and a migration slot on
// both hosts. A VM whose last lease expired unreleased is checked in
// vCenter first.
func (w *Worker) cTakeLeases(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, ok := g.AtomName(0)
	winner, ok2 := g.AtomName(1)
	if !ok || !ok2 {
		return false, errors.New("take_leases/4 needs a VM and a worker")
	}
	if w.stopping.Load() {
		return false, nil // a stopping worker starts no vMotion
	}
	if w.dryRun(g.Program) {
		return g.Unify(3, lcc.C("lease", lcc.I(0), lcc.L())), nil
	}
	target, ok := w.peerHost(winner)
	if !ok {
		return false, nil
	}
	// the target bid on what it knew at its last tick: a drain requested
	// since then must still keep VMs off it, so ask the store now (and
	// again just before the relocation, cMigrate)
	if drained, err := w.targetDrained(ctx, target); err != nil {
		return false, err
	} else if drained {
		w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Str("to", target).
			Msg("the target is being drained: not moving there")
		return false, nil
	}
	// relocations of this VM to this target failed of late: no leases, no
	// journal entry at every negotiation (cMigrate checks again)
	if until := w.backoff.waiting(vm, target, time.Now()); !until.IsZero() {
		w.log.Debug().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Str("to", target).
			Time("until", until).Msg("relocations there failed of late: not moving there yet")
		return false, nil
	}
	slots := w.params(g.Program).MigrationSlots
	gr, err := w.store.Acquire(ctx, raftstore.AcquireRequest{Holder: w.cfg.ID, TTLMillis: w.params(g.Program).LeaseTTL.Milliseconds(), Items: []raftstore.AcquireItem{
		{Key: api.VMKey(vm), Attrs: map[string]string{"interaction": g.Interaction, "from": w.cfg.Host, "to": target}},
		{Key: api.SlotPrefix(w.cfg.Host), AnyOf: slots},
		{Key: api.SlotPrefix(target), AnyOf: slots},
	}})
	if err != nil {
		if errors.Is(err, raftstore.ErrLeaseHeld) || errors.Is(err, raftstore.ErrLockDelay) {
			w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Err(err).Msg("leases not available")
			return false, nil
		}
		return false, err
	}
	lease := lcc.C("lease", lcc.I(int64(gr.Token)), keysTerm(gr.Keys))
	// pick_vm read the cool-downs at its last tick, perhaps from a
	// follower: the last mover marks the VM cooling down before it
	// releases the VM's lease, so a read after this acquire sees the mark
	if cooling, err := w.coolingDown(ctx, vm); err != nil || cooling {
		w.releaseKeys(ctx, w.cfg.ID, gr.Token, gr.Keys)
		if err != nil {
			return false, err
		}
		w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Msg("the VM is cooling down after its last move: not moving it")
		return false, nil
	}
	if len(gr.NeedsReconcile) > 0 {
		// the previous holder let the VM's lease expire: act only if
		// vCenter says the VM is here and no task runs on it
		var st vsphere.TaskState
		s, err := w.snap()
		if err == nil {
			v, ok := s.inv.VM(vm)
			if !ok {
				err = fmt.Errorf("VM %s is not in vCenter's inventory", vm)
			} else {
				st, err = w.vs.VMState(ctx, v.ID)
			}
		}
		if err != nil || st.Running || st.Host != s.host.ID {
			w.releaseKeys(ctx, w.cfg.ID, gr.Token, gr.Keys)
			w.journal(ctx, raftstore.JournalEntry{Kind: api.KindReconcile, Interaction: g.Interaction, Policy: g.Policy.Name, Version: g.Policy.Version,
				VM: vm, From: w.cfg.Host, Outcome: api.OutcomeSkipped, Reason: fmt.Sprintf("previous lease expired; vCenter says running=%v host=%s err=%v", st.Running, st.Host, err)})
			return false, nil
		}
	}
	return g.Unify(3, lease), nil
}

func keysTerm(keys []string) lcc.Term {
	ts := make([]lcc.Term, len(keys))
	for i, k := range keys {
		ts[i] = lcc.S(k)
	}
	return lcc.L(ts...)
}

func (w *Worker) releaseKeys(ctx context.Context, holder string, token uint64, keys []string) {
	if token == 0 || len(keys) == 0 {
		return
	}
	if err := w.store.Release(ctx, raftstore.RenewRequest{Keys: keys, Holder: holder, Token: token}); err != nil && !errors.Is(err, raftstore.ErrStaleToken) {
		w.log.Warn().Err(err).Strs("keys", keys).Msg("release")
	}
}

// giveBack releases what a migration took: the target's reservation
// first, since the store lets the migrator give it back only while the
// migrator holds the VM's lease. In the other order the release was
// refused, and the target counted the VM's room as taken until the
// reservation expired (lease_ttl, 30 s), declining every offer meanwhile.
func (w *Worker) giveBack(ctx context.Context, res, lease leaseRef) {
	w.releaseKeys(ctx, res.holder, res.token, res.keys)
	w.releaseKeys(ctx, lease.holder, lease.token, lease.keys)
}

func (w *Worker) cRelease(ctx context.Context, g *lcc.Goal) (bool, error) {
	l, err := parseLease(g.Arg(0), w.cfg.ID)
	if err != nil {
		return false, err
	}
	w.releaseKeys(ctx, l.holder, l.token, l.keys)
	return true, nil
}

// coolingDown asks the store, linearizably, whether a VM moved within its
// cool-down.
func (w *Worker) coolingDown(ctx context.Context, vm string) (bool, error) {
	ls, err := w.store.Leases(ctx, api.CoolKey(vm), false)
	if err != nil {
		return false, err
	}
	for _, l := range ls {
		if l.Key == api.CoolKey(vm) && l.State == api.LeaseHeld {
			return true, nil
		}
	}
	return false, nil
}
