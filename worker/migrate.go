package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
)

// cMigrate runs the vMotion, renewing the leases and the reservation
// while the task runs, then releases them, marks the VM as cooling down,
// and journals the outcome.
func (w *Worker) cMigrate(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, ok1 := g.AtomName(0)
	winner, ok2 := g.AtomName(1)
	if !ok1 || !ok2 || vm == "" {
		return false, errors.New("migrate/4 needs a VM and a worker")
	}
	target, ok := w.peerHost(winner)
	if !ok {
		return false, nil
	}
	w.migrating.Add(1) // a stopping worker waits for this (stop)
	defer w.migrating.Add(-1)
	entry := raftstore.JournalEntry{Kind: api.KindMigration, Interaction: g.Interaction, Policy: g.Policy.Name, Version: g.Policy.Version,
		VM: vm, From: w.cfg.Host, To: target, Worker: w.cfg.ID}
	if w.dryRun(g.Program) {
		entry.Kind, entry.Outcome = api.KindWouldMigrate, api.OutcomeDryRun
		w.journal(ctx, entry)
		w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Str("to", target).Msg("would migrate (dry run)")
		return true, nil
	}
	res, err := parseLease(g.Arg(2), "")
	if err != nil {
		return false, err
	}
	lease, err := parseLease(g.Arg(3), w.cfg.ID)
	if err != nil {
		return false, err
	}
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	if _, ok := s.inv.VM(vm); !ok {
		// A watched inventory drops a VM that left this host until its next
		// whole read (vsphere.Watched.merge): an earlier negotiation may
		// have moved it, this one having taken its leases once that one
		// gave them back. Read again to tell a moved VM from an unknown one.
		if err := w.refresh(ctx); err == nil {
			if s, err = w.snap(); err != nil {
				return false, err
			}
		}
	}
	v, vmOK := s.inv.VM(vm)
	h, hostOK := s.inv.Host(target)
	if !vmOK || !hostOK {
		// nothing to move: give back what was taken for it at once
		return w.abandon(ctx, g, entry, res, lease, "failed", fmt.Sprintf("vCenter's inventory has no VM %q or no host %q", vm, target))
	}
	vmID, targetID := v.ID, h.ID
	// The offer was made from this worker's last view of its host; the VM
	// may have left it since (this worker moved it, in an earlier
	// negotiation, with no cool-down to stop a second offer). Only a VM that
	// vCenter says is here now is moved from here.
	if st, err := w.vs.VMState(ctx, vmID); err != nil || st.Host != s.host.ID {
		return w.abandon(ctx, g, entry, res, lease, "skipped", fmt.Sprintf("the VM is not on this host any more (vCenter: host %s, err %v)", st.Host, err))
	}
	ttl := w.params(g.Program).LeaseTTL
	log := w.log.With().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Str("from", w.cfg.Host).Str("to", target).Logger()
	// Fencing: the relocation runs only while the leases are held. They are
	// renewed every ttl/3; if no renewal has succeeded for ttl - ttl/3, the
	// relocation is cancelled in vCenter, a third of the TTL before the
	// leases could expire and another worker take them.
	guard := newLeaseGuard(ttl)
	if !w.renewAll(ctx, ttl, lease, res) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		entry.Outcome, entry.Reason = api.OutcomeCancelled, "lease lost before the relocation started"
		log.Warn().Msg(entry.Reason)
		w.journalLater(rctx, entry)
		return false, nil
	}
	guard.renewed()
	// A drain of the target acknowledged since take_leases read the hosts
	// (a renewal and a vCenter call ago) must still keep the VM off it:
	// read again, as late as can be, before the relocation starts.
	if drained, err := w.targetDrained(ctx, target); err != nil {
		return w.abandon(ctx, g, entry, res, lease, "skipped", fmt.Sprintf("the store could not say whether the target is being drained: %v", err))
	} else if drained {
		return w.abandon(ctx, g, entry, res, lease, "skipped", "the target is being drained")
	}
	// no vMotion from a view vCenter has not vouched for lately
	if stale := w.staleView(w.params(g.Program).MaxViewAge); stale != "" {
		return w.abandon(ctx, g, entry, res, lease, api.OutcomeSkipped, stale)
	}
	if until := w.backoff.waiting(vm, target, time.Now()); !until.IsZero() {
		return w.abandon(ctx, g, entry, res, lease, api.OutcomeSkipped,
			fmt.Sprintf("relocations of %s to %s failed of late: backing off until %s", vm, target, until.Format(time.RFC3339)))
	}
	migCtx, cancelMig := context.WithCancel(ctx)
	defer cancelMig()
	// the leases are renewed until the relocation has ended, not until it
	// was asked to end: a relocation cancelled (stalled, say) waits up to
	// 30 s to learn how it ended, and in a vCenter that hangs the leases
	// would expire meanwhile, unreleasable, left for a reconcile
	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		w.keepLeases(renewCtx, guard, ttl, lease, res, func() {
			log.Warn().Dur("since_last_renewal", guard.sinceRenewed()).Msg("lease lost: cancelling the relocation before the lease can expire")
			cancelMig()
		})
	}()
	start := time.Now()
	w.mu.Lock()
	if crossed := w.highSince; !crossed.IsZero() && !crossed.Equal(w.reactedTo) {
		w.reactedTo = crossed // the first vMotion of this overload only
		w.mx.reaction.Observe(start.Sub(crossed).Seconds())
	}
	w.mu.Unlock()
	log.Info().Uint64("token", lease.token).Float64("view_age_s", w.viewAge(time.Now()).Seconds()).Msg("migration starting")
	// the event on the VM is posted alongside the relocation, not before
	// it: a vCenter call between the drain's last check and the relocation
	// would widen the window in which a drain acknowledged meanwhile is
	// not seen
	eventDone := make(chan struct{})
	go func() { defer close(eventDone); w.logEvent(migCtx, g, vmID, target) }()
	stall := watchStall(migCtx, w.params(g.Program).StallTimeout, cancelMig)
	merr := w.vs.Migrate(migCtx, vmID, targetID, stall.progress)
	stalled := stall.stop()
	lost := guard.lost()
	cancelMig()
	<-eventDone // cancelled with the relocation's context if vCenter still holds it
	stopRenew()
	<-renewDone
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	entry.DurationMS = time.Since(start).Milliseconds()
	switch {
	case lost:
		// trust vCenter for where the VM is: the cancel may have come too late
		where := "unknown"
		if st, err := w.vs.VMState(rctx, vmID); err == nil {
			where = st.Host
			if h, ok := s.inv.Host(st.Host); ok {
				where = h.Name
			}
		}
		entry.Outcome, entry.Reason = api.OutcomeCancelled, "lease lost; vCenter has the VM on "+where
		if merr == nil {
			entry.Reason = "lease lost; the relocation completed before it could be cancelled; vCenter has the VM on " + where
			// it moved all the same: it must not move again at once
			w.markCooling(rctx, g, vm)
		}
		log.Warn().Str("now_on", where).Msg("migration cancelled: lease lost")
		w.journalLater(rctx, entry)
		return false, nil
	case merr == nil:
		entry.Outcome = api.OutcomeSuccess
		w.backoff.succeeded(vm, target)
		w.markCooling(rctx, g, vm)
		log.Info().Int64("ms", entry.DurationMS).Msg("migration done")
	case stalled:
		wait := w.backoff.failed(vm, target, time.Now())
		entry.Outcome = api.OutcomeStalled
		entry.Reason = fmt.Sprintf("no progress for %s (stall_timeout): cancelled in vCenter (%v); %s waits %s before going to %s again",
			w.params(g.Program).StallTimeout, merr, vm, wait.Round(time.Second), target)
		log.Warn().Err(merr).Dur("backoff", wait).Msg("migration stalled: cancelled")
	default:
		wait := w.backoff.failed(vm, target, time.Now())
		entry.Outcome, entry.Reason, entry.Fault = api.OutcomeFailed, merr.Error(), faultOf(merr)
		log.Warn().Err(merr).Str("fault", entry.Fault).Dur("backoff", wait).Msg("migration failed")
	}
	w.journal(rctx, entry)
	w.giveBack(rctx, res, lease)
	return merr == nil, nil
}

