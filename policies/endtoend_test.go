package policies_test

// End-to-end tests of each shipped policy on an in-process cluster: a
// 3-member store (real Raft over loopback TCP, fsync'd BoltDB), a
// simulated vCenter (vcsim with parley's strict handlers) with 8 hosts,
// and one worker per host talking LCC over real HTTP. Each checks the
// policy's outcome through the vSphere API and invariants 1 to 4.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/parleyhq/parley/worker/local"
)

func stddev(inv *vsphere.Inventory) (sd, maxLoad float64) {
	st := vsphere.CPULoadStats(inv.Hosts)
	return st.StdDev, st.Max
}

// checkRelocations verifies invariants 1 to 3 from the simulator's own
// record of every relocation: no VM had two overlapping migrations, no
// host took part in more than slots at once, and no target went over high.
func checkRelocations(t *testing.T, recs []sim.Relocation, slots int, high float64) {
	t.Helper()
	for _, v := range sim.Audit(recs, slots, high, 1e-9) {
		t.Error(v)
	}
}

// outcomeLog collects agent outcomes by interaction, for invariant 4.
type outcomeLog struct {
	mu   sync.Mutex
	refs map[string]map[lcc.PolicyRef]int
}

func (o *outcomeLog) observe(out lcc.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refs[out.Interaction] == nil {
		o.refs[out.Interaction] = map[lcc.PolicyRef]int{}
	}
	o.refs[out.Interaction][out.Policy]++
}

