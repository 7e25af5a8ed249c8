package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/vsphere"
)

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
	inv := w.inv
	var ids []string
	for id, p := range w.peers {
		if id == w.cfg.ID {
			continue
		}
		if inv != nil {
			if _, ok := inv.Host(p.Host); !ok {
				continue // a host of another cluster: no vMotion there
			}
		}
		if w.backoff.targetResting(p.Host, time.Now()) {
			continue // its relocations keep failing: offered nothing for a while (backoff.go)
		}
		ids = append(ids, id)
	}
	w.mu.Unlock()
	sort.Strings(ids)
	ts := make([]lcc.Term, len(ids))
	for i, id := range ids {
		ts[i] = lcc.A(id)
	}
	return g.Unify(1, lcc.L(ts...)), nil
}

func (w *Worker) cVMCount(_ context.Context, g *lcc.Goal) (bool, error) {
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	n := 0
	for _, v := range s.inv.VMsOn(s.host.ID) {
		if v.PoweredOn() {
			n++
		}
	}
	return g.Unify(0, lcc.I(int64(n))), nil
}

func (w *Worker) held(above bool, g *lcc.Goal) (bool, error) {
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	if !s.host.Available() {
		return false, nil
	}
	if left, _ := w.leftToDRS(s.inv, s.host); left {
		return false, nil // DRS balances this cluster
	}
	if above && w.fixesRules(g.Program) && len(w.violations(s, w.negotiatingVM)) > 0 {
		return g.Unify(0, lcc.F(round(s.cpu))), nil // a broken mandatory rule is corrected at once
	}
	hold := w.params(g.Program).HoldTime
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
	if above && s.inst <= ceiling(w.params(g.Program), s.inv) {
		return false, nil
	}
	if !above && s.inst >= w.params(g.Program).LowLoad {
		return false, nil
	}
	return g.Unify(0, lcc.F(round(s.cpu))), nil
}

// holdDue is how long until the load crossing this host is in has been
// held for hold_time (the first policy's), or 0 when it is in none, or
// has been held already: Run ticks then rather than at its next interval,
// so that a host reacts when hold_time ends, not up to a tick later.
func (w *Worker) holdDue(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	hold := w.params(w.active).HoldTime
	var due time.Duration
	for _, since := range []time.Time{w.highSince, w.lowSince} {
		if since.IsZero() {
			continue
		}
		if d := since.Add(hold).Sub(now); d > 0 && (due == 0 || d < due) {
			due = d
		}
	}
	return due
}

func (w *Worker) cOverloaded(_ context.Context, g *lcc.Goal) (bool, error) {
	return w.held(true, g)
}

func (w *Worker) cUnderloaded(_ context.Context, g *lcc.Goal) (bool, error) {
	return w.held(false, g)
}

// ceiling is the CPU share a host should stay under: param(high_load), or
// lower when the policy sets param(balance_margin, M): the fleet's mean
// load plus M. With a margin, hosts well above the mean shed load even
// below the high threshold, and no target is filled past the mean plus
// the margin, so that the fleet evens out without oscillating.
func ceiling(pp policies.Params, inv *vsphere.Inventory) float64 {
	high, margin := pp.HighLoad, pp.BalanceMargin
	if !pp.HasBalanceMargin || inv == nil {
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

// Observe reads the inventory and samples this host's load. Tick calls it.
func (w *Worker) Observe(ctx context.Context) error {
	inv, err := w.vs.Inventory(ctx)
	if err != nil {
		return err
	}
	h, ok := inv.Host(w.cfg.Host)
	if !ok {
		return fmt.Errorf("worker: host %s is not in vCenter", w.cfg.Host)
	}
	inv = inv.Scope(h.Cluster) // vMotion, DRS and parley's negotiations stay within a cluster
	w.noteDRS(ctx, inv, h)
	cpu, mem, from := w.hostLoad(ctx, h)
	w.mu.Lock()
	defer w.mu.Unlock()
	if from != w.statsFrom {
		w.log.Info().Str("stats", from).Str("asked", w.cfg.Stats).Msg("host load read from " + from)
		w.statsFrom = from
	}
	w.inv, w.hostID, w.observed = inv, h.ID, inv.ReadAt
	if w.observed.IsZero() {
		w.observed = time.Now() // a source that does not say: as of now
	}
	pp := w.params(w.active)
	window := max(1, pp.SmoothingWindow)
	w.samples = appendWindow(w.samples, cpu, window)
	w.memSamples = appendWindow(w.memSamples, mem, window)
	load := mean(w.samples)
	high, low := ceiling(pp, inv), pp.LowLoad
	now := time.Now()
	w.highSince = since(w.highSince, load > high, now)
	w.lowSince = since(w.lowSince, load < low, now)
	return nil
}

// hostLoad is the host's CPU and memory load now: vCenter's latest
// realtime sample with --stats realtime (where it has one), quickStats
// otherwise.
func (w *Worker) hostLoad(ctx context.Context, h vsphere.Host) (cpu, mem float64, from string) {
	cpu, mem = share(h.CPUUsedMHz, h.CPUCapacityMHz), share(h.MemUsedMB, h.MemCapacityMB)
	if w.cfg.Stats != StatsRealtime {
		return cpu, mem, StatsQuick
	}
	sr := w.caps.stats
	if sr == nil {
		return cpu, mem, StatsQuick
	}
	st, err := sr.HostStats(ctx, h)
	if err != nil {
		if !errors.Is(err, vsphere.ErrNoStats) {
			w.log.Warn().Err(err).Msg("realtime statistics unavailable; using quickStats this tick")
		}
		return cpu, mem, StatsQuick
	}
	return st.CPU, st.Mem, StatsRealtime
}

func since(t time.Time, cond bool, now time.Time) time.Time {
	if !cond {
		return time.Time{}
	}
	if t.IsZero() {
		return now
	}
	return t
}

func share(used, capacity int64) float64 {
	if capacity <= 0 {
		return 0
	}
	return float64(used) / float64(capacity)
}

func appendWindow(s []float64, v float64, n int) []float64 {
	s = append(s, v)
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

func mean(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	var t float64
	for _, v := range s {
		t += v
	}
	return t / float64(len(s))
}

// cFleetCalm holds when no available host is above the ceiling (its
// instantaneous load, as vCenter reports it): balancing has nothing to do,
// so a host consolidation empties will not be filled again next tick. A
// worker that follows a single policy has nothing to fight with: calm.
func (w *Worker) cFleetCalm(_ context.Context, g *lcc.Goal) (bool, error) {
	if len(w.policies) == 1 {
		return true, nil
	}
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	high := ceiling(w.params(g.Program), s.inv)
	for _, h := range s.inv.Hosts {
		if h.Available() && share(h.CPUUsedMHz, h.CPUCapacityMHz) > high {
			return false, nil
		}
	}
	return true, nil
}