// abandon ends a migration before its relocation started: journaled with
// outcome and reason, and what was taken for it given back at once.
func (w *Worker) abandon(ctx context.Context, g *lcc.Goal, entry raftstore.JournalEntry, res, lease leaseRef, outcome, reason string) (bool, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	entry.Outcome, entry.Reason = outcome, reason
	w.log.Warn().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", entry.VM).Str("to", entry.To).Msg(reason)
	w.journal(rctx, entry)
	w.giveBack(rctx, res, lease)
	return false, nil
}

func (w *Worker) journal(ctx context.Context, e raftstore.JournalEntry) {
	w.mx.journaled(e)
	if err := w.store.AppendJournal(ctx, e); err != nil {
		w.log.Warn().Err(err).Str("interaction", e.Interaction).Str("policy", e.Policy).Int("version", e.Version).Str("vm", e.VM).Str("kind", e.Kind).Msg("journal entry lost: the store did not take it")
	}
}

func (w *Worker) cJournalNote(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, _ := g.AtomName(0)
	reason := lcc.FormatTerm(g.Arg(1))
	w.journal(ctx, raftstore.JournalEntry{Kind: api.KindNegotiation, Interaction: g.Interaction, Policy: g.Policy.Name, Version: g.Policy.Version,
		VM: vm, From: w.cfg.Host, Outcome: api.OutcomeNoMove, Reason: reason, Worker: w.cfg.ID})
	return true, nil
}

