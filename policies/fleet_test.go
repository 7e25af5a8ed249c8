package policies_test

import (
	"os"
	"sort"
	"testing"
	"time"

	"github.com/parleyhq/parley/worker/local"
)

// TestFleetOnEveryPolicyWithDrift: a fleet that follows balance and
// consolidate (and evacuate, as every fleet does), with drifting demand
// and a drain in the middle, for PARLEY_FLEET_DURATION (40 s in CI; several
// minutes for the long version). No VM moves again within its cool-down
// (60 s in the shipped policies), so none goes back and forth, whichever
// policies moved it.
func TestFleetOnEveryPolicyWithDrift(t *testing.T) {
	run := 40 * time.Second
	if d, err := time.ParseDuration(os.Getenv("PARLEY_FLEET_DURATION")); err == nil && d > 0 {
		run = d
	}
	l, _, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 64, Seed: 9, Policy: "balance,consolidate", Drift: true}, nil)
	time.Sleep(run / 2)
	drained := l.Sim.Layout.Hosts[5].Name
	if _, err := l.Store.Drain(ctx, drained, "test", true); err != nil {
		t.Fatal(err)
	}
	drainedAt := time.Now() // acknowledged: every later take of leases sees it
	time.Sleep(run / 2)
	const cooldown = 60 * time.Second
	byVM := map[string][]time.Time{}
	moves := 0
	for _, r := range l.Sim.Relocations() {
		if r.Result == "success" {
			byVM[r.VM] = append(byVM[r.VM], r.End)
			moves++
		}
		if r.To == drained && r.Start.After(drainedAt) {
			t.Errorf("%s moved to %s, which was being drained", r.VM, drained)
		}
	}
	for vm, ends := range byVM {
		sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
		for i := 1; i < len(ends); i++ {
			if gap := ends[i].Sub(ends[i-1]); gap < cooldown-time.Second {
				t.Errorf("%s moved again %s after its last move, within its %s cool-down", vm, gap.Round(time.Millisecond), cooldown)
				for _, r := range l.Sim.Relocations() {
					if r.VM == vm {
						t.Logf("  %s -> %s, %s to %s: %s", r.From, r.To, r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), r.Result)
					}
				}
				if js, err := l.Store.Journal(ctx, 0, 100000); err == nil {
					for _, j := range js {
						if j.VM == vm {
							t.Logf("  journal: %+v", j)
						}
					}
				}
			}
		}
	}
	if moves == 0 {
		t.Error("the fleet made no migration: nothing was checked")
	}
	t.Logf("%d migrations of %d VMs over %s checked against their cool-down", moves, len(byVM), run)
}
