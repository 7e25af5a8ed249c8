package vsphere_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// TestWatchedFollowsChangesWithoutReading: a Watched client's inventory
// follows a demand change on its host and a VM leaving it through
// WaitForUpdatesEx alone (the simulator counts no container view and no
// retrieval for them); a change on another host costs its watch nothing;
// when its session is ended from outside, it reads directly and then
// watches again.
func TestWatchedFollowsChangesWithoutReading(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 3, VMs: 9, Seed: 5, MigrateTime: 100 * time.Millisecond})
	ctx := ctxT(t)
	inv0, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, other := inv0.Hosts[0], inv0.Hosts[1]
	mine, theirs := inv0.VMsOn(host.ID), inv0.VMsOn(other.ID)
	if len(mine) < 2 || len(theirs) == 0 {
		t.Fatalf("layout: %d VMs on %s, %d on %s", len(mine), host.Name, len(theirs), other.Name)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := vsphere.NewWatched(wctx, c, host.Name, time.Hour) // no second whole read in this test
	defer func() { cancel(); <-w.Done() }()
	waitFor := func(what string, ok func(inv *vsphere.Inventory) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if inv, err := w.Inventory(ctx); err == nil && ok(inv) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the watched inventory never showed %s", what)
	}
	vm := mine[0]
	waitFor("the first inventory", func(inv *vsphere.Inventory) bool { return len(inv.VMs) == 9 })
	time.Sleep(200 * time.Millisecond) // let the first wait be under way
	before := s.APIStats()
	if err := s.SetDemand(vm.Name, vm.CPUDemandMHz+1234, vm.MemMB); err != nil {
		t.Fatal(err)
	}
	waitFor("the demand change", func(inv *vsphere.Inventory) bool {
		v, ok := inv.VM(vm.Name)
		return ok && v.CPUDemandMHz == vm.CPUDemandMHz+1234
	})
	// the wait that carried the change was counted when it arrived, maybe
	// before "before": the next one follows it at once
	after := s.APIStats()
	for deadline := time.Now().Add(3 * time.Second); after.ByMethod["WaitForUpdatesEx"] == before.ByMethod["WaitForUpdatesEx"] && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after = s.APIStats()
	}
	for _, m := range []string{"CreateContainerView", "RetrievePropertiesEx"} {
		if n := after.ByMethod[m] - before.ByMethod[m]; n != 0 {
			t.Errorf("following a change cost %d %s calls, want none", n, m)
		}
	}
	if after.ByMethod["WaitForUpdatesEx"] == before.ByMethod["WaitForUpdatesEx"] {
		t.Error("no WaitForUpdatesEx was answered")
	}

	// a change on another host: nothing for this watch
	if err := s.SetDemand(theirs[0].Name, theirs[0].CPUDemandMHz+99, theirs[0].MemMB); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if quiet := s.APIStats(); quiet.Objects != after.Objects {
		t.Errorf("a change on another host sent this watch %d objects", quiet.Objects-after.Objects)
	}

	// a VM leaves the host: the watch says where it went
	leaving := mine[1]
	if err := c.Migrate(ctx, leaving.ID, other.ID, nil); err != nil {
		t.Fatal(err)
	}
	waitFor("the VM on its new host", func(inv *vsphere.Inventory) bool {
		v, ok := inv.VM(leaving.Name)
		return ok && v.Host == other.ID && len(inv.VMsOn(host.ID)) == len(mine)-1
	})

	// end the session from outside: the watch fails, the client logs in again
	key, err := c.SessionKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := govmomi.NewClient(ctx, s.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Logout(ctx)
	if _, err := methods.TerminateSession(ctx, admin.Client, &types.TerminateSession{This: *admin.Client.ServiceContent.SessionManager, SessionId: []string{key}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDemand(vm.Name, vm.CPUDemandMHz+4321, vm.MemMB); err != nil {
		t.Fatal(err)
	}
	waitFor("a change made after the session ended", func(inv *vsphere.Inventory) bool {
		v, ok := inv.VM(vm.Name)
		return ok && v.CPUDemandMHz == vm.CPUDemandMHz+4321
	})
	if key2, _ := c.SessionKey(ctx); key2 == key {
		t.Error("the client did not log in again")
	}
}

// TestWatchedSurvivesQuiet: a wait that ends without news (MaxWaitSeconds)
// waits again on the same filter; the watch is not torn down and opened
// again, and no whole inventory is read for it.
func TestWatchedSurvivesQuiet(t *testing.T) {
	defer vsphere.SetWatchMaxWait(1)()
	s, c := newSim(t, sim.Config{Hosts: 2, VMs: 4, Seed: 6}) // no drift: nothing changes
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := vsphere.NewWatched(wctx, c, inv.Hosts[0].Name, time.Hour)
	defer func() { cancel(); <-w.Done() }()
	time.Sleep(500 * time.Millisecond)
	before := s.APIStats()
	time.Sleep(3500 * time.Millisecond)
	after := s.APIStats()
	if n := after.ByMethod["WaitForUpdatesEx"] - before.ByMethod["WaitForUpdatesEx"]; n < 2 {
		t.Fatalf("%d waits in 3.5 s at one second each", n)
	}
	for _, m := range []string{"CreateFilter", "CreatePropertyCollector", "CreateContainerView"} {
		if n := after.ByMethod[m] - before.ByMethod[m]; n != 0 {
			t.Errorf("a quiet watch called %s %d times: it was torn down and opened again", m, n)
		}
	}
	if _, err := w.Inventory(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWatchedTakesPeersFromReports: while its peers' hosts are reported
// (SetPeers, as workers report them through the store), a Watched client
// shows the reported figures and reads no whole inventory when FullEvery
// passes; a report naming a host the whole read lacks, or reports that
// stop, bring whole reads back.
func TestWatchedTakesPeersFromReports(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 3, VMs: 6, Seed: 7})
	ctx := ctxT(t)
	inv0, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, peer := inv0.Hosts[0], inv0.Hosts[1]
	wctx, cancel := context.WithCancel(ctx)
	const every = 600 * time.Millisecond
	w := vsphere.NewWatched(wctx, c, host.Name, every)
	defer func() { cancel(); <-w.Done() }()
	reported := peer
	reported.CPUUsedMHz, reported.MemUsedMB = 4321, 1234
	report := func(hosts ...vsphere.Host) { w.SetPeers(hosts, time.Now()) }
	report(reported)
	deadline := time.Now().Add(15 * time.Second)
	for {
		inv, err := w.Inventory(ctx)
		if err == nil {
			if h, _ := inv.Host(peer.Name); h.CPUUsedMHz == 4321 && h.MemUsedMB == 1234 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reported load never showed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reads := func() int64 { return s.APIStats().ByMethod["CreateContainerView"] }
	before := reads()
	for range 8 { // 2.4 s: four times FullEvery
		report(reported)
		if _, err := w.Inventory(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(every / 2)
	}
	if n := reads() - before; n != 0 {
		t.Errorf("%d whole reads while every peer was reported, want none", n)
	}

	// a report names a host the whole read does not have: read again
	before = reads()
	report(reported, vsphere.Host{Name: "host-new", ConnectionState: "connected", CPUCapacityMHz: 1000})
	if _, err := w.Inventory(ctx); err != nil {
		t.Fatal(err)
	}
	if n := reads() - before; n != 1 {
		t.Errorf("%d whole reads after a report named an unknown host, want 1", n)
	}

	// reports stop: the whole read is the fresher, and is read every FullEvery
	time.Sleep(every + 100*time.Millisecond)
	before = reads()
	inv, err := w.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := reads() - before; n != 1 {
		t.Errorf("%d whole reads after the reports stopped, want 1", n)
	}
	if h, _ := inv.Host(peer.Name); h.CPUUsedMHz == 4321 {
		t.Error("a report older than FullEvery still overrides the whole read")
	}
}

// TestWatchedHostUnderChangeDoesNotHangTheSimulator: host watches (a
// filter rooted at the host, following its vm property) while the host's
// load changes as fast as the simulator can publish it. vcsim's
// AtomicUpdate told the watchers with the host's lock held while
// WaitForUpdatesEx, holding the filter's lock, collected and wanted the
// host's: the simulator hung for good (the fleet test and the dashboard's
// demo stopped in CI). Every call must still be answered.
func TestWatchedHostUnderChangeDoesNotHangTheSimulator(t *testing.T) {
	// not newSim: a simulator that hangs would hang its Close, and the test
	// with it, rather than fail
	s, err := sim.New(sim.Config{Hosts: 2, VMs: 8, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := vsphere.Connect(context.Background(), vsphere.Config{URL: s.URL().String(), User: "parley", Password: "x", Thumbprint: s.Thumbprint()}, zerolog.Nop())
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	hung := true
	defer func() {
		if !hung {
			c.Close()
			s.Close()
		}
	}()
	ctx := ctxT(t)
	inv0, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host := inv0.Hosts[0]
	mine := inv0.VMsOn(host.ID)
	if len(mine) < 2 {
		t.Fatalf("layout: %d VMs on %s", len(mine), host.Name)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := 0; i < 3; i++ { // three watchers, as three workers' views of one host
		w := vsphere.NewWatched(wctx, c, host.Name, time.Hour)
		defer func() {
			if !hung {
				cancel()
				<-w.Done()
			}
		}()
	}
	stop := time.Now().Add(3 * time.Second)
	done := make(chan error, 2)
	for g := 0; g < 2; g++ {
		go func(vm vsphere.VM) {
			for n := int64(1); time.Now().Before(stop); n++ {
				if err := s.SetDemand(vm.Name, vm.CPUDemandMHz+n%97, vm.MemMB); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}(mine[g])
	}
	for g := 0; g < 2; g++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a demand change was not published in 20 s: the simulator hangs")
		}
	}
	rctx, cancelR := context.WithTimeout(ctx, 20*time.Second)
	defer cancelR()
	if _, err := c.Inventory(rctx); err != nil {
		t.Fatalf("after the changes the simulator did not answer: %v", err)
	}
	hung = false
}