func TestShippedPoliciesCheckClean(t *testing.T) {
	for _, name := range policies.Names() {
		src, err := policies.Source(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, diags := policies.Check(name+".lcc", src); len(diags) > 0 {
			t.Errorf("%s: %v", name, diags)
		}
	}
	if _, err := policies.Source("nope"); err == nil {
		t.Error("an unknown policy was found")
	}
}

// TestBalanceEndToEnd runs the balance policy on an in-process cluster: a
// 3-member store, a simulated vCenter with 8 hosts, and one worker per
// host over real HTTP. Midway a new policy version is activated. It checks
// the outcome through the vSphere API and invariants 1 to 4.
func TestBalanceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	outs := &outcomeLog{refs: map[string]map[lcc.PolicyRef]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := local.Start(ctx, local.Config{Hosts: 8, VMs: 48, Seed: 3, MigrateTime: 300 * time.Millisecond,
		Interval: 500 * time.Millisecond, Logger: zerolog.Nop(), Observer: outs.observe})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	inv, err := l.VS.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, beforeMax := stddev(inv)
	if beforeMax <= 0.7 {
		t.Fatalf("the generated layout is not skewed: max load %.2f", beforeMax)
	}
	// a new version mid-run: interactions already running keep theirs
	v1, _ := policies.Source("balance")
	pushed := false
	deadline := time.Now().Add(120 * time.Second)
	var after, afterMax float64
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		if !pushed && len(l.Sim.Relocations()) >= 2 {
			if _, err := l.Store.Push(ctx, raftstore.PushRequest{Name: "balance", Text: string(v1) + "\n// v2\n", Author: "test"}); err != nil {
				t.Fatal(err)
			}
			pushed = true
		}
		inv, err = l.VS.Inventory(ctx)
		if err != nil {
			t.Fatal(err)
		}
		after, afterMax = stddev(inv)
		if pushed && afterMax <= 0.7 && l.Quiet(ctx) {
			break
		}
	}
	// every VM is on exactly one known host
	if len(inv.VMs) != 48 {
		t.Errorf("%d VMs, want 48", len(inv.VMs))
	}
	for _, v := range inv.VMs {
		if _, ok := inv.Host(v.Host); !ok {
			t.Errorf("VM %s is on unknown host %q", v.Name, v.Host)
		}
	}
	if after >= before {
		t.Errorf("imbalance did not fall: %.3f -> %.3f", before, after)
	}
	if afterMax > 0.7 {
		t.Errorf("a host is still above the high threshold: %.3f", afterMax)
	}
	recs := l.Sim.Relocations()
	checkRelocations(t, recs, 4, 0.7)
	// invariant 4: one policy version per interaction
	outs.mu.Lock()
	versions := map[int]bool{}
	for iid, refs := range outs.refs {
		if len(refs) != 1 {
			t.Errorf("invariant 4: interaction %s ran on %d versions: %v", iid, len(refs), refs)
		}
		for r := range refs {
			versions[r.Version] = true
		}
	}
	outs.mu.Unlock()
	// the journal records each migration with its interaction and version
	js, err := l.Store.Journal(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	migrations := 0
	for _, e := range js {
		if e.Kind == "migration" && e.Outcome == "success" {
			migrations++
			if e.Interaction == "" || e.Version == 0 || e.VM == "" || e.From == "" || e.To == "" {
				t.Errorf("journal entry lacks fields: %+v", e)
			}
		}
	}
	ok := 0
	for _, r := range recs {
		if r.Result == "success" {
			ok++
		}
	}
	if migrations != ok {
		t.Errorf("journal has %d migrations, vCenter made %d", migrations, ok)
	}
	t.Logf("imbalance %.3f -> %.3f, max %.2f -> %.2f, %d migrations, versions seen %v", before, after, beforeMax, afterMax, ok, versions)
}

// runPolicy starts an in-process cluster (3-member store, vcsim with 8
// hosts, a worker per host over HTTP) on a shipped policy, optionally with
// its text changed.
func runPolicy(t *testing.T, cfg local.Config, edit func(string) string) (*local.System, *outcomeLog, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	outs := &outcomeLog{refs: map[string]map[lcc.PolicyRef]int{}}
	cfg.Observer = outs.observe
	cfg.Logger = zerolog.Nop()
	if cfg.MigrateTime == 0 {
		cfg.MigrateTime = 300 * time.Millisecond
	}
	cfg.Interval = 500 * time.Millisecond
	if edit != nil {
		text, err := policies.Source(cfg.Policy)
		if err != nil {
			t.Fatal(err)
		}
		cfg.PolicyText = []byte(edit(string(text)))
	}
	l, err := local.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l, outs, ctx
}

func (o *outcomeLog) checkOneVersion(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for iid, refs := range o.refs {
		if len(refs) != 1 {
			t.Errorf("invariant 4: interaction %s ran on %d versions", iid, len(refs))
		}
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestFirstFitEndToEnd(t *testing.T) {
	l, outs, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 48, Seed: 3, Policy: "first-fit"}, nil)
	inv, _ := l.VS.Inventory(ctx)
	before, _ := stddev(inv)
	waitUntil(t, 90*time.Second, "first-fit to move VMs and settle", func() bool {
		return len(l.Sim.Relocations()) > 0 && l.Quiet(ctx)
	})
	time.Sleep(3 * time.Second)
	inv, _ = l.VS.Inventory(ctx)
	after, mx := stddev(inv)
	if after >= before {
		t.Errorf("first-fit did not lower the imbalance: %.3f -> %.3f", before, after)
	}
	checkRelocations(t, l.Sim.Relocations(), 4, 0.7)
	outs.checkOneVersion(t)
	t.Logf("first-fit: imbalance %.3f -> %.3f, max %.2f, %d migrations", before, after, mx, len(l.Sim.Relocations()))
}

func TestConsolidateEmptiesAHost(t *testing.T) {
	// low utilisation, evenly spread: every host is nearly empty
	l, outs, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 16, Seed: 4, Policy: "consolidate", Skew: 0.25, Utilisation: 0.25}, func(s string) string {
		return strings.Replace(s, "param(low_load, 0.3).", "param(low_load, 0.22).", 1)
	})
	var standby []string
	waitUntil(t, 120*time.Second, "a host emptied into maintenance", func() bool {
		inv, err := l.VS.Inventory(ctx)
		if err != nil {
			return false
		}
		standby = nil
		for _, h := range inv.Hosts {
			if h.InMaintenance {
				standby = append(standby, h.Name)
				if n := len(inv.VMsOn(h.ID)); n != 0 {
					t.Fatalf("host %s entered maintenance with %d VMs", h.Name, n)
				}
			}
		}
		return len(standby) > 0
	})
	checkRelocations(t, l.Sim.Relocations(), 4, 0.7)
	outs.checkOneVersion(t)
	// no VM moved back and forth: never to a host it had left
	moved := map[string][]string{}
	for _, r := range l.Sim.Relocations() {
		if r.Result == "success" {
			moved[r.VM] = append(moved[r.VM], r.From+">"+r.To)
		}
	}
	for vm, path := range moved {
		seen := map[string]bool{}
		for _, step := range path {
			from, to, _ := strings.Cut(step, ">")
			seen[from] = true
			if seen[to] {
				t.Errorf("VM %s went back to %s: %v", vm, to, path)
			}
		}
	}
	t.Logf("consolidate: %v in standby after %d migrations", standby, len(l.Sim.Relocations()))
}

