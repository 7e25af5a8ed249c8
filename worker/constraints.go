package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// paramNum reads param(Name, V) from a policy's facts.
func paramNum(p *lcc.Program, name string, def float64) float64 {
	if p == nil {
		return def
	}
	f := p.Fact(lcc.C("param", lcc.A(name), lcc.NewRef("V")))
	if f == nil {
		return def
	}
	if v, ok := f.(*lcc.Compound).Args[1].(*lcc.Int); ok {
		return float64(v.V)
	}
	if v, ok := f.(*lcc.Compound).Args[1].(*lcc.Float); ok {
		return v.V
	}
	return def
}

func paramBool(p *lcc.Program, name string) bool {
	if p == nil {
		return false
	}
	f := p.Fact(lcc.C("param", lcc.A(name), lcc.NewRef("V")))
	if f == nil {
		return false
	}
	a, ok := f.(*lcc.Compound).Args[1].(*lcc.Atom)
	return ok && a.Name == "true"
}

// hasFact reports whether the policy states functor(a, b).
func hasFact(p *lcc.Program, functor, a, b string) bool {
	return p != nil && p.Fact(lcc.C(functor, lcc.A(a), lcc.A(b))) != nil
}

// registry builds the constraint library: exactly the vocabulary.
func (w *Worker) registry() *lcc.Registry {
	r := lcc.NewRegistry()
	impl := map[string]lcc.ConstraintFunc{
		"self_host/1":       w.cSelfHost,
		"load/2":            w.cLoad,
		"capacity/2":        w.cCapacity,
		"vms/1":             w.cVMs,
		"peers/2":           w.cPeers,
		"overloaded/1":      w.cOverloaded,
		"underloaded/1":     w.cUnderloaded,
		"pick_vm/3":         w.cPickVM,
		"fits/3":            w.cFits,
		"bid_score/4":       w.cBidScore,
		"best_bid/3":        w.cBestBid,
		"rules_allow/2":     w.cRulesAllow,
		"reserve/4":         w.cReserve,
		"take_leases/4":     w.cTakeLeases,
		"migrate/4":         w.cMigrate,
		"release/1":         w.cRelease,
		"journal_note/2":    w.cJournalNote,
		"vm_count/1":        w.cVMCount,
		"drain_requested/1": w.cDrainRequested,
		"report_drain/2":    w.cReportDrain,
		"set_maintenance/1": w.cSetMaintenance,
	}
	for _, c := range policies.Vocabulary {
		fn, ok := impl[c.Key()]
		if !ok {
			panic("worker: vocabulary entry " + c.Key() + " is not implemented")
		}
		r.MustRegister(c.Name, c.Arity, c.Doc, fn)
	}
	return r
}

// snapshot is the worker's view of its host for one constraint.
type snapshot struct {
	inv      *vsphere.Inventory
	host     vsphere.Host
	cpu, mem float64 // smoothed shares
	// inst and instMem are the shares now: the larger of the host's own
	// figure and the sum of its VMs' demand. A VM that just moved counts at
	// once through runtime.host, before the host's statistics catch up.
	inst, instMem float64
}

func (w *Worker) snap() (snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inv == nil {
		return snapshot{}, errors.New("no observation of the host yet")
	}
	h, _ := w.inv.Host(w.cfg.Host)
	var cpu, mem int64
	for _, v := range w.inv.VMsOn(h.ID) {
		cpu += v.CPUDemandMHz
		mem += v.MemMB
	}
	return snapshot{inv: w.inv, host: h, cpu: mean(w.samples), mem: mean(w.memSamples),
		inst: share(max(cpu, h.CPUUsedMHz), h.CPUCapacityMHz), instMem: share(max(mem, h.MemUsedMB), h.MemCapacityMB)}, nil
}

