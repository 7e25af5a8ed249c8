package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/vsphere"
)

// The in-memory store (raftstore.Mem, the real state machine without Raft
// or HTTP) stands in for the store here, and fakeDC for vCenter.
var (
	_ Store   = (*raftstore.Mem)(nil)
	_ Store   = (*raftstore.Client)(nil)
	_ VSphere = (*vsphere.Client)(nil)
)

// fakeDC stands in for vCenter: a fixed inventory, and Migrate and
// VMState calls counted.
type fakeDC struct {
	inv      *vsphere.Inventory
	migrated []string
	running  map[string]bool
}

func (f *fakeDC) Inventory(context.Context) (*vsphere.Inventory, error) { return f.inv, nil }
func (f *fakeDC) Migrate(_ context.Context, vmID, hostID string, _ vsphere.Progress) error {
	f.migrated = append(f.migrated, vmID+"->"+hostID)
	return nil
}
func (f *fakeDC) VMState(_ context.Context, vmID string) (vsphere.TaskState, error) {
	for _, v := range f.inv.VMs {
		if v.ID == vmID {
			return vsphere.TaskState{Host: v.Host, Running: f.running[vmID]}, nil
		}
	}
	return vsphere.TaskState{}, vsphere.ErrNotFound
}
func (f *fakeDC) SetMaintenance(context.Context, string, bool) error { return nil }

func newTestDC() *fakeDC {
	return &fakeDC{running: map[string]bool{}, inv: &vsphere.Inventory{
		Hosts: []vsphere.Host{{ID: "host-1", Name: "h1", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000},
			{ID: "host-2", Name: "h2", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000}},
		VMs: []vsphere.VM{{ID: "vm-1", Name: "web1", Host: "host-1", PowerState: "poweredOn", CPUDemandMHz: 1000, MemMB: 1000}},
	}}
}

