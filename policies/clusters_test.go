package policies_test

import (
	"strings"
	"testing"
	"time"

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
