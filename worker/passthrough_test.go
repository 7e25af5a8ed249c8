package worker

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// passthroughDC is fakeDC (standing in for vCenter) that also answers
// which VMs have a PCI passthrough device, as vsphere.Client does.
type passthroughDC struct {
	*fakeDC
	pinned map[string]bool
	asked  map[string]int
}

func (d *passthroughDC) PCIPassthrough(_ context.Context, vmID string) (bool, error) {
	d.asked[vmID]++
	return d.pinned[vmID], nil
}

// TestPassthroughVMsAreNeverOffered: pick_vm offers the VM without a PCI
// passthrough device even when the other would suit better, offers
// nothing when only such VMs are left, and asks vCenter once per VM.
func TestPassthroughVMsAreNeverOffered(t *testing.T) {
	dc := &passthroughDC{fakeDC: &fakeDC{running: map[string]bool{}, inv: &vsphere.Inventory{
		Hosts: []vsphere.Host{
			{ID: "host-1", Name: "h1", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000, CPUUsedMHz: 9000},
			{ID: "host-2", Name: "h2", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000}},
		VMs: []vsphere.VM{
			{ID: "vm-1", Name: "gpu1", Host: "host-1", PowerState: "poweredOn", CPUDemandMHz: 3000, MemMB: 1000},
			{ID: "vm-2", Name: "web1", Host: "host-1", PowerState: "poweredOn", CPUDemandMHz: 1000, MemMB: 1000}},
	}}, pinned: map[string]bool{"vm-1": true}, asked: map[string]int{}}
	w := observingWorker(t, "h1", dc, raftstore.NewMem(raftstore.Config{}))
	p, diags, err := lcc.Compile("p", []byte("r(x, initial)\na(x, X) :: null.\n"), lcc.PolicyRef{Name: "p", Version: 1}, nil)
	if err != nil {
		t.Fatal(diags)
	}
	pick := func(iid string) string {
		g := &lcc.Goal{Args: []lcc.Term{lcc.NewRef("VM"), lcc.NewRef("C"), lcc.NewRef("M")}, Program: p, Interaction: iid}
		ok, err := w.cPickVM(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ""
		}
		name, _ := g.AtomName(0)
		return name
	}
	if got := pick("i1"); got != "web1" {
		t.Fatalf("offered %q, want web1 (gpu1 has a passthrough device)", got)
	}
	if got := pick("i2"); got != "" { // web1 is under negotiation: only gpu1 is left
		t.Fatalf("offered %q with only a passthrough VM left", got)
	}
	if dc.asked["vm-1"] != 1 {
		t.Errorf("vCenter was asked %d times about vm-1, want once", dc.asked["vm-1"])
	}
}