// refresh reads the inventory again without taking a load sample.
func (w *Worker) refresh(ctx context.Context) error {
	inv, err := w.vs.Inventory(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.inv = inv
	w.mu.Unlock()
	return nil
}

func (w *Worker) cSelfHost(_ context.Context, g *lcc.Goal) (bool, error) {
	return g.Unify(0, lcc.A(w.cfg.Host)), nil
}

func (w *Worker) cLoad(_ context.Context, g *lcc.Goal) (bool, error) {
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	return g.Unify(0, lcc.F(round(s.cpu))) && g.Unify(1, lcc.F(round(s.mem))), nil
}

func (w *Worker) cCapacity(_ context.Context, g *lcc.Goal) (bool, error) {
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	return g.Unify(0, lcc.I(s.host.CPUCapacityMHz)) && g.Unify(1, lcc.I(s.host.MemCapacityMB)), nil
}

func (w *Worker) cVMs(_ context.Context, g *lcc.Goal) (bool, error) {
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	var ts []lcc.Term
	for _, v := range s.inv.VMsOn(s.host.ID) {
		ts = append(ts, lcc.C("vm", lcc.A(v.Name), lcc.I(v.CPUDemandMHz), lcc.I(v.MemMB)))
	}
	return g.Unify(0, lcc.L(ts...)), nil
}

func (w *Worker) cPeers(_ context.Context, g *lcc.Goal) (bool, error) {
	w.mu.Lock()
	var ids []string
	for id := range w.peers {
		if id != w.cfg.ID {
			ids = append(ids, id)
		}
	}
	w.mu.Unlock()
	sort.Strings(ids)
	ts := make([]lcc.Term, len(ids))
	for i, id := range ids {
		ts[i] = lcc.A(id)
	}
	return g.Unify(1, lcc.L(ts...)), nil
}

func (w *Worker) held(above bool, g *lcc.Goal) (bool, error) {
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	if !s.host.Available() {
		return false, nil
	}
	hold := time.Duration(paramNum(g.Program, "hold_time", 10) * float64(time.Second))
	w.mu.Lock()
	start := w.lowSince
	if above {
		start = w.highSince
	}
	w.mu.Unlock()
	if start.IsZero() || time.Since(start) < hold {
		return false, nil
	}
	// the smoothed load decides, but not against the load now: a host
	// that has just shed (or taken) a VM waits for its samples to agree
	if above && s.inst <= ceiling(g.Program, s.inv) {
		return false, nil
	}
	if !above && s.inst >= paramNum(g.Program, "low_load", 0.3) {
		return false, nil
	}
	return g.Unify(0, lcc.F(round(s.cpu))), nil
}

func (w *Worker) cOverloaded(_ context.Context, g *lcc.Goal) (bool, error) {
	return w.held(true, g)
}

func (w *Worker) cUnderloaded(_ context.Context, g *lcc.Goal) (bool, error) {
	return w.held(false, g)
}

// leaseSet reads the leases that constrain choices: VMs cooling down or
// held, and capacity reserved on this host.
type leaseSet struct {
	cooling, held    map[string]bool
	reservedCPU, mem int64
}

func (w *Worker) leases(ctx context.Context, stale bool) (leaseSet, error) {
	ls, err := w.store.Leases(ctx, "", stale)
	if err != nil {
		return leaseSet{}, err
	}
	return w.leaseSetOf(ls), nil
}

// reservations reads only the capacity reserved on this host: what fits
// needs, on every call for proposals.
func (w *Worker) reservations(ctx context.Context, stale bool) (leaseSet, error) {
	ls, err := w.store.Leases(ctx, "reserve/"+w.cfg.Host+"/", stale)
	if err != nil {
		return leaseSet{}, err
	}
	return w.leaseSetOf(ls), nil
}

func (w *Worker) leaseSetOf(ls []raftstore.LeaseView) leaseSet {
	out := leaseSet{cooling: map[string]bool{}, held: map[string]bool{}}
	prefix := "reserve/" + w.cfg.Host + "/"
	for _, l := range ls {
		switch {
		case strings.HasPrefix(l.Key, "cool/"):
			out.cooling[strings.TrimPrefix(l.Key, "cool/")] = true
		case strings.HasPrefix(l.Key, "vm/"):
			out.held[strings.TrimPrefix(l.Key, "vm/")] = true
		case strings.HasPrefix(l.Key, prefix) && l.State == "held":
			c, _ := strconv.ParseInt(l.Attrs["cpu_mhz"], 10, 64)
			m, _ := strconv.ParseInt(l.Attrs["mem_mb"], 10, 64)
			out.reservedCPU += c
			out.mem += m
		}
	}
	return out
}

// cPickVM chooses the VM whose move best brings this host under the high
// threshold: the smallest that is enough, or else the largest.
func (w *Worker) cPickVM(ctx context.Context, g *lcc.Goal) (bool, error) {
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	ls, err := w.leases(ctx, true)
	if err != nil {
		return false, err
	}
	high := ceiling(g.Program, s.inv)
	excess := int64(s.inst*float64(s.host.CPUCapacityMHz) - high*float64(s.host.CPUCapacityMHz))
	w.mu.Lock()
	busy := map[string]bool{}
	for vm := range w.negotiating {
		busy[vm] = true
	}
	w.mu.Unlock()
	var cands []vsphere.VM
	for _, v := range s.inv.VMsOn(s.host.ID) {
		if v.PowerState != "poweredOn" || busy[v.Name] || ls.cooling[v.Name] || ls.held[v.Name] {
			continue
		}
		if hasFact(g.Program, "must_run_on", v.Name, w.cfg.Host) {
			continue
		}
		cands = append(cands, v)
	}
	if len(cands) == 0 {
		return false, nil
	}
	// A VM larger than the most room any other host has under the ceiling
	// would get no bid: leave it, and move smaller ones instead.
	var room int64
	for _, h := range s.inv.Hosts {
		if h.ID != s.host.ID && h.Available() {
			room = max(room, int64(high*float64(h.CPUCapacityMHz))-h.CPUUsedMHz)
		}
	}
	fitting := cands[:0:0]
	for _, v := range cands {
		if v.CPUDemandMHz <= room {
			fitting = append(fitting, v)
		}
	}
	if len(fitting) == 0 {
		return false, nil
	}
	cands = fitting
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].CPUDemandMHz != cands[j].CPUDemandMHz {
			return cands[i].CPUDemandMHz < cands[j].CPUDemandMHz
		}
		return cands[i].Name < cands[j].Name
	})
	pick := cands[len(cands)-1]
	for _, v := range cands {
		if v.CPUDemandMHz >= excess {
			pick = v
			break
		}
	}
	w.mu.Lock()
	if _, taken := w.negotiating[pick.Name]; taken {
		w.mu.Unlock()
		return false, nil
	}
	w.negotiating[pick.Name] = g.Interaction
	w.mu.Unlock()
	w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", pick.Name).
		Int64("cpu_mhz", pick.CPUDemandMHz).Float64("load", round(s.cpu)).Msg("offering a VM")
	return g.Unify(0, lcc.A(pick.Name)) && g.Unify(1, lcc.I(pick.CPUDemandMHz)) && g.Unify(2, lcc.I(pick.MemMB)), nil
}

