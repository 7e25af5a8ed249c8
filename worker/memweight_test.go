package worker

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// TestMemWeightChoosesTheTarget: param(mem_weight) weighs memory against
// CPU in a bid. h2 has the least CPU used and h3 the least memory: with
// CPU only (the default) h2 bids higher; with memory weighed, h3 does.
// (fakeDC stands in for vCenter, raftstore.NewMem for the store.)
func TestMemWeightChoosesTheTarget(t *testing.T) {
	dc := &fakeDC{running: map[string]bool{}, inv: &vsphere.Inventory{
		Hosts: []vsphere.Host{
			{ID: "host-1", Name: "h1", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000},
			{ID: "host-2", Name: "h2", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000, CPUUsedMHz: 1000, MemUsedMB: 7000},
			{ID: "host-3", Name: "h3", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000, CPUUsedMHz: 2000, MemUsedMB: 1000}},
		VMs: []vsphere.VM{
			{ID: "vm-1", Name: "web1", Host: "host-1", PowerState: "poweredOn", CPUDemandMHz: 500, MemMB: 500},
			{ID: "vm-2", Name: "db", Host: "host-2", PowerState: "poweredOn", CPUDemandMHz: 1000, MemMB: 7000},
			{ID: "vm-3", Name: "calc", Host: "host-3", PowerState: "poweredOn", CPUDemandMHz: 2000, MemMB: 1000}},
	}}
	st := raftstore.NewMem(raftstore.Config{})
	score := func(host, weight string) float64 {
		w := observingWorker(t, host, dc, st)
		p, diags, err := lcc.Compile("p", []byte("r(x, initial)\na(x, X) :: null.\nparam(mem_weight, "+weight+").\n"), lcc.PolicyRef{Name: "p", Version: 1}, nil)
		if err != nil {
			t.Fatal(diags)
		}
		g := &lcc.Goal{Args: []lcc.Term{lcc.A("web1"), lcc.I(500), lcc.I(500), lcc.NewRef("S")}, Program: p}
		if ok, err := w.cBidScore(context.Background(), g); !ok || err != nil {
			t.Fatalf("bid_score on %s: %v %v", host, ok, err)
		}
		v, _ := g.Number(3)
		return v
	}
	if h2, h3 := score("h2", "0"), score("h3", "0"); h2 <= h3 {
		t.Errorf("CPU only: h2 (less CPU) scores %.3f, h3 %.3f", h2, h3)
	}
	if h2, h3 := score("h2", "0.8"), score("h3", "0.8"); h3 <= h2 {
		t.Errorf("memory weighed: h3 (less memory) scores %.3f, h2 %.3f", h3, h2)
	}
}
