package vsphere_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// These tests run against the simulated datacentre in-process (vcsim with
// parley's strict handlers), through the package's public client API.

func newSim(t *testing.T, cfg sim.Config) (*sim.Sim, *vsphere.Client) {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c, err := vsphere.Connect(context.Background(), vsphere.Config{URL: s.URL().String(), User: "parley", Password: "x", Thumbprint: s.Thumbprint()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLayoutIsDeterministic(t *testing.T) {
	a := sim.Generate(8, 64, 42, 0.5, 0.45)
	b := sim.Generate(8, 64, 42, 0.5, 0.45)
	c := sim.Generate(8, 64, 43, 0.5, 0.45)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different layouts")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("different seeds, same layout")
	}
	onHot := 0
	for _, v := range a.VMs {
		if v.Host < 2 {
			onHot++
		}
	}
	if onHot < 20 || onHot > 44 {
		t.Errorf("%d of 64 VMs on the hot quarter, want about half", onHot)
	}
}

func TestInventoryMatchesLayout(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 4, VMs: 16, Seed: 7, MigrateTime: 50 * time.Millisecond})
	inv, err := c.Inventory(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Hosts) != 4 || len(inv.VMs) != 16 {
		t.Fatalf("%d hosts, %d VMs", len(inv.Hosts), len(inv.VMs))
	}
	for i, spec := range s.Layout.Hosts {
		h, ok := inv.Host(spec.Name)
		if !ok {
			t.Fatalf("no host %s", spec.Name)
		}
		if h.CPUCapacityMHz != spec.CPUCapacity() || h.MemCapacityMB != spec.MemMB || h.ConnectionState != "connected" || h.InMaintenance {
			t.Errorf("host %d: %+v, want %+v", i, h, spec)
		}
	}
	byName := map[string]vsphere.VM{}
	for _, v := range inv.VMs {
		byName[v.Name] = v
	}
	for _, spec := range s.Layout.VMs {
		v := byName[spec.Name]
		hostID, _ := s.ID(s.Layout.Hosts[spec.Host].Name)
		if v.Host != hostID || v.CPUDemandMHz != spec.CPUMHz || v.MemMB != spec.MemMB || v.PowerState != "poweredOn" {
			t.Errorf("VM %s: %+v, want %+v on %s", spec.Name, v, spec, hostID)
		}
	}
	checkLoadSums(t, inv)
}

// checkLoadSums: a host's use is the sum of its VMs' demand.
func checkLoadSums(t *testing.T, inv *vsphere.Inventory) {
	t.Helper()
	for _, h := range inv.Hosts {
		var cpu, mem int64
		for _, v := range inv.VMsOn(h.ID) {
			cpu += v.CPUDemandMHz
			mem += v.MemMB
		}
		if cpu != h.CPUUsedMHz || mem != h.MemUsedMB {
			t.Errorf("host %s: used %d MHz / %d MB, its VMs sum to %d / %d", h.Name, h.CPUUsedMHz, h.MemUsedMB, cpu, mem)
		}
	}
}