// rulesAllow checks the must rules of the policy's facts for VM on host.
func (w *Worker) rulesAllow(p *lcc.Program, inv *vsphere.Inventory, vm, host string) bool {
	for _, f := range p.Model.Facts {
		c, ok := f.Term.(*lcc.Compound)
		if !ok || len(c.Args) != 2 {
			continue
		}
		a, _ := c.Args[0].(*lcc.Atom)
		b, _ := c.Args[1].(*lcc.Atom)
		if a == nil || b == nil {
			continue
		}
		switch c.Functor {
		case "must_run_on":
			if a.Name == vm && b.Name != host {
				return false
			}
		case "must_not_run_on":
			if a.Name == vm && b.Name == host {
				return false
			}
		case "anti_affinity":
			other := ""
			if a.Name == vm {
				other = b.Name
			} else if b.Name == vm {
				other = a.Name
			}
			if other != "" && inv != nil {
				h, _ := inv.Host(host)
				for _, v := range inv.VMsOn(h.ID) {
					if v.Name == other {
						return false
					}
				}
			}
		}
	}
	return true
}

func (w *Worker) cRulesAllow(_ context.Context, g *lcc.Goal) (bool, error) {
	vm, ok1 := g.AtomName(0)
	host, ok2 := g.AtomName(1)
	if !ok1 || !ok2 {
		return false, errors.New("rules_allow/2 needs a VM and a host name")
	}
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	return w.rulesAllow(g.Program, s.inv, vm, host), nil
}

