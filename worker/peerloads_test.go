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

// TestTickWhenHoldEnds: while a crossing's hold_time runs, Run's next tick
// comes when it ends (holdDue), not up to an interval later; with no
// crossing, or one already held, the interval alone decides.
func TestTickWhenHoldEnds(t *testing.T) {
	w, err := New(Config{ID: "w", Host: "h", Logger: zerolog.Nop()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	hold := w.params(w.active).HoldTime // the default policy's: 3 s
	if hold <= time.Second {
		t.Fatalf("hold_time %v: this test needs more than a second", hold)
	}
	if d := w.holdDue(now); d != 0 {
		t.Errorf("no crossing: due in %v, want 0", d)
	}
	w.highSince = now.Add(-time.Second)
	if d := w.holdDue(now); d != hold-time.Second {
		t.Errorf("high for 1 s: due in %v, want %v", d, hold-time.Second)
	}
	w.lowSince, w.highSince = now.Add(-hold+200*time.Millisecond), time.Time{}
	if d := w.holdDue(now); d != 200*time.Millisecond {
		t.Errorf("low until 200 ms before hold_time: due in %v, want 200ms", d)
	}
	w.lowSince = now.Add(-hold - time.Second)
	if d := w.holdDue(now); d != 0 {
		t.Errorf("held already: due in %v, want 0", d)
	}
}