func TestMigrateKeepsLoadsConsistent(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 3, VMs: 6, Seed: 1, MigrateTime: 100 * time.Millisecond})
	ctx := ctxT(t)
	inv, _ := c.Inventory(ctx)
	vm := inv.VMs[0]
	var target vsphere.Host
	for _, h := range inv.Hosts {
		if h.ID != vm.Host {
			target = h
			break
		}
	}
	var seen []int
	var mu sync.Mutex
	if err := c.Migrate(ctx, vm.ID, target.ID, func(p int) { mu.Lock(); seen = append(seen, p); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	inv2, _ := c.Inventory(ctx)
	for _, v := range inv2.VMs {
		if v.ID == vm.ID && v.Host != target.ID {
			t.Fatalf("VM is on %s after migrating to %s", v.Host, target.ID)
		}
	}
	checkLoadSums(t, inv2)
	if err := s.SetDemand(vm.Name, 7777, 1234); err != nil {
		t.Fatal(err)
	}
	inv3, _ := c.Inventory(ctx)
	checkLoadSums(t, inv3)
	recs := s.Relocations()
	if len(recs) != 1 || recs[0].Result != "success" || recs[0].VM != vm.Name {
		t.Errorf("relocation record: %+v", recs)
	}
}

func TestMigrateTypedErrors(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 3, VMs: 3, Seed: 2, MigrateTime: 500 * time.Millisecond})
	ctx := ctxT(t)
	inv, _ := c.Inventory(ctx)
	vm := inv.VMs[0]
	var other []vsphere.Host
	for _, h := range inv.Hosts {
		if h.ID != vm.Host {
			other = append(other, h)
		}
	}
	// no such host: a fault on the call
	if err := c.Migrate(ctx, vm.ID, "host-99999", nil); !errors.Is(err, vsphere.ErrNotFound) {
		t.Errorf("unknown host: %v", err)
	}
	// no such VM
	if err := c.Migrate(ctx, "vm-99999", other[0].ID, nil); !errors.Is(err, vsphere.ErrNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
	// host in maintenance: a fault on the call
	if err := s.SetMaintenance(other[0].Name, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Migrate(ctx, vm.ID, other[0].ID, nil); !errors.Is(err, vsphere.ErrHostUnavailable) {
		t.Errorf("maintenance: %v", err)
	}
	s.SetMaintenance(other[0].Name, false)
	// disconnected host
	s.SetConnected(other[1].Name, false)
	if err := c.Migrate(ctx, vm.ID, other[1].ID, nil); !errors.Is(err, vsphere.ErrHostUnavailable) {
		t.Errorf("disconnected: %v", err)
	}
	s.SetConnected(other[1].Name, true)
	// a relocation already in flight
	done := make(chan error, 1)
	go func() { done <- c.Migrate(ctx, vm.ID, other[0].ID, nil) }()
	time.Sleep(100 * time.Millisecond)
	if err := c.Migrate(ctx, vm.ID, other[1].ID, nil); !errors.Is(err, vsphere.ErrTaskInProgress) {
		t.Errorf("in flight: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first migration: %v", err)
	}
	// the target enters maintenance while the task runs: the task fails
	go func() { done <- c.Migrate(ctx, vm.ID, other[1].ID, nil) }()
	time.Sleep(100 * time.Millisecond)
	s.SetMaintenance(other[1].Name, true)
	if err := <-done; !errors.Is(err, vsphere.ErrHostUnavailable) {
		t.Errorf("task failure: %v", err)
	}
	// timeout
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := c.Migrate(tctx, vm.ID, other[0].ID, nil); err == nil || !(errors.Is(err, vsphere.ErrTimeout) || errors.Is(err, vsphere.ErrTaskInProgress)) {
		t.Errorf("timeout: %v", err)
	}
}

func TestReloginAfterSessionEnds(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 2, VMs: 2, Seed: 3})
	ctx := ctxT(t)
	key, err := c.SessionKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := govmomi.NewClient(ctx, s.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := methods.TerminateSession(ctx, admin.Client, &types.TerminateSession{This: *admin.Client.ServiceContent.SessionManager, SessionId: []string{key}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Inventory(ctx); err != nil {
		t.Fatalf("inventory after the session ended: %v", err)
	}
	key2, _ := c.SessionKey(ctx)
	if key2 == key {
		t.Error("no new session was made")
	}
}

func TestWatchSeesMoveAndLoadChange(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 2, VMs: 2, Seed: 4, MigrateTime: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	updates := make(chan *vsphere.Inventory, 100)
	go c.Watch(ctx, func(inv *vsphere.Inventory) { updates <- inv })
	first := <-updates
	if len(first.VMs) != 2 {
		t.Fatalf("first update has %d VMs", len(first.VMs))
	}
	vm := first.VMs[0]
	var target string
	for _, h := range first.Hosts {
		if h.ID != vm.Host {
			target = h.ID
		}
	}
	wait := func(what string, cond func(*vsphere.Inventory) bool) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case inv := <-updates:
				if cond(inv) {
					return
				}
			case <-deadline:
				t.Fatalf("watch never saw %s", what)
			}
		}
	}
	if err := c.Migrate(ctx, vm.ID, target, nil); err != nil {
		t.Fatal(err)
	}
	wait("the move", func(inv *vsphere.Inventory) bool {
		for _, v := range inv.VMs {
			if v.ID == vm.ID {
				return v.Host == target
			}
		}
		return false
	})
	s.SetDemand(vm.Name, 4321, 999)
	wait("the load change", func(inv *vsphere.Inventory) bool {
		h, _ := inv.Host(target)
		for _, v := range inv.VMs {
			if v.ID == vm.ID && v.CPUDemandMHz == 4321 {
				return h.CPUUsedMHz >= 4321
			}
		}
		return false
	})
}