// TestReconcileReleasesLeasesFromBeforeARestart: leases a crashed worker
// held for a migration that is no longer running are released and
// journaled when it starts again; another worker's leases are left alone.
func TestReconcileReleasesLeasesFromBeforeARestart(t *testing.T) {
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	mine, err := st.Acquire(ctx, raftstore.AcquireRequest{Holder: "w1", TTLMillis: 60000, Items: []raftstore.AcquireItem{
		{Key: "vm/web1"}, {Key: "host/h1/slot/", AnyOf: 4}, {Key: "host/h2/slot/", AnyOf: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Acquire(ctx, raftstore.AcquireRequest{Holder: "w2", TTLMillis: 60000, Items: []raftstore.AcquireItem{{Key: "vm/db1"}}}); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop()}, newTestDC(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	ls, _ := st.Leases(ctx, "", false)
	if len(ls) != 1 || ls[0].Key != "vm/db1" {
		t.Fatalf("after reconcile: %+v (w1's token was %d)", ls, mine.Token)
	}
	js, _ := st.Journal(ctx, 0, 10)
	if len(js) != 1 || js[0].Kind != "reconcile" || js[0].VM != "web1" || js[0].Outcome != "released" {
		t.Fatalf("journal: %+v", js)
	}
}

// TestMigrateOfAnUnknownVMMovesNothingAndReleases: a migrate/4 naming a VM
// vCenter does not have never reaches vCenter (no relocation with an empty
// id); the leases and the reservation taken for it are given back at once
// and the failure is journaled.
func TestMigrateOfAnUnknownVMMovesNothingAndReleases(t *testing.T) {
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	dc := newTestDC()
	w, g := migrateGoal(t, st, dc, "ghost", "i-1", nil)
	ok, err := w.cMigrate(ctx, g)
	if ok || err != nil {
		t.Fatalf("migrate of an unknown VM: ok=%v err=%v", ok, err)
	}
	if len(dc.migrated) != 0 {
		t.Fatalf("vCenter was asked to relocate: %v", dc.migrated)
	}
	if ls, _ := st.Leases(ctx, "", false); len(ls) != 0 {
		t.Fatalf("leases left held: %+v", ls)
	}
	js, _ := st.Journal(ctx, 0, 10)
	if len(js) != 1 || js[0].Outcome != "failed" || js[0].VM != "ghost" || js[0].Interaction != "i-1" {
		t.Fatalf("journal: %+v", js)
	}
	// and a migrate/4 without a VM name is refused outright
	g.Args[0] = lcc.NewRef("VM")
	if ok, err := w.cMigrate(ctx, g); ok || err == nil {
		t.Fatalf("migrate with an unbound VM: ok=%v err=%v", ok, err)
	}
}

// observingWorker is worker w1 on host, having observed its host and
// listed its peers once, as its first tick would.
func observingWorker(t *testing.T, host string, vs VSphere, st Store) *Worker {
	t.Helper()
	if m, ok := st.(*raftstore.Mem); ok {
		st = m.AsWorker("w1") // the store decides w1's rules, as for w1's token
	}
	w, err := New(Config{ID: "w1", Host: host, Logger: zerolog.Nop()}, vs, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if err := w.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.readRoster(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestMigrateOfAVMThatLeftTheHostMovesNothing: the worker offered a VM
// from its last view of its host, but vCenter has it elsewhere now (this
// worker moved it in an earlier negotiation, with no cool-down to stop a
// second offer): nothing is relocated, the leases are released, and the
// journal says it was skipped, not failed. Either the worker's view still
// has the VM on its host, or it has lost it (a watched inventory drops a
// VM that left the host until its next whole read: the worker reads
// again). (fakeDC stands in for vCenter.)
func TestMigrateOfAVMThatLeftTheHostMovesNothing(t *testing.T) {
	for _, viewLostIt := range []bool{false, true} {
		ctx := context.Background()
		st := raftstore.NewMem(raftstore.Config{})
		dc := newTestDC()
		w, g := migrateGoal(t, st, dc, "web1", "i-2", func() {
			// vCenter moves web1 after the worker's last look
			vms := append([]vsphere.VM(nil), dc.inv.VMs...)
			vms[0].Host = "host-2"
			dc.inv = &vsphere.Inventory{Hosts: dc.inv.Hosts, VMs: vms}
		})
		if viewLostIt {
			w.mu.Lock()
			w.inv = &vsphere.Inventory{Hosts: dc.inv.Hosts, VMs: dc.inv.VMs[1:]} // the view without web1
			w.mu.Unlock()
		}
		if ok, err := w.cMigrate(ctx, g); ok || err != nil {
			t.Fatalf("view lost it %v: migrate of a VM that left the host: ok=%v err=%v", viewLostIt, ok, err)
		}
		if len(dc.migrated) != 0 {
			t.Fatalf("view lost it %v: vCenter was asked to relocate: %v", viewLostIt, dc.migrated)
		}
		if ls, _ := st.Leases(ctx, "", false); len(ls) != 0 {
			t.Fatalf("view lost it %v: leases left held: %+v", viewLostIt, ls)
		}
		js, _ := st.Journal(ctx, 0, 10)
		if len(js) != 1 || js[0].Outcome != "skipped" || !strings.Contains(js[0].Reason, "not on this host") {
			t.Fatalf("view lost it %v: journal: %+v", viewLostIt, js)
		}
	}
}

// migrateGoal sets up a migrate/4 of vm from w1 (on h1) to w2: both
// workers live, w2's reservation and w1's leases taken, as the
// negotiation leaves them. move, if set, changes vCenter after w1 has
// looked.
func migrateGoal(t *testing.T, st Store, dc VSphere, vm, iid string, move func()) (*Worker, *lcc.Goal) {
	t.Helper()
	ctx := context.Background()
	for _, hb := range []raftstore.HeartbeatRequest{{ID: "w1", Host: "h1"}, {ID: "w2", Host: "h2"}} {
		if _, err := st.Heartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	w := observingWorker(t, "h1", dc, st)
	if move != nil {
		move()
	}
	res, err := st.Acquire(ctx, raftstore.AcquireRequest{Holder: "w2", TTLMillis: 60000, Items: []raftstore.AcquireItem{{Key: "reserve/h2/" + vm}}})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := st.Acquire(ctx, raftstore.AcquireRequest{Holder: "w1", TTLMillis: 60000, Items: []raftstore.AcquireItem{{Key: "vm/" + vm}, {Key: "host/h1/slot/", AnyOf: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	prog, diags, err := lcc.Compile("p", []byte("r(a, initial)\na(a, X) :: null.\nparam(cooldown, 0).\n"), lcc.PolicyRef{Name: "p", Version: 1}, nil)
	if err != nil {
		t.Fatal(diags)
	}
	return w, &lcc.Goal{Program: prog, Interaction: iid, Policy: prog.Ref, Args: []lcc.Term{
		lcc.A(vm), lcc.A("w2"),
		lcc.C("res", lcc.A("w2"), lcc.I(int64(res.Token)), lcc.S("reserve/h2/"+vm)),
		lcc.C("lease", lcc.I(int64(lease.Token)), keysTerm(lease.Keys)),
	}}
}

// TestMigrationGivesBackTheTargetsReservation: after a relocation, the
// migrating worker gives back its target's reservation and its own
// leases (the test policy has no cool-down). The store lets w1 release
// w2's reservation only while w1 holds the VM's lease: Mem, bound to w1,
// decides that in the state machine as a member does for w1's token, so
// giving the VM's lease back first leaves the reservation held here (it
// was caught only end to end before, bec0a29).
func TestMigrationGivesBackTheTargetsReservation(t *testing.T) {
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	dc := newTestDC()
	w, g := migrateGoal(t, st, dc, "web1", "i-3", nil)
	if ok, err := w.cMigrate(ctx, g); !ok || err != nil {
		t.Fatalf("migrate: ok=%v err=%v", ok, err)
	}
	if len(dc.migrated) != 1 {
		t.Fatalf("relocations: %v", dc.migrated)
	}
	ls, _ := st.Leases(ctx, "", false)
	if len(ls) != 0 {
		t.Fatalf("leases after the migration: %+v, want none (the policy's cool-down is 0)", ls)
	}
}

// TestAVMMovedWithNoCoolDownStaysPutForThePoliciesFollowed: a VM moved by
// a policy with no cool-down (evacuate's is 0) is marked cooling down for
// the longest cool-down of the policies its mover follows (balance's 60
// s), so that balance does not move it again at once (the fleet test saw
// a VM evacuated and then balanced away 5 s later). (raftstore.Mem stands
// in for the store, fakeDC for vCenter.)
func TestAVMMovedWithNoCoolDownStaysPutForThePoliciesFollowed(t *testing.T) {
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	dc := newTestDC()
	w, g := migrateGoal(t, st, dc, "web1", "i-4", nil)
	followed, diags, err := lcc.Compile("b", []byte("r(a, initial)\na(a, X) :: null.\nparam(cooldown, 60).\n"), lcc.PolicyRef{Name: "b", Version: 1, Hash: "b1"}, nil)
	if err != nil {
		t.Fatal(diags)
	}
	w.mu.Lock()
	w.programs[followed.Ref.Hash], w.following["b"] = followed, followed.Ref
	w.mu.Unlock()
	start := time.Now()
	if ok, err := w.cMigrate(ctx, g); !ok || err != nil {
		t.Fatalf("migrate: ok=%v err=%v", ok, err)
	}
	ls, _ := st.Leases(ctx, api.CoolKey("web1"), false)
	if len(ls) != 1 {
		t.Fatalf("cool-down marks after the migration: %+v, want one", ls)
	}
	if left := time.Unix(0, ls[0].Expiry).Sub(start); left < 55*time.Second || left > 65*time.Second {
		t.Fatalf("the mark lasts %s, want the followed policy's 60 s", left)
	}
}

// TestStatusAnswersAndTheWorkerGoesOn: a status request (the dashboard's
// fleet view, parley trace) answers, with the view's age, and leaves the
// worker able to observe again. status held the worker's lock while
// viewAge took it again: the first request stopped the worker for good.
// (raftstore.Mem stands in for the store, fakeDC for vCenter.)
func TestStatusAnswersAndTheWorkerGoesOn(t *testing.T) {
	st := raftstore.NewMem(raftstore.Config{})
	w := observingWorker(t, "h1", newTestDC(), st)
	done := make(chan Status, 1)
	go func() { done <- w.status() }()
	select {
	case s := <-done:
		if s.Host != "h1" || s.ViewAgeSeconds < 0 || len(s.VMs) != 1 {
			t.Fatalf("status: host %q, view age %v s, %d VMs; want h1, an age, 1 VM", s.Host, s.ViewAgeSeconds, len(s.VMs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("status did not answer in 10 s")
	}
	observed := make(chan error, 1)
	go func() { observed <- w.Observe(context.Background()) }()
	select {
	case err := <-observed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("after a status request the worker could not observe its host in 10 s")
	}
}

// TestNoLeasesForAPairThatFailedOfLate: a VM whose relocations to a target
// failed of late is not taken leases for there (take_leases fails, so the
// negotiation aborts and gives back the reservation): a failing pair cost
// leases and a "skipped" journal entry at every negotiation before.
// Another target still gets them. (raftstore.Mem stands in for the store,
// fakeDC for vCenter.)
func TestNoLeasesForAPairThatFailedOfLate(t *testing.T) {
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	dc := newTestDC()
	for _, hb := range []raftstore.HeartbeatRequest{{ID: "w1", Host: "h1"}, {ID: "w2", Host: "h2"}, {ID: "w3", Host: "h3"}} {
		if _, err := st.Heartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	w := observingWorker(t, "h1", dc, st)
	prog, diags, err := lcc.Compile("p", []byte("r(a, initial)\na(a, X) :: null.\n"), lcc.PolicyRef{Name: "p", Version: 1}, nil)
	if err != nil {
		t.Fatal(diags)
	}
	take := func(winner string) bool {
		g := &lcc.Goal{Program: prog, Interaction: "i-5", Policy: prog.Ref, Args: []lcc.Term{lcc.A("web1"), lcc.A(winner), lcc.NewRef("Res"), lcc.NewRef("Lease")}}
		ok, err := w.cTakeLeases(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	w.backoff.failed("web1", "h2", time.Now())
	if take("w2") {
		t.Fatal("leases taken to move web1 to h2, where its relocations failed of late")
	}
	if ls, _ := st.Leases(ctx, "", false); len(ls) != 0 {
		t.Fatalf("leases held after the refusal: %+v", ls)
	}
	if !take("w3") {
		t.Fatal("no leases to move web1 to h3, where nothing failed")
	}
}

// TestBestBidPutsAFailingPairLast: the bidder whose host this VM's
// relocations failed to reach of late loses to any other bidder, whatever
// its score, so that a negotiation does not award the VM to a pair that
// take_leases refuses, tick after tick; with no failure the best score
// wins. (raftstore.Mem stands in for the store, fakeDC for vCenter.)
func TestBestBidPutsAFailingPairLast(t *testing.T) {
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	for _, hb := range []raftstore.HeartbeatRequest{{ID: "w1", Host: "h1"}, {ID: "w2", Host: "h2"}, {ID: "w3", Host: "h3"}} {
		if _, err := st.Heartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	w := observingWorker(t, "h1", newTestDC(), st)
	w.mu.Lock()
	w.negotiating["web1"] = "i-6"
	w.mu.Unlock()
	winner := func() string {
		g := &lcc.Goal{Interaction: "i-6", Args: []lcc.Term{
			lcc.L(lcc.C("b", lcc.A("w2"), lcc.F(0.9)), lcc.C("b", lcc.A("w3"), lcc.F(0.5))), lcc.NewRef("W"), lcc.NewRef("L")}}
		if ok, err := w.cBestBid(ctx, g); !ok || err != nil {
			t.Fatalf("best_bid: ok=%v err=%v", ok, err)
		}
		name, _ := g.AtomName(1)
		return name
	}
	if got := winner(); got != "w2" {
		t.Fatalf("with no failure the winner is %s, want w2 (the best score)", got)
	}
	w.backoff.failed("web1", "h2", time.Now())
	if got := winner(); got != "w3" {
		t.Fatalf("with web1's relocations to h2 failing the winner is %s, want w3", got)
	}
}
