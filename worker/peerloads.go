package worker

import (
	"time"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// Peers' loads through the store. Each heartbeat carries this host's
// load as the worker last read it, and the leader answers with the
// latest loads of the other live workers' hosts in the same cluster
// (kept in its memory, never in the log). A vCenter client that can take
// them (vsphere.Watched, --inventory watch) uses them in place of
// reading every host from vCenter: what a worker asks of vCenter at
// steady state is then about its own host alone.

// peerSetter is a vCenter client that takes the peers' hosts as their
// workers report them.
type peerSetter interface {
	SetPeers(peers []vsphere.Host, at time.Time)
}

// ownLoad is this host as the last observation read it, for the
// heartbeat; nil before the first.
func (w *Worker) ownLoad() *raftstore.HostLoad {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inv == nil {
		return nil
	}
	h, ok := w.inv.Host(w.cfg.Host)
	if !ok {
		return nil
	}
	return &raftstore.HostLoad{Host: h.Name, Cluster: h.Cluster, ConnectionState: h.ConnectionState, InMaintenance: h.InMaintenance,
		CPUUsedMHz: h.CPUUsedMHz, CPUCapacityMHz: h.CPUCapacityMHz, MemUsedMB: h.MemUsedMB, MemCapacityMB: h.MemCapacityMB,
		At: w.observed.UnixNano()}
}

// notePeers hands the peers' loads of a heartbeat's reply to the vCenter
// client, when it takes them.
func (w *Worker) notePeers(r *raftstore.HeartbeatReply) {
	ps := w.caps.peers
	if ps == nil || r == nil || !r.PeersKnown {
		return
	}
	hosts := make([]vsphere.Host, 0, len(r.Peers))
	for _, l := range r.Peers {
		if l.Host == w.cfg.Host {
			continue
		}
		hosts = append(hosts, vsphere.Host{Name: l.Host, Cluster: l.Cluster, ConnectionState: l.ConnectionState, InMaintenance: l.InMaintenance,
			CPUUsedMHz: l.CPUUsedMHz, CPUCapacityMHz: l.CPUCapacityMHz, MemUsedMB: l.MemUsedMB, MemCapacityMB: l.MemCapacityMB})
	}
	ps.SetPeers(hosts, time.Now())
}
