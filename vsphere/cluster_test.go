package vsphere_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/event"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// Clusters, DRS and rules through the public vSphere API, the way an
// administrator's tool would set them (ReconfigureComputeResource_Task),
// and as parley reads them.

func clusterOfHost(inv *vsphere.Inventory, name string) vsphere.Cluster {
	h, _ := inv.Host(name)
	c, _ := inv.Cluster(h.Cluster)
	return c
}

func TestClustersAndPools(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 4, VMs: 8, Seed: 2, Clusters: 2, MigrateTime: 1})
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Clusters) != 2 {
		t.Fatalf("%d clusters, want 2", len(inv.Clusters))
	}
	for _, cl := range inv.Clusters {
		if !cl.DRSEnabled || cl.DRSBehavior != "manual" || cl.BalancedByDRS() {
			t.Errorf("cluster %s: DRS %v %q, want enabled and manual (parley sim's default)", cl.Name, cl.DRSEnabled, cl.DRSBehavior)
		}
	}
	var vm vsphere.VM
	var src vsphere.Host
	for _, v := range inv.VMs {
		if h, _ := inv.Host(v.Host); h.Cluster != "" {
			vm, src = v, h
			break
		}
	}
	var other vsphere.Host
	for _, h := range inv.Hosts {
		if h.Cluster != src.Cluster {
			other = h
		}
	}
	admin, err := govmomi.NewClient(ctx, s.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.ID}
	target := types.ManagedObjectReference{Type: "HostSystem", Value: other.ID}
	task, err := object.NewVirtualMachine(admin.Client, ref).Relocate(ctx, types.VirtualMachineRelocateSpec{Host: &target}, types.VirtualMachineMovePriorityDefaultPriority)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "another cluster") {
		t.Errorf("a relocation to another cluster without its pool: %v, want InvalidArgument", err)
	}
	// parley's client gives the target's pool: allowed by vCenter (parley's
	// workers never ask, since they negotiate within a cluster)
	if err := c.Migrate(ctx, vm.ID, other.ID, nil); err != nil {
		t.Fatalf("a relocation with the target cluster's pool: %v", err)
	}
	// the scoped inventory of a cluster holds its hosts and their VMs only
	inv, _ = c.Inventory(ctx)
	sc := inv.Scope(src.Cluster)
	for _, h := range sc.Hosts {
		if h.Cluster != src.Cluster {
			t.Errorf("scope of %s holds host %s of %s", src.Cluster, h.Name, h.Cluster)
		}
	}
	if _, ok := sc.VM(vm.ID); ok {
		t.Errorf("scope of %s still holds %s, which moved to the other cluster", src.Cluster, vm.Name)
	}

	s2, c2 := newSim(t, sim.Config{Hosts: 2, VMs: 2, Seed: 2, DRS: "fullyAutomated"})
	_ = s2
	inv2, err := c2.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl := inv2.Clusters[0]; !cl.BalancedByDRS() {
		t.Errorf("a fully automated cluster: %+v, want balanced by DRS", cl)
	}
	if (vsphere.Cluster{DRSEnabled: true}).BalancedByDRS() != true {
		t.Error("an empty DRS behaviour (vcsim's, and vCenter's default) must read as fully automated")
	}
	if _, err := sim.New(sim.Config{Hosts: 3, VMs: 1, Clusters: 2}); err == nil {
		t.Error("3 hosts over 2 clusters accepted")
	}
	if _, err := sim.New(sim.Config{Hosts: 2, VMs: 1, DRS: "sometimes"}); err == nil {
		t.Error("an unknown DRS setting accepted")
	}
}

