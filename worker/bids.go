package worker

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/vsphere"
)

// leaseSet reads the leases that constrain choices: VMs cooling down or
// held, and capacity reserved on this host.
type leaseSet struct {
	cooling, held    map[string]bool
	reservations     map[string]bool // this host's reservations held, by key
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
	ls, err := w.store.Leases(ctx, api.ReservePrefix(w.cfg.Host), stale)
	if err != nil {
		return leaseSet{}, err
	}
	return w.leaseSetOf(ls), nil
}

func (w *Worker) leaseSetOf(ls []raftstore.LeaseView) leaseSet {
	out := leaseSet{cooling: map[string]bool{}, held: map[string]bool{}, reservations: map[string]bool{}}
	prefix := api.ReservePrefix(w.cfg.Host)
	for _, l := range ls {
		switch {
		case strings.HasPrefix(l.Key, api.PrefixCool):
			out.cooling[strings.TrimPrefix(l.Key, api.PrefixCool)] = true
		case strings.HasPrefix(l.Key, api.PrefixVM):
			out.held[strings.TrimPrefix(l.Key, api.PrefixVM)] = true
		case strings.HasPrefix(l.Key, prefix) && l.State == api.LeaseHeld:
			c, _ := strconv.ParseInt(l.Attrs["cpu_mhz"], 10, 64)
			m, _ := strconv.ParseInt(l.Attrs["mem_mb"], 10, 64)
			out.reservedCPU += c
			out.mem += m
			out.reservations[l.Key] = true
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
	high := ceiling(w.params(g.Program), s.inv)
	excess := int64(s.inst*float64(s.host.CPUCapacityMHz) - high*float64(s.host.CPUCapacityMHz))
	w.mu.Lock()
	busy := map[string]bool{}
	for vm := range w.negotiating {
		busy[vm] = true
	}
	w.mu.Unlock()
	var cands []vsphere.VM
	for _, v := range s.inv.VMsOn(s.host.ID) {
		if busy[v.Name] || ls.cooling[v.Name] || ls.held[v.Name] {
			continue
		}
		if ok, _ := movable(s.inv, s.host, v); !ok {
			continue
		}
		if w.pinned(ctx, v) {
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
	correcting := w.fixesRules(g.Program) // consolidate and evacuate move VMs for their own reasons
	if viol := w.violations(s, func(name string) bool { return busy[name] || ls.cooling[name] || ls.held[name] }); correcting && len(viol) > 0 {
		// a VM that breaks a mandatory rule goes first; a host that is here
		// only for that, and cannot move it, moves nothing else
		var fix []vsphere.VM
		for _, v := range viol {
			for _, c := range cands {
				if c.Name == v.Name {
					fix = append(fix, c)
				}
			}
		}
		switch {
		case len(fix) > 0:
			w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", fix[0].Name).
				Str("rule", s.inv.RuleProblem(fix[0].ID, s.host.ID)).Msg("a VM breaks a mandatory vCenter rule here: moving it first")
			cands = fix[:1]
		case s.inst <= high:
			return false, nil
		}
	}
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
	if pp := w.params(g.Program); pp.PickTowardMean {
		if v, ok := w.towardMean(g.Program, s, cands, high, pp.HighMem, excess); ok {
			pick = v
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

// towardMean is the candidate whose move to a peer that has room for it
// (CPU under the ceiling, memory under high_mem, the rules allowing it)
// lowers the sum of squared host loads most, as the central greedy
// optimiser chooses, where the smallest VM that gets the host under its
// ceiling would spend a migration on a sliver (param pick_toward_mean).
// A move that gets the host under its ceiling at once (excess MHz or
// more) is preferred to one that does not. False when no move lowers it.
func (w *Worker) towardMean(p *lcc.Program, s snapshot, cands []vsphere.VM, high, highMem float64, excess int64) (vsphere.VM, bool) {
	src := float64(s.host.CPUCapacityMHz)
	if src <= 0 {
		return vsphere.VM{}, false
	}
	ls := s.inst
	var best vsphere.VM
	bestF, bestEnough := math.Inf(1), false
	for _, v := range cands {
		enough := v.CPUDemandMHz >= excess
		d := float64(v.CPUDemandMHz)
		for _, h := range s.inv.Hosts {
			if h.ID == s.host.ID || !h.Available() || h.CPUCapacityMHz <= 0 {
				continue
			}
			ct := float64(h.CPUCapacityMHz)
			lt := float64(h.CPUUsedMHz) / ct
			if lt+d/ct > high || (h.MemCapacityMB > 0 && float64(h.MemUsedMB+v.MemMB)/float64(h.MemCapacityMB) > highMem) {
				continue // no room there
			}
			if !w.rulesAllow(p, s.inv, v.Name, h.Name) {
				continue
			}
			// what the move changes in the sum of squared loads
			f := (ls-d/src)*(ls-d/src) + (lt+d/ct)*(lt+d/ct) - ls*ls - lt*lt
			if f >= 0 || (bestEnough && !enough) {
				continue
			}
			if (enough && !bestEnough) || f < bestF-1e-12 {
				best, bestF, bestEnough = v, f, enough
			}
		}
	}
	return best, bestF < 0
}

// fits decides whether a VM of the given demand fits on this host under
// the high threshold, after the capacity reserved on it.
func (w *Worker) fits(ctx context.Context, p *lcc.Program, vm string, cpu, mem int64, stale bool) (bool, float64, error) {
	ok, projected, _, err := w.fitsMem(ctx, p, vm, cpu, mem, stale)
	return ok, projected, err
}

// fitsMem is fits, also returning the memory share the host would have.
func (w *Worker) fitsMem(ctx context.Context, p *lcc.Program, vm string, cpu, mem int64, stale bool) (bool, float64, float64, error) {
	fail := func(err error) (bool, float64, float64, error) { return false, 0, 0, err }
	s, err := w.snap()
	if err != nil {
		return fail(nil) // not observed yet (just started): decline rather than fail
	}
	if !s.host.Available() || s.host.CPUCapacityMHz <= 0 || w.draining() || w.stopping.Load() {
		return fail(nil) // a stopping worker takes no VM
	}
	if w.staleView(w.params(p).MaxViewAge) != "" {
		return fail(nil) // vCenter has not answered for this host lately: no bid from an old view
	}
	if left, _ := w.leftToDRS(s.inv, s.host); left && !w.intoDRSClusters(p) {
		return fail(nil) // DRS balances this cluster; a drain still gets room
	}
	if v, ok := s.inv.VM(vm); ok && v.Host == s.host.ID {
		return fail(nil) // already here
	}
	if !w.rulesAllow(p, s.inv, vm, w.cfg.Host) {
		return fail(nil)
	}
	if v, ok := s.inv.VM(vm); ok && s.inv.StorageProblem(v.ID, s.host.ID) != "" {
		return fail(nil) // this host cannot see the VM's disks: decline before a bid
	}
	ls, err := w.reservations(ctx, stale)
	if err != nil {
		return fail(err)
	}
	capCPU, capMem := float64(s.host.CPUCapacityMHz), float64(s.host.MemCapacityMB)
	arrCPU, arrMem := w.arriving.unseen(time.Now(), ls.reservations, s.inv, s.host.ID) // arriving.go
	projected := (math.Max(s.cpu, s.inst)*capCPU + float64(ls.reservedCPU+arrCPU+cpu)) / capCPU
	projMem := (math.Max(s.mem, s.instMem)*capMem + float64(ls.mem+arrMem+mem)) / capMem
	high := ceiling(w.params(p), s.inv)
	return projected <= high && projMem <= w.params(p).HighMem, projected, projMem, nil
}

// Largest demand a VM may state: far above any real VM (a host of 4,096
// cores at 10 GHz; 64 TiB of memory).
const (
	maxDemandMHz = 1 << 30
	maxDemandMB  = 1 << 40
)

func demandArgs(g *lcc.Goal, first int) (string, int64, int64, error) {
	vm, ok := g.AtomName(first)
	cpu, ok1 := g.Number(first + 1)
	mem, ok2 := g.Number(first + 2)
	if !ok || !ok1 || !ok2 || vm == "" {
		return "", 0, 0, fmt.Errorf("want a VM name, CPU MHz and memory MB")
	}
	// demand comes from a peer's message: a negative or absurd figure
	// would make this host look emptier (or fuller) than it is
	if math.IsNaN(cpu) || math.IsNaN(mem) || cpu < 0 || mem < 0 || cpu > maxDemandMHz || mem > maxDemandMB {
		return "", 0, 0, fmt.Errorf("demand of VM %s out of range: CPU %g MHz (0 to %d), memory %g MB (0 to %d)", vm, cpu, int64(maxDemandMHz), mem, int64(maxDemandMB))
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
	_, projected, projMem, err := w.fitsMem(ctx, g.Program, vm, cpu, mem, true)
	if err != nil {
		return false, err
	}
	mw := w.params(g.Program).MemWeight
	score := 1 - ((1-mw)*projected + mw*projMem)
	if hasFact(g.Program, "should_run_on", vm, w.cfg.Host) {
		score += 0.05
	}
	if s, err := w.snap(); err == nil {
		if v, ok := s.inv.VM(vm); ok && s.inv.PreferenceBroken(v.ID, s.host.ID) {
			score -= 0.25 // against a preferred vCenter rule: only if nothing better bids
		}
	}
	return g.Unify(3, lcc.F(round(score))), nil
}

func (w *Worker) cBestBid(_ context.Context, g *lcc.Goal) (bool, error) {
	bids, ok := lcc.ListElems(g.Arg(0))
	if !ok || len(bids) == 0 {
		return false, nil
	}
	type bid struct {
		peer    lcc.Term
		name    string
		score   float64
		backoff bool // this VM's relocations to the bidder's host failed of late
	}
	// the VM this negotiation offers: a bidder it failed to reach of late
	// comes after every other, so that a failing pair does not win again
	// and again while another host could take the VM (take_leases refuses
	// the pair, backoff.go)
	w.mu.Lock()
	vm := ""
	for name, iid := range w.negotiating {
		if iid == g.Interaction {
			vm = name
		}
	}
	w.mu.Unlock()
	now := time.Now()
	var bs []bid
	for _, b := range bids {
		c, ok := lcc.Deref(b).(*lcc.Compound)
		if !ok || c.Functor != "b" || len(c.Args) != 2 {
			return false, fmt.Errorf("best_bid/3: a bid must be b(Peer, Score), got %s", lcc.FormatTerm(b))
		}
		name := lcc.FormatTerm(c.Args[0])
		s, _ := (&lcc.Goal{Args: c.Args}).Number(1)
		waiting := false
		if id, isAtom := (&lcc.Goal{Args: c.Args}).AtomName(0); vm != "" && isAtom {
			if host, ok := w.peerHost(id); ok {
				waiting = !w.backoff.waiting(vm, host, now).IsZero()
			}
		}
		bs = append(bs, bid{c.Args[0], name, s, waiting})
	}
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].backoff != bs[j].backoff {
			return !bs[i].backoff
		}
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
