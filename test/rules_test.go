package test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/parleyhq/parley/vsphere"
)

// TestRuleCreatedWhileBalancingIsCorrectedAndKept: real processes (a
// 3-member store, the simulator, one worker per host) balance a
// datacentre; meanwhile an administrator's tool creates a mandatory
// VM-host anti-affinity rule (ReconfigureComputeResource_Task) that the VM's
// current host breaks. The workers move the VM off that host, as DRS would,
// and never back while the rule stands.
func TestRuleCreatedWhileBalancingIsCorrectedAndKept(t *testing.T) {
	e := newEnv(t, envConfig{hosts: 4, vms: 24, seed: 11})
	ctx := ctxFor(t, 3*time.Minute)
	u, err := url.Parse(e.sdk)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := vsphere.Connect(ctx, vsphere.Config{URL: e.sdk, User: "admin", Password: "x", CAFile: e.simCA}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	time.Sleep(3 * time.Second) // the workers are balancing
	inv, err := vc.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// a movable VM, not moving now, and the host it is on
	var vm vsphere.VM
	for _, v := range inv.VMs {
		if ok, _ := v.Movable(); ok {
			vm = v
			break
		}
	}
	host, _ := inv.Host(vm.Host)
	if vm.ID == "" || host.Cluster == "" {
		t.Fatalf("no movable VM in a cluster: %+v", inv.VMs)
	}
	u.User = url.UserPassword("admin", "x")
	admin, err := govmomi.NewClient(ctx, u, true) // the administrator's tool
	if err != nil {
		t.Fatal(err)
	}
	add := types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd}
	spec := &types.ClusterConfigSpecEx{
		GroupSpec: []types.ClusterGroupSpec{
			{ArrayUpdateSpec: add, Info: &types.ClusterVmGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "evicted"}, Vm: []types.ManagedObjectReference{{Type: "VirtualMachine", Value: vm.ID}}}},
			{ArrayUpdateSpec: add, Info: &types.ClusterHostGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "old-home"}, Host: []types.ManagedObjectReference{{Type: "HostSystem", Value: host.ID}}}},
		},
		RulesSpec: []types.ClusterRuleSpec{{ArrayUpdateSpec: add, Info: &types.ClusterVmHostRuleInfo{
			ClusterRuleInfo: types.ClusterRuleInfo{Name: "keep-off", Enabled: types.NewBool(true), Mandatory: types.NewBool(true)},
			VmGroupName:     "evicted", AntiAffineHostGroupName: "old-home"}}},
	}
	task, err := object.NewClusterComputeResource(admin.Client, types.ManagedObjectReference{Type: "ClusterComputeResource", Value: host.Cluster}).Reconfigure(ctx, spec, true)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	ruled := time.Now()
	t.Logf("rule keep-off: %s must not run on %s", vm.Name, host.Name)

	deadline := time.Now().Add(60 * time.Second)
	for e.placement()[vm.Name] == host.Name {
		if time.Now().After(deadline) {
			t.Fatalf("%s is still on %s a minute after the rule was made", vm.Name, host.Name)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("corrected %.1f s after the rule", time.Since(ruled).Seconds())
	// moved because of the rule, not by chance of the balancing
	because := false
	for _, w := range e.workers {
		l := w.log.String()
		because = because || strings.Contains(l, "breaks a mandatory vCenter rule") && strings.Contains(l, vm.Name)
	}
	if !because {
		t.Errorf("no worker logged moving %s for the rule", vm.Name)
	}
	// kept: for a while, nothing moves it back, and the datacentre goes on
	keep := time.Now().Add(10 * time.Second)
	for time.Now().Before(keep) {
		if e.placement()[vm.Name] == host.Name {
			t.Fatalf("%s went back to %s, against the rule", vm.Name, host.Name)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, r := range e.relocations() {
		if r.VM == vm.Name && r.To == host.Name && r.Start.After(ruled) {
			t.Errorf("a relocation of %s to %s began after the rule: %+v", vm.Name, host.Name, r)
		}
	}
	e.checkNoOverlap(4, 0.7)
}
