package raftstore

import (
	"errors"
	"sort"
	"sync"
	"time"
)

// Liveness that costs the log nothing at steady state. A worker's
// heartbeat is written to the log only when it says something new: a
// worker not yet known, one whose host or address changed, or one that
// was marked down. Every other heartbeat is kept by the leader alone, in
// memory, for its term. The leader's sweep marks down, in one write, the
// workers it heard nothing from within the worker TTL (counting from the
// start of its term for those it has not heard yet, so a new leader gives
// everyone one TTL). Followers and stale reads see liveness through the
// log: a worker is live until it is marked down.
type liveness struct {
	mu        sync.Mutex
	beats     map[string]time.Time // worker -> last heartbeat this leader heard
	loads     loadBook             // the load each worker's last heartbeat carried
	termStart time.Time
}

// loadBook keeps the latest load of each worker by cluster, so that a
// heartbeat's peers are picked among its cluster's workers rather than
// the whole fleet's (a thousand workers heartbeating every 2 s would
// otherwise cost a million look-ups a second).
type loadBook struct {
	byCluster map[string]map[string]HostLoad // cluster -> worker -> load
	clusterOf map[string]string              // worker -> the cluster of its last load
}

// put records a worker's load, leaving the cluster it was in before.
func (b *loadBook) put(worker string, l HostLoad) {
	if b.byCluster == nil {
		b.byCluster, b.clusterOf = map[string]map[string]HostLoad{}, map[string]string{}
	}
	if old, ok := b.clusterOf[worker]; ok && old != l.Cluster {
		delete(b.byCluster[old], worker)
	}
	if b.byCluster[l.Cluster] == nil {
		b.byCluster[l.Cluster] = map[string]HostLoad{}
	}
	b.byCluster[l.Cluster][worker], b.clusterOf[worker] = l, l.Cluster
}

// in is the loads of a cluster's workers, by worker.
func (b *loadBook) in(cluster string) map[string]HostLoad { return b.byCluster[cluster] }

// leading resets the leader-local record at the start of a term.
func (l *liveness) leading(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.beats, l.loads, l.termStart = map[string]time.Time{}, loadBook{}, now
}

// beat records a heartbeat on the leader and reports whether the log
// already says all it says (so nothing need be written), with the
// worker as the log has it.
func (s *Store) beat(req HeartbeatRequest) (Worker, bool) {
	if !s.IsLeader() {
		return Worker{}, false
	}
	var wk Worker
	known := false
	s.fsm.read(func(st *State) {
		if w := st.Workers[req.ID]; w != nil {
			wk, known = *w, !w.Down && w.Host == req.Host && w.Addr == req.Addr && w.Cluster == req.Cluster
		}
	})
	s.live.mu.Lock()
	if s.live.beats != nil {
		s.live.beats[req.ID] = time.Now()
		if req.Load != nil {
			s.live.loads.put(req.ID, *req.Load)
		}
	} else {
		known = false // not leading yet as far as liveness goes: write it
	}
	s.live.mu.Unlock()
	return wk, known && !s.cfg.HeartbeatsToLog
}

// peerLoads is the latest load of every live worker other than id whose
// host is in cluster, heard from within ttl in this term, by host name.
func (s *Store) peerLoads(id, cluster string, now time.Time, ttl time.Duration) []HostLoad {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	var out []HostLoad
	s.fsm.read(func(st *State) {
		out = st.peerLoads(id, cluster, s.live.loads.in(cluster), func(wid string) bool { return now.Sub(s.live.beats[wid]) <= ttl })
	})
	return out
}

// peerLoads picks, from the loads the leader (or Mem) keeps by worker,
// those of the workers other than id in cluster that the state has as
// live on the host the load names and that were heard recently.
func (st *State) peerLoads(id, cluster string, loads map[string]HostLoad, recent func(worker string) bool) []HostLoad {
	var out []HostLoad
	for wid, l := range loads {
		w := st.Workers[wid]
		if wid == id || l.Cluster != cluster || w == nil || w.Down || w.Host != l.Host || !recent(wid) {
			continue
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// silent lists the workers the log has as live that this leader has not
// heard from within ttl.
func (s *Store) silent(now time.Time, ttl time.Duration) []string {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	if s.live.beats == nil {
		return nil
	}
	var out []string
	s.fsm.read(func(st *State) {
		for id, w := range st.Workers {
			if w.Down {
				continue
			}
			last, ok := s.live.beats[id]
			if !ok || last.Before(s.live.termStart) {
				last = s.live.termStart
			}
			if now.Sub(last) > ttl {
				out = append(out, id)
			}
		}
	})
	return out
}

// keepAliveEvery is how often an idle leader writes a sweep all the
// same, so that a leader that can no longer commit turns unready
// (appliesStalled).
const keepAliveEvery = 5 * time.Second

// sweepIfDue applies a sweep when it would change something (a lease to
// drop, a worker to mark down or forget) or when nothing was applied for
// keepAliveEvery.
func (s *Store) sweepIfDue() {
	now := time.Now()
	down := s.silent(now, s.cfg.WorkerTTL)
	due := len(down) > 0 || now.Sub(time.Unix(0, s.lastApply.Load())) >= keepAliveEvery
	if !due {
		s.fsm.read(func(st *State) { due = st.sweepDue(now.UnixNano()) })
	}
	if !due {
		return
	}
	if _, err := s.Apply(cmdSweep, "", SweepRequest{Down: down}); err != nil && !errors.Is(err, ErrNotLeader) {
		s.log.Debug().Err(err).Msg("sweep")
	} else if len(down) > 0 {
		s.log.Info().Strs("workers", down).Dur("ttl", s.cfg.WorkerTTL).Msg("workers marked down: no heartbeat within the worker TTL")
	}
}