// TestVCenterRules: VM groups, host groups, a mandatory VM-host rule, an
// anti-affinity rule and a DRS override created as an administrator
// would; the simulator refuses a relocation against the mandatory VM-host
// rule, and parley reads every rule and says which a move would break.
func TestVCenterRules(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 3, VMs: 6, Seed: 5, MigrateTime: 1})
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h0, h1, h2 := inv.Hosts[0], inv.Hosts[1], inv.Hosts[2]
	var a, b vsphere.VM
	for _, v := range inv.VMs {
		if v.Host == h0.ID && a.ID == "" {
			a = v
		} else if v.Host != h1.ID && b.ID == "" {
			b = v
		}
	}
	if a.ID == "" || b.ID == "" {
		t.Fatalf("layout: %+v", inv.VMs)
	}
	admin, err := govmomi.NewClient(ctx, s.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	clRef := types.ManagedObjectReference{Type: "ClusterComputeResource", Value: h0.Cluster}
	vmRef := func(id string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: "VirtualMachine", Value: id}
	}
	hostRef := func(id string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: "HostSystem", Value: id}
	}
	spec := &types.ClusterConfigSpecEx{
		GroupSpec: []types.ClusterGroupSpec{
			{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd}, Info: &types.ClusterVmGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "pinned"}, Vm: []types.ManagedObjectReference{vmRef(a.ID)}}},
			{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd}, Info: &types.ClusterHostGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "zone-a"}, Host: []types.ManagedObjectReference{hostRef(h0.ID), hostRef(h2.ID)}}},
		},
		RulesSpec: []types.ClusterRuleSpec{
			{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd}, Info: &types.ClusterVmHostRuleInfo{
				ClusterRuleInfo: types.ClusterRuleInfo{Name: "pin-a", Enabled: types.NewBool(true), Mandatory: types.NewBool(true)},
				VmGroupName:     "pinned", AffineHostGroupName: "zone-a"}},
			{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd}, Info: &types.ClusterAntiAffinityRuleSpec{
				ClusterRuleInfo: types.ClusterRuleInfo{Name: "apart", Enabled: types.NewBool(true)},
				Vm:              []types.ManagedObjectReference{vmRef(a.ID), vmRef(b.ID)}}},
		},
		DrsVmConfigSpec: []types.ClusterDrsVmConfigSpec{{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
			Info: &types.ClusterDrsVmConfigInfo{Key: vmRef(b.ID), Behavior: types.DrsBehaviorManual}}},
	}
	task, err := object.NewClusterComputeResource(admin.Client, clRef).Reconfigure(ctx, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	inv, err = c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl := clusterOfHost(inv, h0.Name)
	if len(cl.Rules) != 2 {
		t.Fatalf("rules read: %+v", cl.Rules)
	}
	if !cl.VMExcluded(b.ID) {
		t.Errorf("VM %s has a manual DRS override: it must be excluded", b.Name)
	}
	if p := inv.RuleProblem(a.ID, h1.ID); !strings.Contains(p, "pin-a") {
		t.Errorf("moving %s out of its host group: problem %q, want rule pin-a", a.Name, p)
	}
	if p := inv.RuleProblem(a.ID, h2.ID); p != "" && !strings.Contains(p, "apart") {
		t.Errorf("moving %s within its host group: %q", a.Name, p)
	}
	if p := inv.RuleProblem(a.ID, b.Host); !strings.Contains(p, "apart") {
		t.Errorf("moving %s onto %s's host: problem %q, want rule apart", a.Name, b.Name, p)
	}
	// the simulator enforces the mandatory VM-host rule on relocation
	if err := c.Migrate(ctx, a.ID, h1.ID, nil); err == nil || !strings.Contains(err.Error(), "pin-a") && !strings.Contains(err.Error(), "VmHostAffinityRuleViolation") {
		t.Errorf("a relocation against the mandatory VM-host rule: %v", err)
	}
	if err := c.Migrate(ctx, a.ID, h2.ID, nil); err != nil && b.Host != h2.ID {
		t.Errorf("a relocation within the host group: %v", err)
	}
}

