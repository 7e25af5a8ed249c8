package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// TestRegistryIsTheVocabulary: the worker implements every constraint of
// the vocabulary and registers nothing else.
func TestRegistryIsTheVocabulary(t *testing.T) {
	w, err := New(Config{ID: "w", Host: "h"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := w.Registry().Known()
	want := policies.Known()
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("vocabulary entry %s is not registered", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s is registered but not in the vocabulary", k)
		}
	}
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

// outcomeLog collects agent outcomes by interaction.
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
	l, err := StartLocal(ctx, LocalConfig{Hosts: 8, VMs: 48, Seed: 3, MigrateTime: 300 * time.Millisecond,
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
		if pushed && afterMax <= 0.7 && l.quiet(ctx) {
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

// quiet reports that no VM lease is held: no migration in flight.
func (l *Local) quiet(ctx context.Context) bool {
	ls, err := l.Store.Leases(ctx, "vm/", false)
	return err == nil && len(ls) == 0
}

func TestDryRunMovesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, LocalConfig{Hosts: 4, VMs: 16, Seed: 5, MigrateTime: 100 * time.Millisecond,
		Interval: 500 * time.Millisecond, Logger: zerolog.Nop(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		js, _ := l.Store.Journal(ctx, 0, 1000)
		for _, e := range js {
			if e.Kind == "would-migrate" {
				if n := len(l.Sim.Relocations()); n != 0 {
					t.Fatalf("dry run relocated %d VMs", n)
				}
				ls, _ := l.Store.Leases(ctx, "reserve/", false)
				if len(ls) != 0 {
					t.Fatalf("dry run reserved capacity: %+v", ls)
				}
				return
			}
		}
	}
	t.Fatal("no would-migrate entry in the journal")
}
