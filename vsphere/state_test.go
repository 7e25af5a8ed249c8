package vsphere_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// TestSimulatorRestartsWithItsState: a simulator started again on its
// --state folder is the same vCenter: the same thumbprint, the same ids,
// a moved VM where it went, demand and maintenance as they were, the
// relocation record kept; and it keeps the shape it was made with, whatever
// the restart asks. A state file that does not decode is refused, naming
// the file.
func TestSimulatorRestartsWithItsState(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t)
	s1, err := sim.New(sim.Config{Hosts: 3, VMs: 6, Seed: 9, MigrateTime: 200 * time.Millisecond, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := vsphere.Connect(ctx, vsphere.Config{URL: s1.URL().String(), User: "u", Password: "p", Thumbprint: s1.Thumbprint()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := c.Inventory(ctx)
	vm := inv.VMs[2]
	target := inv.Hosts[0]
	if target.ID == vm.Host {
		target = inv.Hosts[1]
	}
	if err := c.Migrate(ctx, vm.ID, target.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := s1.SetDemand(inv.VMs[0].Name, 1234, 567); err != nil {
		t.Fatal(err)
	}
	if err := s1.SetMaintenance(inv.Hosts[2].Name, true); err != nil {
		t.Fatal(err)
	}
	// a rule, as an administrator's tool sets one
	admin, err := govmomi.NewClient(ctx, s1.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	cl := object.NewClusterComputeResource(admin.Client, types.ManagedObjectReference{Type: "ClusterComputeResource", Value: inv.Hosts[0].Cluster})
	task, err := cl.Reconfigure(ctx, &types.ClusterConfigSpecEx{RulesSpec: []types.ClusterRuleSpec{{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
		Info: &types.ClusterAntiAffinityRuleSpec{ClusterRuleInfo: types.ClusterRuleInfo{Name: "apart", Enabled: types.NewBool(true)},
			Vm: []types.ManagedObjectReference{{Type: "VirtualMachine", Value: inv.VMs[0].ID}, {Type: "VirtualMachine", Value: inv.VMs[1].ID}}}}}}, true)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	admin.Logout(ctx)
	thumb, ids := s1.Thumbprint(), map[string]string{}
	for _, v := range inv.VMs {
		ids[v.Name] = v.ID
	}
	c.Close()
	s1.Close()
	if fi, err := os.Stat(filepath.Join(dir, "state.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v (it holds the TLS key: 0600)", fi, err)
	}

	s2, err := sim.New(sim.Config{Hosts: 8, VMs: 64, Seed: 1, MigrateTime: 200 * time.Millisecond, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Thumbprint() != thumb {
		t.Fatalf("thumbprint %s after the restart, %s before", s2.Thumbprint(), thumb)
	}
	c2, err := vsphere.Connect(ctx, vsphere.Config{URL: s2.URL().String(), User: "u", Password: "p", Thumbprint: thumb}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	inv2, err := c2.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv2.Hosts) != 3 || len(inv2.VMs) != 6 {
		t.Fatalf("after the restart: %d hosts, %d VMs; want the saved 3 and 6", len(inv2.Hosts), len(inv2.VMs))
	}
	for _, v := range inv2.VMs {
		if ids[v.Name] != v.ID {
			t.Errorf("%s came back as %s, was %s", v.Name, v.ID, ids[v.Name])
		}
	}
	if v, _ := inv2.VM(vm.Name); v.Host != target.ID {
		t.Errorf("the moved VM is on %s after the restart, want %s", v.Host, target.ID)
	}
	if v, _ := inv2.VM(inv.VMs[0].Name); v.CPUDemandMHz != 1234 {
		t.Errorf("demand after the restart: %d MHz, want 1234", v.CPUDemandMHz)
	}
	if h, _ := inv2.Host(inv.Hosts[2].ID); !h.InMaintenance {
		t.Error("maintenance lost in the restart")
	}
	if cl, ok := inv2.Cluster(inv.Hosts[0].Cluster); !ok || len(cl.Rules) != 1 || cl.Rules[0].Name != "apart" || len(cl.Rules[0].VMs) != 2 {
		t.Errorf("the cluster's rules after the restart: %+v (want the anti-affinity rule \"apart\" on 2 VMs)", cl.Rules)
	}
	if rs := s2.Relocations(); len(rs) != 1 || rs[0].VM != vm.Name {
		t.Errorf("relocation record after the restart: %+v", rs)
	}
	s2.Close()

	os.WriteFile(filepath.Join(dir, "state.json"), []byte("{not json"), 0o600)
	if _, err := sim.New(sim.Config{Hosts: 3, VMs: 6, StateDir: dir}); err == nil || !strings.Contains(err.Error(), "state.json") {
		t.Fatalf("a corrupt state file: %v", err)
	}
}