// TestWhatCanMove: templates, powered-off, disconnected, fault-tolerant,
// solution-managed VMs and VMs whose relocation is disabled never move; a
// VM powered off through the API reads as unmovable.
func TestWhatCanMove(t *testing.T) {
	on := vsphere.VM{PowerState: "poweredOn", ConnectionState: "connected"}
	for _, c := range []struct {
		edit func(v *vsphere.VM)
		why  string
	}{
		{func(v *vsphere.VM) {}, ""},
		{func(v *vsphere.VM) { v.Template = true }, "template"},
		{func(v *vsphere.VM) { v.PowerState = "poweredOff" }, "not powered on"},
		{func(v *vsphere.VM) { v.ConnectionState = "orphaned" }, "orphaned"},
		{func(v *vsphere.VM) { v.FaultTolerant = true }, "fault tolerant"},
		{func(v *vsphere.VM) { v.ManagedBy = "com.vmware.vcls" }, "com.vmware.vcls"},
		{func(v *vsphere.VM) { v.RelocateDisabled = true }, "disabled"},
	} {
		v := on
		c.edit(&v)
		ok, why := v.Movable()
		if ok != (c.why == "") || !strings.Contains(why, c.why) {
			t.Errorf("%+v: movable %v (%q), want reason %q", v, ok, why, c.why)
		}
	}
	s, c := newSim(t, sim.Config{Hosts: 2, VMs: 2, Seed: 1})
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := govmomi.NewClient(ctx, s.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	vm := object.NewVirtualMachine(admin.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: inv.VMs[0].ID})
	task, err := vm.PowerOff(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	inv, _ = c.Inventory(ctx)
	v, _ := inv.VM(inv.VMs[0].ID)
	if ok, why := v.Movable(); ok || why != "not powered on" {
		t.Errorf("a powered-off VM: movable %v (%q)", ok, why)
	}

	// A PCI passthrough device, added as an administrator would.
	other := object.NewVirtualMachine(admin.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: inv.VMs[1].ID})
	if has, err := c.PCIPassthrough(ctx, inv.VMs[1].ID); err != nil || has {
		t.Fatalf("before: passthrough %v, %v", has, err)
	}
	dev := &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{Key: -1,
		Backing: &types.VirtualPCIPassthroughDeviceBackingInfo{Id: "0000:3b:00.0", DeviceId: "1db6", SystemId: "sys", VendorId: 0x10de}}}
	task, err = other.Reconfigure(ctx, types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: dev}}})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if has, err := c.PCIPassthrough(ctx, inv.VMs[1].ID); err != nil || !has {
		t.Errorf("after adding a passthrough device: %v, %v", has, err)
	}
	if _, err := c.PCIPassthrough(ctx, "vm-nowhere"); err == nil {
		t.Error("the devices of a VM that does not exist")
	}
}

// TestZonedStorage: a VM whose disks are on a datastore that only some
// hosts see moves only to those; parley sees which.
func TestZonedStorage(t *testing.T) {
	_, c := newSim(t, sim.Config{Hosts: 4, VMs: 12, Seed: 3, ZonedStorage: true, MigrateTime: 1})
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blind, seeing := zoneHosts(inv)
	if len(blind) != 2 || len(seeing) != 2 {
		t.Fatalf("want 2 hosts that see the zone datastore and 2 that do not: %+v", inv.Hosts)
	}
	var onZone vsphere.VM
	for _, v := range inv.VMs {
		if inv.StorageProblem(v.ID, blind[0].ID) != "" {
			onZone = v
		}
	}
	if onZone.ID == "" {
		t.Fatal("no VM on the zone datastore")
	}
	if err := c.Migrate(ctx, onZone.ID, blind[0].ID, nil); err == nil || !strings.Contains(err.Error(), "datastore") {
		t.Errorf("a move to a host that cannot see the VM's datastore: %v", err)
	}
	other := seeing[0]
	if other.ID == onZone.Host {
		other = seeing[1]
	}
	if p := inv.StorageProblem(onZone.ID, other.ID); p != "" {
		t.Errorf("a host that sees the datastore: %q", p)
	}
	if err := c.Migrate(ctx, onZone.ID, other.ID, nil); err != nil {
		t.Errorf("a move to a host that sees the datastore: %v", err)
	}
}

// TestCheckRelocateAnswersFromTheRules: CheckRelocate_Task says no where
// the relocation would be refused (a datastore the target cannot see,
// another cluster's pool, maintenance), and yes elsewhere.
func TestCheckRelocateAnswersFromTheRules(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 4, VMs: 12, Seed: 3, ZonedStorage: true})
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blind, seeing := zoneHosts(inv)
	var onZone vsphere.VM
	for _, v := range inv.VMs {
		if inv.StorageProblem(v.ID, blind[0].ID) != "" {
			onZone = v
		}
	}
	if err := c.CheckRelocate(ctx, onZone.ID, blind[0].ID); !errors.Is(err, vsphere.ErrIncompatible) || !strings.Contains(err.Error(), "datastore") {
		t.Errorf("check a move to a host without the VM's datastore: %v", err)
	}
	other := seeing[0]
	if other.ID == onZone.Host {
		other = seeing[1]
	}
	if err := c.CheckRelocate(ctx, onZone.ID, other.ID); err != nil {
		t.Errorf("check a possible move: %v", err)
	}
	if err := s.SetMaintenance(other.Name, true); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckRelocate(ctx, onZone.ID, other.ID); !errors.Is(err, vsphere.ErrIncompatible) {
		t.Errorf("check a move to a host in maintenance: %v", err)
	}
}

