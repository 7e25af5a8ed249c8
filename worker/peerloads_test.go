package worker

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// peersDC is fakeDC (standing in for vCenter) that takes its peers' hosts
// as vsphere.Watched does.
type peersDC struct {
	*fakeDC
	peers []vsphere.Host
	set   int
}

func (d *peersDC) SetPeers(peers []vsphere.Host, _ time.Time) { d.peers, d.set = peers, d.set+1 }

// TestHeartbeatsReportLoadsToPeers: each tick a worker's heartbeat carries
// its host's load as it read it, and the store's reply hands the other
// workers' hosts in the same cluster to a vCenter client that takes them;
// one that does not is left alone.
func TestHeartbeatsReportLoadsToPeers(t *testing.T) {
	st := raftstore.NewMem(raftstore.Config{}) // stands in for the store: the same FSM
	inv := &vsphere.Inventory{Hosts: []vsphere.Host{
		{ID: "host-1", Name: "h1", Cluster: "domain-c1", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000, CPUUsedMHz: 9000, MemUsedMB: 1000},
		{ID: "host-2", Name: "h2", Cluster: "domain-c1", ConnectionState: "connected", CPUCapacityMHz: 20000, MemCapacityMB: 10000, CPUUsedMHz: 3000, MemUsedMB: 2000},
		{ID: "host-3", Name: "h3", Cluster: "domain-c2", ConnectionState: "connected", CPUCapacityMHz: 10000, MemCapacityMB: 10000, CPUUsedMHz: 5000, MemUsedMB: 2000}}}
	dcs := map[string]*peersDC{}
	var ws []*Worker
	for _, h := range []string{"h1", "h2", "h3"} {
		dc := &peersDC{fakeDC: &fakeDC{running: map[string]bool{}, inv: inv}}
		var vs VSphere = dc
		if h == "h3" {
			vs = dc.fakeDC // takes no peers
		}
		w, err := New(Config{ID: "w" + h, Host: h, Logger: zerolog.Nop(), Interval: time.Second}, vs, st)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		dcs[h], ws = dc, append(ws, w)
	}
	ctx := context.Background()
	for range 3 { // the first heartbeats carry no load yet, the second ones find not all peers
		for _, w := range ws {
			w.Tick(ctx)
		}
	}
	got := dcs["h1"].peers
	if len(got) != 1 || got[0].Name != "h2" || got[0].CPUUsedMHz != 3000 || got[0].CPUCapacityMHz != 20000 || got[0].MemUsedMB != 2000 || !got[0].Available() {
		t.Fatalf("h1's peers: %+v, want h2 alone with its load", got)
	}
	if p := dcs["h2"].peers; len(p) != 1 || p[0].Name != "h1" || p[0].CPUUsedMHz != 9000 {
		t.Fatalf("h2's peers: %+v, want h1", p)
	}
	if dcs["h3"].set != 0 {
		t.Error("peers were handed to a vCenter client that does not take them")
	}
}
