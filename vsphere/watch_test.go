package vsphere_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// TestWatchSeesRulesMaintenanceAndTemplates: a watcher (WaitForUpdatesEx,
// vsphere.Client.Watch) learns of a rule made with
// ReconfigureComputeResource_Task, a host entering maintenance and a VM
// marked as a template, all made through the public API as an
// administrator would. vcsim changes these without property updates; the
// simulator sends them, as a real vCenter does.
func TestWatchSeesRulesMaintenanceAndTemplates(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 3, VMs: 6, Seed: 2})
	ctx := ctxT(t)
	var mu sync.Mutex
	var last *vsphere.Inventory
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(wctx, func(inv *vsphere.Inventory) { mu.Lock(); last = inv; mu.Unlock() })
	}()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func(inv *vsphere.Inventory) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			inv := last
			mu.Unlock()
			if inv != nil && ok(inv) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the watcher never saw %s", what)
	}
	waitFor("the inventory", func(inv *vsphere.Inventory) bool { return len(inv.Hosts) == 3 })
	mu.Lock()
	inv := last
	mu.Unlock()
	h0, vm := inv.Hosts[0], inv.VMs[0]
	admin, err := govmomi.NewClient(ctx, s.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(task *object.Task, err error) {
		t.Helper()
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	add := types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd}
	cl := object.NewClusterComputeResource(admin.Client, types.ManagedObjectReference{Type: "ClusterComputeResource", Value: h0.Cluster})
	wait(cl.Reconfigure(ctx, &types.ClusterConfigSpecEx{RulesSpec: []types.ClusterRuleSpec{{ArrayUpdateSpec: add, Info: &types.ClusterAntiAffinityRuleSpec{
		ClusterRuleInfo: types.ClusterRuleInfo{Name: "apart", Enabled: types.NewBool(true)},
		Vm:              []types.ManagedObjectReference{{Type: "VirtualMachine", Value: inv.VMs[0].ID}, {Type: "VirtualMachine", Value: inv.VMs[1].ID}}}}}}, true))
	waitFor("the rule", func(inv *vsphere.Inventory) bool {
		c, ok := inv.Cluster(h0.Cluster)
		return ok && len(c.Rules) == 1 && c.Rules[0].Name == "apart"
	})

	host := object.NewHostSystem(admin.Client, types.ManagedObjectReference{Type: "HostSystem", Value: inv.Hosts[2].ID})
	wait(host.EnterMaintenanceMode(ctx, 0, false, nil))
	waitFor("the host in maintenance", func(inv *vsphere.Inventory) bool {
		h, ok := inv.Host(inv.Hosts[2].ID)
		return ok && h.InMaintenance
	})

	v := object.NewVirtualMachine(admin.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.ID})
	wait(v.PowerOff(ctx))
	if err := v.MarkAsTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor("the template", func(inv *vsphere.Inventory) bool {
		x, ok := inv.VM(vm.ID)
		return ok && x.Template
	})
}