// fits decides whether a VM of the given demand fits on this host under
// the high threshold, after the capacity reserved on it.
func (w *Worker) fits(ctx context.Context, p *lcc.Program, vm string, cpu, mem int64, stale bool) (bool, float64, error) {
	s, err := w.snap()
	if err != nil {
		return false, 0, nil // not observed yet (just started): decline rather than fail
	}
	if !s.host.Available() || s.host.CPUCapacityMHz <= 0 || w.draining() {
		return false, 0, nil
	}
	for _, v := range s.inv.VMsOn(s.host.ID) {
		if v.Name == vm {
			return false, 0, nil // already here
		}
	}
	if !w.rulesAllow(p, s.inv, vm, w.cfg.Host) {
		return false, 0, nil
	}
	ls, err := w.reservations(ctx, stale)
	if err != nil {
		return false, 0, err
	}
	capCPU, capMem := float64(s.host.CPUCapacityMHz), float64(s.host.MemCapacityMB)
	projected := (math.Max(s.cpu, s.inst)*capCPU + float64(ls.reservedCPU+cpu)) / capCPU
	projMem := (math.Max(s.mem, s.instMem)*capMem + float64(ls.mem+mem)) / capMem
	high := ceiling(p, s.inv)
	return projected <= high && projMem <= paramNum(p, "high_mem", 0.9), projected, nil
}

func demandArgs(g *lcc.Goal, first int) (string, int64, int64, error) {
	vm, ok := g.AtomName(first)
	cpu, ok1 := g.Number(first + 1)
	mem, ok2 := g.Number(first + 2)
	if !ok || !ok1 || !ok2 {
		return "", 0, 0, fmt.Errorf("want a VM name, CPU MHz and memory MB")
	}
	return vm, int64(cpu), int64(mem), nil
}

func (w *Worker) cFits(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, cpu, mem, err := demandArgs(g, 0)
	if err != nil {
		return false, err
	}
	ok, _, err := w.fits(ctx, g.Program, vm, cpu, mem, true)
	return ok, err
}

func (w *Worker) cBidScore(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, cpu, mem, err := demandArgs(g, 0)
	if err != nil {
		return false, err
	}
	_, projected, err := w.fits(ctx, g.Program, vm, cpu, mem, true)
	if err != nil {
		return false, err
	}
	score := 1 - projected
	if hasFact(g.Program, "should_run_on", vm, w.cfg.Host) {
		score += 0.05
	}
	return g.Unify(3, lcc.F(round(score))), nil
}

func (w *Worker) cBestBid(_ context.Context, g *lcc.Goal) (bool, error) {
	bids, ok := lcc.ListElems(g.Arg(0))
	if !ok || len(bids) == 0 {
		return false, nil
	}
	type bid struct {
		peer  lcc.Term
		name  string
		score float64
	}
	var bs []bid
	for _, b := range bids {
		c, ok := lcc.Deref(b).(*lcc.Compound)
		if !ok || c.Functor != "b" || len(c.Args) != 2 {
			return false, fmt.Errorf("best_bid/3: a bid must be b(Peer, Score), got %s", lcc.FormatTerm(b))
		}
		name := lcc.FormatTerm(c.Args[0])
		s, _ := (&lcc.Goal{Args: c.Args}).Number(1)
		bs = append(bs, bid{c.Args[0], name, s})
	}
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].score != bs[j].score {
			return bs[i].score > bs[j].score
		}
		return bs[i].name < bs[j].name
	})
	losers := make([]lcc.Term, 0, len(bs)-1)
	for _, b := range bs[1:] {
		losers = append(losers, b.peer)
	}
	return g.Unify(1, bs[0].peer) && g.Unify(2, lcc.L(losers...)), nil
}

func (w *Worker) ttl(p *lcc.Program) time.Duration {
	return time.Duration(paramNum(p, "lease_ttl", 30) * float64(time.Second))
}

func (w *Worker) dryRun(p *lcc.Program) bool { return w.cfg.DryRun || paramBool(p, "dry_run") }

