package vsphere_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

func ptr[T any](v T) *T { return &v }

// TestSimulatorFaultsAsVCenterShowsThem: each fault of the simulator's
// control API reaches the client as vCenter's would: a failed relocation
// ends with its task in error and the named fault, the VM where it was; a
// stalled one sits at a fixed progress until cancelled; an outage fails
// calls (refuse) or leaves them unanswered until the caller's deadline
// (hang); expired sessions are logged in again; latency slows every call.
func TestSimulatorFaultsAsVCenterShowsThem(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 2, VMs: 4, Seed: 5, MigrateTime: 400 * time.Millisecond})
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vm := inv.VMs[0]
	other := inv.Hosts[0]
	if other.ID == vm.Host {
		other = inv.Hosts[1]
	}

	if _, err := s.SetFaults(sim.FaultChange{RelocateFailRate: ptr(1.5)}); err == nil {
		t.Fatal("a fail rate of 1.5 was taken")
	}
	if _, err := s.SetFaults(sim.FaultChange{RelocateFault: ptr("NoSuchFault")}); err == nil {
		t.Fatal("an unknown fault name was taken")
	}
	if f := s.Faults(); f != (sim.Faults{Outage: sim.OutageNone}) {
		t.Fatalf("refused changes changed the faults: %+v", f)
	}

	// every relocation fails
	if _, err := s.SetFaults(sim.FaultChange{RelocateFailRate: ptr(1.0)}); err != nil {
		t.Fatal(err)
	}
	err = c.Migrate(ctx, vm.ID, other.ID, nil)
	var me *vsphere.MigrateError
	if !errors.As(err, &me) || me.Fault != "InsufficientResourcesFault" {
		t.Fatalf("a failing relocation: %v (fault %q), want InsufficientResourcesFault", err, faultOf(me))
	}
	if st, _ := c.VMState(ctx, vm.ID); st.Host != vm.Host || st.Running {
		t.Fatalf("after a failed relocation the VM is on %s (running %v), want %s", st.Host, st.Running, vm.Host)
	}

	// every relocation stalls: progress stops, and a cancel ends it
	if _, err := s.SetFaults(sim.FaultChange{RelocateFailRate: ptr(0.0), RelocateStallRate: ptr(1.0)}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = c.Migrate(sctx, vm.ID, other.ID, func(p int) { mu.Lock(); seen = append(seen, p); mu.Unlock() })
	cancel()
	if !errors.Is(err, vsphere.ErrCancelled) {
		t.Fatalf("a stalled relocation given up on: %v, want cancelled", err)
	}
	mu.Lock()
	if len(seen) == 0 || seen[len(seen)-1] != 37 {
		t.Fatalf("a stalled relocation's progress: %v, want it stuck at 37", seen)
	}
	mu.Unlock()
	rs := s.Relocations()
	if last := rs[len(rs)-1]; last.Result != "cancelled" || rs[len(rs)-2].Result != "InsufficientResourcesFault" {
		t.Fatalf("relocation record: %+v", rs)
	}
	s.ClearFaults()

	// refuse: calls fail at once; hang: calls wait for the caller's deadline
	s.SetFaults(sim.FaultChange{Outage: ptr(sim.OutageRefuse)})
	if _, err := c.Inventory(ctx); err == nil {
		t.Fatal("an inventory read during a refusing outage succeeded")
	}
	s.SetFaults(sim.FaultChange{Outage: ptr(sim.OutageHang)})
	hctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, err = c.Inventory(hctx)
	cancel()
	if err == nil || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("an inventory read during a hang: %v after %v, want a timeout at the deadline", err, time.Since(start))
	}
	// a call that hangs is answered once the outage ends
	got := make(chan error, 1)
	go func() { _, err := c.Inventory(ctx); got <- err }()
	time.Sleep(200 * time.Millisecond)
	s.SetFaults(sim.FaultChange{Outage: ptr(sim.OutageNone)})
	if err := <-got; err != nil {
		t.Fatalf("a hung call after the outage ended: %v", err)
	}

	// expired sessions: the client logs in again
	key, _ := c.SessionKey(ctx)
	s.SetFaults(sim.FaultChange{ExpireSessions: true})
	if _, err := c.Inventory(ctx); err != nil {
		t.Fatalf("inventory after every session expired: %v", err)
	}
	if key2, _ := c.SessionKey(ctx); key2 == key {
		t.Fatal("expire_sessions left the client's session alive")
	}

	// latency on every call
	s.SetFaults(sim.FaultChange{LatencyMS: ptr(200)})
	start = time.Now()
	if _, err := c.VMState(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("a call with 200 ms of latency took %v", d)
	}
	if f := s.ClearFaults(); f != (sim.Faults{Outage: sim.OutageNone}) {
		t.Fatalf("after DELETE /faults: %+v", f)
	}
}

func faultOf(me *vsphere.MigrateError) string {
	if me == nil {
		return ""
	}
	return me.Fault
}