func TestEvacuateDrainsAHost(t *testing.T) {
	l, outs, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 32, Seed: 5, Policy: "evacuate", Skew: 0.25, Utilisation: 0.3}, nil)
	target := l.Sim.Layout.Hosts[2].Name
	if _, err := l.Store.Drain(ctx, target, "test", true); err != nil {
		t.Fatal(err)
	}
	var inv *vsphere.Inventory
	waitUntil(t, 120*time.Second, target+" drained into maintenance", func() bool {
		var err error
		inv, err = l.VS.Inventory(ctx)
		if err != nil {
			return false
		}
		h, _ := inv.Host(target)
		return h.InMaintenance && len(inv.VMsOn(h.ID)) == 0
	})
	if len(inv.VMs) != 32 {
		t.Errorf("%d VMs after the drain, want 32", len(inv.VMs))
	}
	// the worker reports "drained" just after vCenter shows maintenance mode
	var last string
	waitUntil(t, 30*time.Second, "the host list to say drained", func() bool {
		hs, err := l.Store.Hosts(ctx, false)
		if err != nil {
			return false
		}
		for _, h := range hs {
			if h.Name == target {
				last = fmt.Sprintf("%+v", h)
				return h.State == "drained" && h.VMsLeft == 0
			}
		}
		return false
	})
	t.Logf("host list: %s", last)
	checkRelocations(t, l.Sim.Relocations(), 4, 0.7)
	outs.checkOneVersion(t)
}

// TestEvacuateBlockedWhenNoRoom: with a high threshold no peer can meet,
// the drain reports blocked with its reason and leaves the VMs in place.
func TestEvacuateBlockedWhenNoRoom(t *testing.T) {
	l, _, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 32, Seed: 5, Policy: "evacuate", Skew: 0.25, Utilisation: 0.3}, func(s string) string {
		return strings.Replace(s, "param(high_load, 0.7).", "param(high_load, 0.01).", 1)
	})
	target := l.Sim.Layout.Hosts[2].Name
	before, _ := l.VS.Inventory(ctx)
	h0, _ := before.Host(target)
	if _, err := l.Store.Drain(ctx, target, "test", true); err != nil {
		t.Fatal(err)
	}
	var state, reason string
	waitUntil(t, 60*time.Second, "a blocked report", func() bool {
		hs, err := l.Store.Hosts(ctx, false)
		if err != nil {
			return false
		}
		for _, h := range hs {
			if h.Name == target {
				state, reason = h.State, h.Reason
			}
		}
		return state == "blocked"
	})
	if !strings.Contains(reason, "no_host_has_room") {
		t.Errorf("blocked without a reason that names the cause: %q", reason)
	}
	after, _ := l.VS.Inventory(ctx)
	h1, _ := after.Host(target)
	if len(after.VMsOn(h1.ID)) != len(before.VMsOn(h0.ID)) || h1.InMaintenance || len(l.Sim.Relocations()) != 0 {
		t.Errorf("a blocked drain moved VMs or entered maintenance")
	}
	// withdrawing the drain is recorded
	if _, err := l.Store.Drain(ctx, target, "test", false); err != nil {
		t.Fatal(err)
	}
}