// cReserve reserves capacity on this host for a VM, checking again under
// a lock with a linearizable read so that two awards never oversubscribe.
func (w *Worker) cReserve(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, cpu, mem, err := demandArgs(g, 0)
	if err != nil {
		return false, err
	}
	key := "reserve/" + w.cfg.Host + "/" + vm
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
	gr, err := w.store.Acquire(ctx, raftstore.AcquireRequest{Holder: w.cfg.ID, TTLMillis: w.ttl(g.Program).Milliseconds(),
		Items: []raftstore.AcquireItem{{Key: key, Attrs: map[string]string{"cpu_mhz": strconv.FormatInt(cpu, 10), "mem_mb": strconv.FormatInt(mem, 10), "interaction": g.Interaction}}}})
	if err != nil {
		if errors.Is(err, raftstore.ErrLeaseHeld) {
			return false, nil
		}
		return false, err
	}
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

// cTakeLeases takes, all or nothing, the VM lease and a migration slot on
// both hosts. A VM whose last lease expired unreleased is checked in
// vCenter first.
func (w *Worker) cTakeLeases(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, ok := g.AtomName(0)
	winner, ok2 := g.AtomName(1)
	if !ok || !ok2 {
		return false, errors.New("take_leases/4 needs a VM and a worker")
	}
	if w.dryRun(g.Program) {
		return g.Unify(3, lcc.C("lease", lcc.I(0), lcc.L())), nil
	}
	target, ok := w.peerHost(winner)
	if !ok {
		return false, nil
	}
	slots := int(paramNum(g.Program, "migration_slots", 4))
	gr, err := w.store.Acquire(ctx, raftstore.AcquireRequest{Holder: w.cfg.ID, TTLMillis: w.ttl(g.Program).Milliseconds(), Items: []raftstore.AcquireItem{
		{Key: "vm/" + vm, Attrs: map[string]string{"interaction": g.Interaction, "from": w.cfg.Host, "to": target}},
		{Key: "host/" + w.cfg.Host + "/slot/", AnyOf: slots},
		{Key: "host/" + target + "/slot/", AnyOf: slots},
	}})
	if err != nil {
		if errors.Is(err, raftstore.ErrLeaseHeld) || errors.Is(err, raftstore.ErrLockDelay) {
			w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Err(err).Msg("leases not available")
			return false, nil
		}
		return false, err
	}
	lease := lcc.C("lease", lcc.I(int64(gr.Token)), keysTerm(gr.Keys))
	if len(gr.NeedsReconcile) > 0 {
		s, _ := w.snap()
		vmID := ""
		for _, v := range s.inv.VMs {
			if v.Name == vm {
				vmID = v.ID
			}
		}
		st, err := w.vs.VMState(ctx, vmID)
		if err != nil || st.Running || st.Host != s.host.ID {
			w.releaseKeys(ctx, w.cfg.ID, gr.Token, gr.Keys)
			w.journal(ctx, raftstore.JournalEntry{Kind: "reconcile", Interaction: g.Interaction, Policy: g.Policy.Name, Version: g.Policy.Version,
				VM: vm, From: w.cfg.Host, Outcome: "skipped", Reason: fmt.Sprintf("previous lease expired; vCenter says running=%v host=%s err=%v", st.Running, st.Host, err)})
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

// cMigrate runs the vMotion, renewing the leases and the reservation
// while the task runs, then releases them, marks the VM as cooling down,
// and journals the outcome.
func (w *Worker) cMigrate(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, _ := g.AtomName(0)
	winner, _ := g.AtomName(1)
	target, ok := w.peerHost(winner)
	if !ok {
		return false, nil
	}
	entry := raftstore.JournalEntry{Kind: "migration", Interaction: g.Interaction, Policy: g.Policy.Name, Version: g.Policy.Version,
		VM: vm, From: w.cfg.Host, To: target, Worker: w.cfg.ID}
	if w.dryRun(g.Program) {
		entry.Kind, entry.Outcome = "would-migrate", "dry-run"
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
	var vmID, targetID string
	for _, v := range s.inv.VMs {
		if v.Name == vm {
			vmID = v.ID
		}
	}
	if h, ok := s.inv.Host(target); ok {
		targetID = h.ID
	}
	ttl := w.ttl(g.Program)
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-t.C:
				for _, l := range []leaseRef{lease, res} {
					if _, err := w.store.Renew(renewCtx, raftstore.RenewRequest{Keys: l.keys, Holder: l.holder, Token: l.token, TTLMillis: ttl.Milliseconds()}); err != nil && renewCtx.Err() == nil {
						w.log.Warn().Err(err).Str("interaction", g.Interaction).Str("vm", vm).Msg("renew lease")
					}
				}
			}
		}
	}()
	start := time.Now()
	log := w.log.With().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vm).Str("from", w.cfg.Host).Str("to", target).Logger()
	log.Info().Uint64("token", lease.token).Msg("migration starting")
	merr := w.vs.Migrate(ctx, vmID, targetID, nil)
	stopRenew()
	<-renewDone
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	entry.DurationMS = time.Since(start).Milliseconds()
	if merr == nil {
		entry.Outcome = "success"
		cool := time.Duration(paramNum(g.Program, "cooldown", 60) * float64(time.Second))
		if cool > 0 {
			w.store.Acquire(rctx, raftstore.AcquireRequest{Holder: w.cfg.ID, TTLMillis: cool.Milliseconds(), Items: []raftstore.AcquireItem{{Key: "cool/" + vm}}})
		}
		log.Info().Int64("ms", entry.DurationMS).Msg("migration done")
	} else {
		entry.Outcome, entry.Reason = "failed", merr.Error()
		log.Warn().Err(merr).Msg("migration failed")
	}
	w.journal(rctx, entry)
	w.releaseKeys(rctx, lease.holder, lease.token, lease.keys)
	w.releaseKeys(rctx, res.holder, res.token, res.keys)
	return merr == nil, nil
}

func (w *Worker) releaseKeys(ctx context.Context, holder string, token uint64, keys []string) {
	if token == 0 || len(keys) == 0 {
		return
	}
	if err := w.store.Release(ctx, raftstore.RenewRequest{Keys: keys, Holder: holder, Token: token}); err != nil && !errors.Is(err, raftstore.ErrStaleToken) {
		w.log.Warn().Err(err).Strs("keys", keys).Msg("release")
	}
}

func (w *Worker) cRelease(ctx context.Context, g *lcc.Goal) (bool, error) {
	l, err := parseLease(g.Arg(0), w.cfg.ID)
	if err != nil {
		return false, err
	}
	w.releaseKeys(ctx, l.holder, l.token, l.keys)
	return true, nil
}

func (w *Worker) journal(ctx context.Context, e raftstore.JournalEntry) {
	if err := w.store.AppendJournal(ctx, e); err != nil {
		w.log.Warn().Err(err).Str("interaction", e.Interaction).Str("vm", e.VM).Msg("journal")
	}
}

func (w *Worker) cJournalNote(ctx context.Context, g *lcc.Goal) (bool, error) {
	vm, _ := g.AtomName(0)
	reason := lcc.FormatTerm(g.Arg(1))
	w.journal(ctx, raftstore.JournalEntry{Kind: "negotiation", Interaction: g.Interaction, Policy: g.Policy.Name, Version: g.Policy.Version,
		VM: vm, From: w.cfg.Host, Outcome: "no-move", Reason: reason, Worker: w.cfg.ID})
	return true, nil
}

func round(f float64) float64 { return math.Round(f*10000) / 10000 }

// reconcile settles leases still held in this worker's name, from before
// a restart: a migration still running in vCenter is waited for, then
// everything is released and journaled.
func (w *Worker) reconcile(ctx context.Context) error {
	ls, err := w.store.Leases(ctx, "", false)
	if err != nil {
		return err
	}
	byToken := map[uint64][]raftstore.LeaseView{}
	for _, l := range ls {
		if l.Holder == w.cfg.ID && !strings.HasPrefix(l.Key, "cool/") {
			byToken[l.Token] = append(byToken[l.Token], l)
		}
	}
	if len(byToken) == 0 {
		return nil
	}
	inv, err := w.vs.Inventory(ctx)
	if err != nil {
		return err
	}
	for token, group := range byToken {
		var keys []string
		vm := ""
		for _, l := range group {
			keys = append(keys, l.Key)
			if strings.HasPrefix(l.Key, "vm/") {
				vm = strings.TrimPrefix(l.Key, "vm/")
			}
		}
		outcome := "released"
		if vm != "" {
			vmID := ""
			for _, v := range inv.VMs {
				if v.Name == vm {
					vmID = v.ID
				}
			}
			for vmID != "" {
				st, err := w.vs.VMState(ctx, vmID)
				if err != nil || !st.Running {
					break
				}
				outcome = "finished"
				w.store.Renew(ctx, raftstore.RenewRequest{Keys: keys, Holder: w.cfg.ID, Token: token, TTLMillis: 30000})
				if !sleep(ctx, time.Second) {
					return ctx.Err()
				}
			}
		}
		w.releaseKeys(ctx, w.cfg.ID, token, keys)
		w.journal(ctx, raftstore.JournalEntry{Kind: "reconcile", VM: vm, From: w.cfg.Host, Outcome: outcome, Worker: w.cfg.ID,
			Reason: fmt.Sprintf("leases %v held from before a restart", keys)})
		w.log.Info().Str("vm", vm).Strs("keys", keys).Str("outcome", outcome).Msg("reconciled leases from before a restart")
	}
	return nil
}

func (w *Worker) draining() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.drain != nil
}