func TestNetworksCount(t *testing.T) {
	inv := &vsphere.Inventory{
		Hosts: []vsphere.Host{{ID: "h0", Name: "h0", Networks: []string{"n1", "n2"}}, {ID: "h1", Name: "h1", Networks: []string{"n1"}}},
		VMs:   []vsphere.VM{{ID: "v", Name: "v", Host: "h0", Networks: []string{"n1", "n2"}}},
	}
	if p := inv.StorageProblem("v", "h1"); !strings.Contains(p, "network n2") {
		t.Errorf("a host without the VM's network: %q", p)
	}
	if p := inv.StorageProblem("v", "h0"); p != "" {
		t.Errorf("a host with every network: %q", p)
	}
}

// TestUserEventOnTheVM: an event logged by parley is what an
// administrator reading the VM's events sees.
func TestUserEventOnTheVM(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 2, VMs: 2, Seed: 1})
	ctx := ctxT(t)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vm := inv.VMs[0]
	if err := c.LogUserEvent(ctx, vm.ID, "parley moves this VM: policy balance@v3"); err != nil {
		t.Fatal(err)
	}
	admin, err := govmomi.NewClient(ctx, s.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := event.NewManager(admin.Client).QueryEvents(ctx, types.EventFilterSpec{Entity: &types.EventFilterSpecByEntity{
		Entity: types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.ID}, Recursion: types.EventFilterSpecRecursionOptionSelf}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		if strings.Contains(e.GetEvent().FullFormattedMessage, "policy balance@v3") {
			found = true
		}
	}
	if !found {
		t.Errorf("the VM's %d events do not include parley's", len(evs))
	}
}

// zoneHosts splits the hosts of a zoned-storage simulator into those that
// do not see the zone datastore and those that do.
func zoneHosts(inv *vsphere.Inventory) (blind, seeing []vsphere.Host) {
	for _, h := range inv.Hosts {
		if len(h.Datastores) == 1 {
			blind = append(blind, h)
		} else {
			seeing = append(seeing, h)
		}
	}
	return blind, seeing
}

// TestScopeIsShared: every worker of a cluster scopes the same inventory
// each tick (and the fleet benchmark's thousand workers share one), so a
// scope is built once per inventory, and an inventory all in one cluster
// is its own scope.
func TestScopeIsShared(t *testing.T) {
	one := &vsphere.Inventory{Hosts: []vsphere.Host{{ID: "h1", Cluster: "c1"}, {ID: "h2", Cluster: "c1"}},
		VMs: []vsphere.VM{{ID: "v1", Host: "h1"}, {ID: "v2", Host: "h2"}}, Clusters: []vsphere.Cluster{{ID: "c1"}}}
	if sc := one.Scope("c1"); sc != one {
		t.Errorf("an inventory all in c1 scoped to c1: a copy")
	}
	if n := testing.AllocsPerRun(100, func() { one.Scope("c1") }); n != 0 {
		t.Errorf("scoping an inventory all in one cluster allocates %.0f times", n)
	}
	two := &vsphere.Inventory{Hosts: []vsphere.Host{{ID: "h1", Cluster: "c1"}, {ID: "h2", Cluster: "c2"}},
		VMs: []vsphere.VM{{ID: "v1", Host: "h1"}, {ID: "v2", Host: "h2"}}, Clusters: []vsphere.Cluster{{ID: "c1"}, {ID: "c2"}}}
	a, b := two.Scope("c2"), two.Scope("c2")
	if a != b {
		t.Errorf("the scope of c2 was built twice")
	}
	if len(a.Hosts) != 1 || a.Hosts[0].ID != "h2" || len(a.VMs) != 1 || a.VMs[0].ID != "v2" || len(a.Clusters) != 1 {
		t.Errorf("scope of c2: %+v", a)
	}
	if n := testing.AllocsPerRun(100, func() { two.Scope("c1") }); n != 0 {
		t.Errorf("scoping to c1 again allocates %.0f times", n)
	}
}
