package worker

import (
	"testing"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/vsphere"
)

// TestTowardMeanPicksTheOptimisersMove: for a policy that balances around
// the mean, the VM offered is the one whose move to the least loaded peer
// with room brings the two loads closest (what the central greedy
// optimiser moves), not the smallest that gets the host under its
// ceiling; a move that no peer has room for, or that would not lower the
// variance, is not chosen.
func TestTowardMeanPicksTheOptimisersMove(t *testing.T) {
	w := &Worker{}
	host := vsphere.Host{ID: "host-1", Name: "h1", ConnectionState: "connected", CPUCapacityMHz: 10000, CPUUsedMHz: 9000}
	s := snapshot{host: host, inst: 0.9, inv: &vsphere.Inventory{Hosts: []vsphere.Host{host,
		{ID: "host-2", Name: "h2", ConnectionState: "connected", CPUCapacityMHz: 10000, CPUUsedMHz: 1000},
		{ID: "host-3", Name: "h3", ConnectionState: "connected", CPUCapacityMHz: 10000, CPUUsedMHz: 4900},
		{ID: "host-4", Name: "h4", ConnectionState: "connected", InMaintenance: true, CPUCapacityMHz: 10000}}}}
	cands := []vsphere.VM{{Name: "small", CPUDemandMHz: 2000}, {Name: "mid", CPUDemandMHz: 3900}, {Name: "large", CPUDemandMHz: 6000}}
	// 0.9 and 0.1: the ideal move is 4000 MHz; "small" is the smallest that
	// gets h1 under 0.7, "mid" the closest to the ideal; "large" would
	// put h2 over the ceiling
	v, ok := w.towardMean(nil, s, cands, 0.7, 0.9, 0)
	if !ok || v.Name != "mid" {
		t.Fatalf("picked %q (%v), want mid", v.Name, ok)
	}
	// a move that gets h1 under its ceiling at once comes first: with
	// 5000 MHz to shed, large (which fits h2 exactly) rather than mid; with
	// 6500, none would, and the best move counts
	if v, ok := w.towardMean(nil, s, cands, 0.7, 0.9, 5000); !ok || v.Name != "large" {
		t.Fatalf("5000 MHz to shed: picked %q (%v), want large, which is enough", v.Name, ok)
	}
	if v, ok := w.towardMean(nil, s, cands, 0.7, 0.9, 6500); !ok || v.Name != "mid" {
		t.Fatalf("nothing enough: picked %q (%v), want mid", v.Name, ok)
	}
	// a rule keeps mid off h2: small to h2, or mid to h3, whichever evens more
	rule, err := lcc.ParseTerm("must_not_run_on(mid, h2)")
	if err != nil {
		t.Fatal(err)
	}
	prog := &lcc.Program{Model: &lcc.Model{Facts: []*lcc.Fact{{Term: rule}}}}
	if v, ok := w.towardMean(prog, s, cands, 0.7, 0.9, 0); !ok || v.Name != "small" {
		t.Fatalf("with mid kept off h2: picked %q (%v), want small", v.Name, ok)
	}
	// no memory for mid on h2
	s.inv.Hosts[1].MemCapacityMB, s.inv.Hosts[1].MemUsedMB = 10000, 8000
	cands[1].MemMB = 1500
	if v, ok := w.towardMean(nil, s, cands, 0.7, 0.9, 0); !ok || v.Name != "small" {
		t.Fatalf("with no memory for mid on h2: picked %q (%v), want small", v.Name, ok)
	}
	s.inv.Hosts[1].MemCapacityMB, s.inv.Hosts[1].MemUsedMB, cands[1].MemMB = 0, 0, 0
	// with room only on h3 (at 0.49): the ideal is 2050 MHz
	s.inv.Hosts[1].CPUUsedMHz = 6900
	if v, ok := w.towardMean(nil, s, cands, 0.7, 0.9, 0); !ok || v.Name != "small" {
		t.Fatalf("with room on h3 alone: picked %q (%v), want small", v.Name, ok)
	}
	// nobody has room for any of them
	s.inv.Hosts[2].CPUUsedMHz = 6900
	if v, ok := w.towardMean(nil, s, cands, 0.7, 0.9, 0); ok {
		t.Fatalf("no room anywhere, yet picked %q", v.Name)
	}
	// a host at the mean already: no move lowers the variance
	s.inst, s.inv.Hosts[0].CPUUsedMHz = 0.5, 5000
	s.inv.Hosts[1].CPUUsedMHz, s.inv.Hosts[2].CPUUsedMHz = 5000, 5000
	if v, ok := w.towardMean(nil, s, cands, 1, 0.9, 0); ok {
		t.Fatalf("a balanced fleet, yet picked %q", v.Name)
	}
}
