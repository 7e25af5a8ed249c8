package policies_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/event"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/worker/local"
)

// TestBalanceStaysWithinClusters: 8 hosts in 2 clusters, skewed load;
// workers balance, and no VM ever leaves its cluster (the simulator
// would refuse a move without the target cluster's pool anyway; parley
// never asks). Checked from the simulator's relocation record.
func TestBalanceStaysWithinClusters(t *testing.T) {
	l, _, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 48, Seed: 3, Clusters: 2}, nil)
	clusterOf := func(host string) string { return host[:strings.LastIndex(host, "_")] } // DC0_C1_H2 -> DC0_C1
	waitUntil(t, 90*time.Second, "some migrations and a quiet fleet", func() bool {
		return len(l.Sim.Relocations()) >= 3 && l.Quiet(ctx)
	})
	for _, r := range l.Sim.Relocations() {
		if clusterOf(r.From) != clusterOf(r.To) {
			t.Errorf("%s moved across clusters: %s -> %s (%s)", r.VM, r.From, r.To, r.Result)
		}
		if r.Result != "success" {
			t.Errorf("%s: %s -> %s failed: %s", r.VM, r.From, r.To, r.Result)
		}
	}
	// the moved VM's events say why it moved
	moved := l.Sim.Relocations()[0].VM
	inv, err := l.VS.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := inv.VM(moved)
	admin, err := govmomi.NewClient(ctx, l.Sim.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := event.NewManager(admin.Client).QueryEvents(ctx, types.EventFilterSpec{Entity: &types.EventFilterSpecByEntity{
		Entity: types.ManagedObjectReference{Type: "VirtualMachine", Value: v.ID}, Recursion: types.EventFilterSpecRecursionOptionSelf}})
	if err != nil {
		t.Fatal(err)
	}
	said := false
	for _, e := range evs {
		m := e.GetEvent().FullFormattedMessage
		said = said || (strings.Contains(m, "parley moves this VM") && strings.Contains(m, "policy balance@v1") && strings.Contains(m, "interaction "))
	}
	if !said {
		t.Errorf("%s moved, and none of its %d events says why", moved, len(evs))
	}
	t.Logf("%d relocations checked", len(l.Sim.Relocations()))
}