// markCooling marks a VM that moved as cooling down, so that no policy
// moves it again within param(cooldown). The mark lasts the longest
// cool-down of the moving policy and the policies this worker follows: a
// VM evacuated (evacuate's cool-down is 0, so that nothing holds a drain
// up) stays put on its new host as long as balance's would have it.
func (w *Worker) markCooling(ctx context.Context, g *lcc.Goal, vm string) {
	cool := w.params(g.Program).Cooldown
	w.mu.Lock()
	for _, ref := range w.following {
		if p := w.programs[ref.Hash]; p != nil {
			cool = max(cool, w.params(p).Cooldown)
		}
	}
	w.mu.Unlock()
	if cool <= 0 {
		return
	}
	var err error
	for try := 0; try < 3; try++ {
		_, err = w.store.Acquire(ctx, raftstore.AcquireRequest{Holder: w.cfg.ID, TTLMillis: cool.Milliseconds(), Items: []raftstore.AcquireItem{{Key: api.CoolKey(vm)}}})
		if err == nil || errors.Is(err, raftstore.ErrLeaseHeld) { // held: it is cooling down already
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try+1) * 200 * time.Millisecond):
		}
	}
	if err != nil {
		// the VM may move again before its cool-down: say so
		w.log.Warn().Err(err).Str("interaction", g.Interaction).Str("policy", g.Policy.Name).Int("version", g.Policy.Version).Str("vm", vm).
			Dur("cooldown", cool).Msg("could not mark the VM as cooling down")
	}
}

// stallWatch cancels a relocation whose task shows no progress for the
// policy's stall_timeout: progress is vsphere.Migrate's callback, and stop
// ends the watch and says whether it cancelled.
type stallWatch struct {
	mu      sync.Mutex
	last    int
	changed time.Time
	stalled bool
	done    chan struct{}
	ended   chan struct{}
}

func watchStall(ctx context.Context, timeout time.Duration, cancel func()) *stallWatch {
	s := &stallWatch{last: -1, changed: time.Now(), done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		t := time.NewTicker(min(time.Second, timeout/4))
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.mu.Lock()
				over := now.Sub(s.changed) >= timeout
				if over {
					s.stalled = true
				}
				s.mu.Unlock()
				if over {
					cancel()
					return
				}
			}
		}
	}()
	return s
}

func (s *stallWatch) progress(pct int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pct != s.last {
		s.last, s.changed = pct, time.Now()
	}
}

func (s *stallWatch) stop() bool {
	close(s.done)
	<-s.ended
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}
