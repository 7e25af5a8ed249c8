package vsphere_test

import (
	"math"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/performance"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// TestQueryPerfFollowsTheLoadModel: the simulator's PerformanceManager
// answers a host's cpu.usage.average and mem.active.average from the same
// load model as quickStats, oldest sample first, through the public API
// (as govc metrics.sample asks); vsphere.Client.HostStats reads the latest
// sample and agrees with quickStats, before and after the host's demand
// changes.
func TestQueryPerfFollowsTheLoadModel(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 3, VMs: 9, Seed: 4, PerfEvery: 100 * time.Millisecond})
	ctx := ctxT(t)
	time.Sleep(450 * time.Millisecond) // a few samples
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := inv.Hosts[0]
	quick := func(h vsphere.Host) (float64, float64) {
		return float64(h.CPUUsedMHz) / float64(h.CPUCapacityMHz), float64(h.MemUsedMB) / float64(h.MemCapacityMB)
	}

	gc, err := govmomi.NewClient(ctx, s.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Logout(ctx)
	m := performance.NewManager(gc.Client)
	ref := types.ManagedObjectReference{Type: "HostSystem", Value: h.ID}
	res, err := m.SampleByName(ctx, types.PerfQuerySpec{IntervalId: 20, MaxSample: 100}, []string{"cpu.usage.average", "mem.active.average"}, []types.ManagedObjectReference{ref})
	if err != nil {
		t.Fatal(err)
	}
	series, err := m.ToMetricSeries(ctx, res)
	if err != nil || len(series) != 1 {
		t.Fatalf("series: %v %v", series, err)
	}
	samples := series[0].SampleInfo
	if len(samples) < 3 {
		t.Fatalf("%d samples after 450 ms at one every 100 ms", len(samples))
	}
	for i := 1; i < len(samples); i++ {
		if !samples[i].Timestamp.After(samples[i-1].Timestamp) {
			t.Fatalf("samples not oldest first: %v then %v", samples[i-1].Timestamp, samples[i].Timestamp)
		}
	}
	qc, qm := quick(h)
	for _, v := range series[0].Value {
		last := float64(v.Value[len(v.Value)-1])
		switch v.Name {
		case "cpu.usage.average":
			if math.Abs(last/10000-qc) > 0.02 {
				t.Errorf("cpu.usage.average %.2f%%, quickStats %.2f%%", last/100, qc*100)
			}
		case "mem.active.average":
			if math.Abs(last/1024/float64(h.MemCapacityMB)-qm) > 0.02 {
				t.Errorf("mem.active.average %.0f KB, quickStats %.3f of %d MB", last, qm, h.MemCapacityMB)
			}
		}
	}

	check := func(h vsphere.Host) {
		t.Helper()
		st, err := c.HostStats(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		qc, qm := quick(h)
		if math.Abs(st.CPU-qc) > 0.02 || math.Abs(st.Mem-qm) > 0.02 {
			t.Fatalf("HostStats %.3f CPU %.3f memory; quickStats %.3f and %.3f", st.CPU, st.Mem, qc, qm)
		}
	}
	check(h)
	vm := inv.VMsOn(h.ID)[0]
	if err := s.SetDemand(vm.Name, vm.CPUDemandMHz+h.CPUCapacityMHz/4, vm.MemMB+h.MemCapacityMB/8); err != nil {
		t.Fatal(err)
	}
	inv, err = c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := inv.Host(h.ID)
	if after.CPUUsedMHz == h.CPUUsedMHz {
		t.Fatal("the demand change did not reach quickStats")
	}
	check(after)
}