func TestFiftyConcurrentRelocations(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 5, VMs: 50, Seed: 5, MigrateTime: 200 * time.Millisecond})
	ctx := ctxT(t)
	inv, _ := c.Inventory(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, len(inv.VMs))
	want := map[string]string{}
	for i, vm := range inv.VMs {
		target := inv.Hosts[i%len(inv.Hosts)].ID
		if target == vm.Host {
			target = inv.Hosts[(i+1)%len(inv.Hosts)].ID
		}
		want[vm.ID] = target
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Migrate(ctx, vm.ID, target, nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	inv2, _ := c.Inventory(ctx)
	if len(inv2.VMs) != 50 {
		t.Fatalf("%d VMs after relocations", len(inv2.VMs))
	}
	for _, v := range inv2.VMs {
		if v.Host != want[v.ID] {
			t.Errorf("%s on %s, want %s", v.Name, v.Host, want[v.ID])
		}
	}
	checkLoadSums(t, inv2)
	// each VM is in exactly one host's vm list
	count := map[string]int{}
	for vm, host := range s.Placement() {
		_ = host
		count[vm]++
	}
	if len(s.Relocations()) != 50 {
		t.Errorf("%d relocation records", len(s.Relocations()))
	}
}

// TestInventoryWhileRelocationsFinish lists the inventory (a container view
// each time) from several clients while relocations finish and rewrite the
// hosts' VM lists. vcsim walks those lists without the objects' locks; the
// simulator serialises the two. Under -race this test fails (most runs)
// when it stops doing so.
func TestInventoryWhileRelocationsFinish(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 4, VMs: 32, Seed: 9, MigrateTime: time.Millisecond})
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Inventory(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var moved atomic.Int64
	var mg sync.WaitGroup
	for w := 0; w < 4; w++ {
		mg.Add(1)
		go func() {
			defer mg.Done()
			for i := w; i < 80; i += 4 {
				v := inv.VMs[i%len(inv.VMs)]
				if err := c.Migrate(ctx, v.ID, inv.Hosts[(i/len(inv.VMs)+w+1)%len(inv.Hosts)].ID, nil); err == nil {
					moved.Add(1)
				}
			}
		}()
	}
	mg.Wait()
	close(stop)
	wg.Wait()
	if moved.Load() == 0 || len(s.Relocations()) == 0 {
		t.Fatalf("no relocation finished (%d)", moved.Load())
	}
}

// TestMigrateCancelledWhenTheCallerGivesUp: a relocation whose context
// ends (its lease lost) is cancelled in vCenter: the call returns
// ErrCancelled, the VM stays on its source host, and the simulator records
// the relocation as cancelled.
func TestMigrateCancelledWhenTheCallerGivesUp(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 2, VMs: 4, Seed: 3, MigrateTime: 3 * time.Second})
	inv, err := c.Inventory(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	v := inv.VMs[0]
	var to string
	for _, h := range inv.Hosts {
		if h.ID != v.Host {
			to = h.ID
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { time.Sleep(300 * time.Millisecond); cancel() }() // a cancel, not a deadline: govmomi treats them apart
	start := time.Now()
	err = c.Migrate(ctx, v.ID, to, nil)
	if !errors.Is(err, vsphere.ErrCancelled) {
		t.Fatalf("migrate with a context that ends: %v, want ErrCancelled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the cancelled relocation ran on for %s", d)
	}
	st, err := c.VMState(ctxT(t), v.ID)
	if err != nil || st.Host != v.Host || st.Running {
		t.Fatalf("after the cancel: %+v %v (source %s)", st, err, v.Host)
	}
	recs := s.Relocations()
	if len(recs) != 1 || recs[0].Result != "cancelled" {
		t.Fatalf("relocation record: %+v", recs)
	}
	time.Sleep(3 * time.Second) // the simulator's timer fires: the VM still does not move
	if p := s.Placement(); p[v.Name] != inv.Hosts[indexOf(inv.Hosts, v.Host)].Name {
		t.Fatalf("the VM moved after its relocation was cancelled: %v", p[v.Name])
	}
}

func indexOf(hs []vsphere.Host, id string) int {
	for i, h := range hs {
		if h.ID == id {
			return i
		}
	}
	return -1
}