func (w *Worker) cVMCount(_ context.Context, g *lcc.Goal) (bool, error) {
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	n := 0
	for _, v := range s.inv.VMsOn(s.host.ID) {
		if v.PowerState == "poweredOn" {
			n++
		}
	}
	return g.Unify(0, lcc.I(int64(n))), nil
}

func (w *Worker) cDrainRequested(_ context.Context, g *lcc.Goal) (bool, error) {
	w.mu.Lock()
	d := w.drain
	w.mu.Unlock()
	if d == nil {
		return false, nil
	}
	s, err := w.snap()
	if err != nil || s.host.InMaintenance {
		return false, err
	}
	who := d.RequestedBy
	if who == "" {
		who = "operator"
	}
	return g.Unify(0, lcc.A(who)), nil
}

func (w *Worker) cReportDrain(ctx context.Context, g *lcc.Goal) (bool, error) {
	state, ok := g.AtomName(0)
	if !ok {
		return false, errors.New("report_drain/2: the state must be an atom")
	}
	reason := lcc.FormatTerm(g.Arg(1))
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	left := 0
	for _, v := range s.inv.VMsOn(s.host.ID) {
		if v.PowerState == "poweredOn" {
			left++
		}
	}
	if err := w.store.ReportHost(ctx, raftstore.HostReport{Name: w.cfg.Host, State: state, Reason: reason, VMsLeft: left}); err != nil {
		return false, err
	}
	w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("state", state).Str("reason", reason).Int("vms_left", left).Msg("host state reported")
	return true, nil
}