// TestDrainWhileTheFleetBalances: workers that follow balance (not
// evacuate) still empty a host an operator drains: every worker follows
// evacuate for its own host while it is drained, before its list.
func TestDrainWhileTheFleetBalances(t *testing.T) {
	l, outs, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 32, Seed: 5, Policy: "balance", Skew: 0.25, Utilisation: 0.3}, nil)
	target := l.Sim.Layout.Hosts[2].Name
	if _, err := l.Store.Drain(ctx, target, "test", true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 120*time.Second, target+" drained into maintenance while the fleet follows balance", func() bool {
		inv, err := l.VS.Inventory(ctx)
		if err != nil {
			return false
		}
		h, _ := inv.Host(target)
		return h.InMaintenance && len(inv.VMsOn(h.ID)) == 0
	})
	// the moves off the drained host were made under evacuate
	js, err := l.Store.Journal(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	evacuated := 0
	for _, e := range js {
		if e.Kind == "migration" && e.Outcome == "success" && e.From == target {
			if e.Policy != "evacuate" {
				t.Errorf("%s left the drained host under %s", e.VM, e.Policy)
			}
			evacuated++
		}
	}
	if evacuated == 0 {
		t.Error("no migration off the drained host was journaled")
	}
	checkRelocations(t, l.Sim.Relocations(), 4, 0.7)
	outs.checkOneVersion(t)
}

// TestPolicyListComposes: a fleet on "balance,consolidate" balances an
// overloaded datacentre; consolidation waits for the fleet to be calm, so
// no VM moves back within its cool-down.
func TestPolicyListComposes(t *testing.T) {
	l, outs, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 48, Seed: 3, Policy: "balance,consolidate"}, nil)
	inv0, _ := l.VS.Inventory(ctx)
	before := vsphere.CPULoadStats(inv0.Hosts)
	waitUntil(t, 90*time.Second, "the fleet to balance", func() bool {
		inv, err := l.VS.Inventory(ctx)
		return err == nil && vsphere.CPULoadStats(inv.Hosts).Max <= 0.75 && len(l.Sim.Relocations()) > 0
	})
	time.Sleep(5 * time.Second) // consolidation may act now that the fleet is calm
	seen := map[string][]string{}
	for _, r := range l.Sim.Relocations() {
		if r.Result != "success" {
			continue
		}
		for _, prev := range seen[r.VM] {
			if prev == r.To {
				t.Errorf("%s moved back to %s", r.VM, r.To)
			}
		}
		seen[r.VM] = append(seen[r.VM], r.From)
	}
	inv1, _ := l.VS.Inventory(ctx)
	after := vsphere.CPULoadStats(inv1.Hosts)
	if after.StdDev >= before.StdDev {
		t.Errorf("imbalance %.3f -> %.3f", before.StdDev, after.StdDev)
	}
	outs.checkOneVersion(t)
}

// TestMigrationsGiveBackTheTargetsReservation: once a migration is over,
// the room its target reserved is given back at once, not when the
// reservation expires (lease_ttl, 30 s). The store lets the migrating
// worker release the target's reservation only while it holds the VM's
// lease; released the other way round, the release was refused and the
// target declined every offer until expiry (real store, TLS and worker
// tokens).
func TestMigrationsGiveBackTheTargetsReservation(t *testing.T) {
	l, _, ctx := runPolicy(t, local.Config{Hosts: 4, VMs: 16, Seed: 7, Skew: 0.25, Utilisation: 0.3}, nil)
	waitUntil(t, 90*time.Second, "a migration done and none in flight", func() bool {
		return len(l.Sim.Relocations()) > 0 && l.Quiet(ctx)
	})
	held := func() []string {
		ls, err := l.Store.Leases(ctx, "reserve/", false)
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, x := range ls {
			if x.State == "held" {
				out = append(out, x.Key)
			}
		}
		return out
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(held()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("reservations still held 5 s after the migrations ended: %v", held())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