// TestDRSClusterIsLeftToDRS: with DRS fully automated, parley moves
// nothing, and says so in the host list and the journal.
func TestDRSClusterIsLeftToDRS(t *testing.T) {
	l, _, ctx := runPolicy(t, local.Config{Hosts: 4, VMs: 24, Seed: 3, DRS: "fullyAutomated"}, nil)
	waitUntil(t, 30*time.Second, "every host listed as left to DRS", func() bool {
		hs, err := l.Store.Hosts(ctx, false)
		if err != nil {
			return false
		}
		n := 0
		for _, h := range hs {
			if h.State == "drs" && strings.Contains(h.Reason, "--coexist-drs") {
				n++
			}
		}
		return n == 4
	})
	time.Sleep(3 * time.Second) // several ticks with overloaded hosts
	if n := len(l.Sim.Relocations()); n != 0 {
		t.Errorf("%d relocations in a cluster DRS balances", n)
	}
	js, err := l.Store.Journal(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	drs := 0
	for _, j := range js {
		if j.Kind == "drs" && j.Outcome == "left to DRS" {
			drs++
		}
	}
	if drs != 4 {
		t.Errorf("%d journal entries say a host is left to DRS, want 4", drs)
	}
	inv, err := l.VS.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := vsphere.CPULoadStats(inv.Hosts); st.Max <= 0.7 {
		t.Fatalf("the test needs an overloaded host; the most loaded is at %.2f", st.Max)
	}
}

// TestRuleMadeWhileBalancingIsCorrected: an administrator makes an
// anti-affinity rule for two VMs that share a host, on a calm datacentre;
// the workers move one of them (negotiated, with leases) and no move
// breaks the rule afterwards.
func TestRuleMadeWhileBalancingIsCorrected(t *testing.T) {
	l, _, ctx := runPolicy(t, local.Config{Hosts: 4, VMs: 16, Seed: 7, Skew: 0.25, Utilisation: 0.3}, nil)
	inv, err := l.VS.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var a, b vsphere.VM
	for _, h := range inv.Hosts {
		if vs := inv.VMsOn(h.ID); len(vs) >= 2 {
			a, b = vs[0], vs[1]
			break
		}
	}
	if a.ID == "" {
		t.Fatal("no host with two VMs")
	}
	admin, err := govmomi.NewClient(ctx, l.Sim.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := inv.Host(a.Host)
	vmRef := func(id string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: "VirtualMachine", Value: id}
	}
	spec := &types.ClusterConfigSpecEx{RulesSpec: []types.ClusterRuleSpec{{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
		Info: &types.ClusterAntiAffinityRuleSpec{ClusterRuleInfo: types.ClusterRuleInfo{Name: "keep-apart", Enabled: types.NewBool(true)},
			Vm: []types.ManagedObjectReference{vmRef(a.ID), vmRef(b.ID)}}}}}
	task, err := object.NewClusterComputeResource(admin.Client, types.ManagedObjectReference{Type: "ClusterComputeResource", Value: h.Cluster}).Reconfigure(ctx, spec, true)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	before := len(l.Sim.Relocations())
	waitUntil(t, 60*time.Second, a.Name+" and "+b.Name+" on different hosts", func() bool {
		inv, err := l.VS.Inventory(ctx)
		if err != nil {
			return false
		}
		va, _ := inv.VM(a.ID)
		vb, _ := inv.VM(b.ID)
		return va.Host != vb.Host && l.Quiet(ctx)
	})
	time.Sleep(3 * time.Second) // kept: no later move brings them together
	inv, _ = l.VS.Inventory(ctx)
	va, _ := inv.VM(a.ID)
	vb, _ := inv.VM(b.ID)
	if va.Host == vb.Host {
		t.Errorf("%s and %s share host %s again", a.Name, b.Name, va.Host)
	}
	t.Logf("corrected with %d relocations (%d before the rule)", len(l.Sim.Relocations())-before, before)
}

// TestDrainWithZonedStorage: draining a host that holds VMs whose disks
// only some hosts see moves those VMs only there: every relocation
// succeeds (the simulator refuses a move to a host that cannot see the
// disks), and no VM ends where it cannot run.
func TestDrainWithZonedStorage(t *testing.T) {
	l, _, ctx := runPolicy(t, local.Config{Hosts: 8, VMs: 32, Seed: 5, Policy: "evacuate", ZonedStorage: true, Skew: 0.25, Utilisation: 0.3}, nil)
	target := l.Sim.Layout.Hosts[0].Name // sees the zone datastore, as do hosts 1 to 3 only
	inv, err := l.VS.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h0, _ := inv.Host(target)
	zoned := 0
	for _, v := range inv.VMsOn(h0.ID) {
		if inv.StorageProblem(v.ID, l.Sim.Layout.Hosts[7].Name) != "" {
			zoned++
		}
	}
	if zoned == 0 {
		t.Fatalf("the test needs a VM on %s whose disks other hosts cannot see", target)
	}
	if _, err := l.Store.Drain(ctx, target, "test", true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 90*time.Second, target+" drained", func() bool {
		inv, err := l.VS.Inventory(ctx)
		if err != nil {
			return false
		}
		h, _ := inv.Host(target)
		return h.InMaintenance
	})
	for _, r := range l.Sim.Relocations() {
		if r.Result != "success" {
			t.Errorf("%s: %s -> %s failed: %s", r.VM, r.From, r.To, r.Result)
		}
	}
	// vCenter refuses such a move before it starts: the journal has it
	js, err := l.Store.Journal(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		if j.Kind == "migration" && j.Outcome == "failed" {
			t.Errorf("a migration failed: %s -> %s: %s", j.VM, j.To, j.Reason)
		}
	}
	inv, err = l.VS.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range inv.VMs {
		if p := inv.StorageProblem(v.ID, v.Host); p != "" {
			t.Errorf("%s is where it cannot run: %s", v.Name, p)
		}
	}
	t.Logf("%d relocations and %d journal entries checked, %d VMs with zoned disks drained", len(l.Sim.Relocations()), len(js), zoned)
}