func (w *Worker) cSetMaintenance(ctx context.Context, g *lcc.Goal) (bool, error) {
	on, ok := g.AtomName(0)
	if !ok || (on != "true" && on != "false") {
		return false, errors.New("set_maintenance/1 takes true or false")
	}
	if w.dryRun(g.Program) {
		w.log.Info().Str("interaction", g.Interaction).Str("maintenance", on).Msg("would set maintenance mode (dry run)")
		return true, nil
	}
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	if err := w.vs.SetMaintenance(ctx, s.host.ID, on == "true"); err != nil {
		return false, err
	}
	w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("maintenance", on).Msg("maintenance mode set")
	return true, nil
}

// ceiling is the CPU share a host should stay under: param(high_load), or
// lower when the policy sets param(balance_margin, M): the fleet's mean
// load plus M. With a margin, hosts well above the mean shed load even
// below the high threshold, and no target is filled past the mean plus
// the margin, so that the fleet evens out without oscillating.
func ceiling(p *lcc.Program, inv *vsphere.Inventory) float64 {
	high := paramNum(p, "high_load", 0.7)
	margin := paramNum(p, "balance_margin", -1)
	if margin < 0 || inv == nil {
		return high
	}
	var used, capacity int64
	for _, h := range inv.Hosts {
		if h.Available() {
			used += h.CPUUsedMHz
			capacity += h.CPUCapacityMHz
		}
	}
	if capacity == 0 {
		return high
	}
	return math.Min(high, float64(used)/float64(capacity)+margin)
}
