package worker

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// statsDC is fakeDC (standing in for vCenter) that also answers realtime
// statistics, as vsphere.Client.HostStats does against PerformanceManager.
type statsDC struct {
	*fakeDC
	stats vsphere.HostStats
	err   error
	asked int
}

func (d *statsDC) HostStats(context.Context, vsphere.Host) (vsphere.HostStats, error) {
	d.asked++
	return d.stats, d.err
}

// TestRealtimeStatsFeedTheLoad: with --stats realtime the host's load is
// vCenter's realtime sample, quickStats where vCenter has none; by
// default it is quickStats and the statistics are never asked for.
func TestRealtimeStatsFeedTheLoad(t *testing.T) {
	newDC := func() *statsDC {
		return &statsDC{fakeDC: &fakeDC{running: map[string]bool{}, inv: &vsphere.Inventory{Hosts: []vsphere.Host{
			{ID: "host-1", Name: "h1", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000, CPUUsedMHz: 9000, MemUsedMB: 1000}}}},
			stats: vsphere.HostStats{CPU: 0.25, Mem: 0.5}}
	}
	load := func(stats string, dc *statsDC) (float64, float64) {
		t.Helper()
		w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop(), Stats: stats}, dc, raftstore.NewMem(raftstore.Config{}))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := w.Observe(context.Background()); err != nil {
			t.Fatal(err)
		}
		s, err := w.snap()
		if err != nil {
			t.Fatal(err)
		}
		return s.cpu, s.mem
	}
	dc := newDC()
	if cpu, mem := load(StatsRealtime, dc); cpu != 0.25 || mem != 0.5 || dc.asked != 1 {
		t.Fatalf("realtime: load %.2f CPU %.2f memory (asked %d), want the sample's 0.25 and 0.50", cpu, mem, dc.asked)
	}
	dc = newDC()
	dc.err = vsphere.ErrNoStats
	if cpu, mem := load(StatsRealtime, dc); cpu != 0.9 || mem != 0.1 {
		t.Fatalf("realtime without samples: load %.2f CPU %.2f memory, want quickStats' 0.90 and 0.10", cpu, mem)
	}
	dc = newDC()
	if cpu, _ := load("", dc); cpu != 0.9 || dc.asked != 0 {
		t.Fatalf("default: load %.2f (asked %d times), want quickStats' 0.90 and no question", cpu, dc.asked)
	}
	if _, err := New(Config{ID: "w1", Host: "h1", Stats: "hourly"}, newDC(), raftstore.NewMem(raftstore.Config{})); err == nil {
		t.Fatal("stats \"hourly\" accepted")
	}
}
