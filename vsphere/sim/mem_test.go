package sim

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/vsphere"
)

// TestMemDCIsStrict: the in-memory datacentre refuses what the strict
// simulator refuses (unknown VM or host, a target in maintenance or
// disconnected, a second relocation while one is in flight) and moves
// demand with the VM when it succeeds.
func TestMemDCIsStrict(t *testing.T) {
	ctx := context.Background()
	dc := NewMemDC(Generate(3, 6, 1, 0.5, 0.45))
	inv, _ := dc.Inventory(ctx)
	vm := inv.VMs[0]
	var target vsphere.Host
	for _, h := range inv.Hosts {
		if h.ID != vm.Host {
			target = h
			break
		}
	}
	for _, c := range []struct {
		name       string
		vmID, host string
		want       error
	}{
		{"unknown VM", "vm-999", target.ID, vsphere.ErrNotFound},
		{"unknown host", vm.ID, "host-999", vsphere.ErrNotFound},
	} {
		if err := dc.Migrate(ctx, c.vmID, c.host, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if err := dc.SetMaintenance(ctx, target.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := dc.Migrate(ctx, vm.ID, target.ID, nil); !errors.Is(err, vsphere.ErrHostUnavailable) {
		t.Errorf("to a host in maintenance: got %v", err)
	}
	dc.SetMaintenance(ctx, target.ID, false)
	dc.SetConnected(target.ID, false)
	if err := dc.Migrate(ctx, vm.ID, target.ID, nil); !errors.Is(err, vsphere.ErrHostUnavailable) {
		t.Errorf("to a disconnected host: got %v", err)
	}
	dc.SetConnected(target.ID, true)
	if dc.Moves() != 0 {
		t.Fatalf("refused relocations counted: %d", dc.Moves())
	}

	dc.MigrateTime = 200 * time.Millisecond
	var wg sync.WaitGroup
	wg.Add(1)
	var first error
	go func() { defer wg.Done(); first = dc.Migrate(ctx, vm.ID, target.ID, nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for st, _ := dc.VMState(ctx, vm.ID); !st.Running && time.Now().Before(deadline); st, _ = dc.VMState(ctx, vm.ID) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := dc.Migrate(ctx, vm.ID, target.ID, nil); !errors.Is(err, vsphere.ErrTaskInProgress) {
		t.Errorf("second relocation in flight: got %v", err)
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
	st, err := dc.VMState(ctx, vm.ID)
	if err != nil || st.Running || st.Host != target.ID {
		t.Fatalf("after the move: %+v %v", st, err)
	}
	after, _ := dc.Inventory(ctx)
	var before, now vsphere.Host
	for i, h := range after.Hosts {
		if h.ID == target.ID {
			before, now = inv.Hosts[i], h
		}
	}
	if now.CPUUsedMHz != before.CPUUsedMHz+vm.CPUDemandMHz || dc.Moves() != 1 {
		t.Fatalf("target load %d -> %d for a VM of %d MHz; moves %d", before.CPUUsedMHz, now.CPUUsedMHz, vm.CPUDemandMHz, dc.Moves())
	}
}

// TestMemDCClusters: hosts go into clusters of the size asked, in layout
// order, the last one smaller, and each worker's scope is its cluster.
func TestMemDCClusters(t *testing.T) {
	inv, _ := NewMemDCClusters(Generate(7, 14, 1, 0.5, 0.45), 3).Inventory(context.Background())
	if len(inv.Clusters) != 3 {
		t.Fatalf("7 hosts in clusters of 3: %d clusters, want 3", len(inv.Clusters))
	}
	per := map[string]int{}
	for i, h := range inv.Hosts {
		per[h.Cluster]++
		if want := inv.Clusters[i/3].ID; h.Cluster != want {
			t.Errorf("host %d is in %q, want %q", i, h.Cluster, want)
		}
	}
	if per["domain-c1"] != 3 || per["domain-c2"] != 3 || per["domain-c3"] != 1 {
		t.Errorf("hosts per cluster: %v", per)
	}
	sc := inv.Scope("domain-c3")
	if len(sc.Hosts) != 1 || len(sc.Clusters) != 1 || len(sc.VMs) != len(inv.VMsOn(sc.Hosts[0].ID)) {
		t.Errorf("scope of domain-c3: %d hosts, %d clusters, %d VMs", len(sc.Hosts), len(sc.Clusters), len(sc.VMs))
	}
	if one, _ := NewMemDCClusters(Generate(7, 14, 1, 0.5, 0.45), 0).Inventory(context.Background()); len(one.Clusters) != 0 || one.Hosts[0].Cluster != "" {
		t.Errorf("size 0: %d clusters, host 0 in %q; want none", len(one.Clusters), one.Hosts[0].Cluster)
	}
}
