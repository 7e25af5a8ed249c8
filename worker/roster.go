package worker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/parleyhq/parley/raftstore"
)

// rosterRefresh is how often a worker reads the roster even when the
// store's heartbeat replies say it has not changed.
const rosterRefresh = 30 * time.Second

// followRoster reads the roster (the live peers, their addresses, and the
// operators' drain requests) when the store's roster index, which the
// leader's heartbeat reply carries, is not the one the worker last read;
// when the reply did not say (0: a heartbeat that was written, or Mem);
// and every rosterRefresh. At steady state a worker costs the store one
// heartbeat a tick, not a listing of every worker and host besides: the
// listings grow with the fleet, and every worker made them.
func (w *Worker) followRoster(ctx context.Context, index uint64) error {
	w.mu.Lock()
	current := index != 0 && index == w.rosterIndex && time.Since(w.rosterAt) < rosterRefresh
	w.mu.Unlock()
	if current {
		return nil
	}
	return w.readRoster(ctx)
}

// readRoster reads the roster from any member and takes it in: once the
// worker knows its host's cluster, only that cluster's workers (it
// negotiates with no others) and their hosts' states. The index kept is
// the one the roster is as of: a member behind the leader answers with
// an older one, and the next tick reads again.
func (w *Worker) readRoster(ctx context.Context) error {
	var cluster *string
	w.mu.Lock()
	if w.inv != nil {
		if h, ok := w.inv.Host(w.cfg.Host); ok {
			cluster = &h.Cluster
		}
	}
	w.mu.Unlock()
	r, err := w.store.Roster(ctx, cluster, true)
	if missingRoute(err) {
		r, err = w.rosterFromLists(ctx) // a store from before the roster, during an upgrade
	}
	if err != nil {
		return err
	}
	peers := make(map[string]raftstore.Worker, len(r.Workers))
	addrs := make(map[string]string, len(r.Workers))
	for _, x := range r.Workers {
		peers[x.ID] = x
		addrs[x.ID] = x.Addr
	}
	var mine *raftstore.HostState
	for i := range r.Hosts {
		if r.Hosts[i].Name == w.cfg.Host && r.Hosts[i].Drain {
			mine = &r.Hosts[i]
		}
	}
	w.mu.Lock()
	w.peers, w.drain = peers, mine
	w.rosterIndex, w.rosterAt = r.Index, time.Now()
	w.mu.Unlock()
	w.tr.setPeers(addrs)
	return nil
}

// missingRoute says whether the store answered 404 for the route itself:
// a store older than the call (an unknown name gets its own not_found).
func missingRoute(err error) bool {
	var e *raftstore.Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound && e.Code != raftstore.CodeNotFound
}

// rosterFromLists reads the roster as workers did before the store kept
// one: every live worker and every host state, with no index (so the
// next tick reads them again).
func (w *Worker) rosterFromLists(ctx context.Context) (*raftstore.Roster, error) {
	ws, err := w.store.Workers(ctx, true)
	if err != nil {
		return nil, err
	}
	hs, err := w.store.Hosts(ctx, true)
	if err != nil {
		return nil, err
	}
	return &raftstore.Roster{Workers: ws, Hosts: hs}, nil
}

// peerAddrs reads the roster again for the transport, which asks when a
// message names a peer it does not know.
func (w *Worker) peerAddrs(ctx context.Context) (map[string]string, error) {
	if err := w.readRoster(ctx); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.peers))
	for id, p := range w.peers {
		out[id] = p.Addr
	}
	return out, nil
}
