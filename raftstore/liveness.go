package raftstore

import (
	"encoding/json"
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
	byCluster map[string]map[string]*loadEntry // cluster -> worker -> its latest load
	clusterOf map[string]string                // worker -> the cluster of its last load
}

// loadEntry is one worker's latest load. It is encoded once, when it
// arrives, since every peer's reply carries it; and whether the state has
// the worker live on the load's host is decided once per roster index
// (State.RosterIndex moves with every change to a worker).
type loadEntry struct {
	load     HostLoad
	json     []byte    // load, encoded
	heard    time.Time // the worker's last heartbeat
	rosterAt uint64    // the roster index live was decided at
	decided  bool
	live     bool // the state has the worker, not down, on load.Host
}

// put records a worker's load, heard at, leaving the cluster it was in
// before.
func (b *loadBook) put(worker string, l HostLoad, at time.Time) {
	if b.byCluster == nil {
		b.byCluster, b.clusterOf = map[string]map[string]*loadEntry{}, map[string]string{}
	}
	if old, ok := b.clusterOf[worker]; ok && old != l.Cluster {
		delete(b.byCluster[old], worker)
	}
	if b.byCluster[l.Cluster] == nil {
		b.byCluster[l.Cluster] = map[string]*loadEntry{}
	}
	enc, err := json.Marshal(l)
	if err != nil { // a HostLoad always encodes
		panic(err)
	}
	e := b.byCluster[l.Cluster][worker]
	if e == nil || e.load.Host != l.Host {
		e = &loadEntry{}
		b.byCluster[l.Cluster][worker] = e
	}
	e.load, e.json, e.heard = l, enc, at
	b.clusterOf[worker] = l.Cluster
}

// heard records a heartbeat that carried no load: the worker's last load
// stays, and the worker counts as heard.
func (b *loadBook) heard(worker string, at time.Time) {
	if c, ok := b.clusterOf[worker]; ok {
		b.byCluster[c][worker].heard = at
	}
}

// peers picks the loads of the workers other than id in cluster that the
// state has as live on the host the load names and that were heard
// within ttl of now, by host.
func (b *loadBook) peers(st *State, id, cluster string, now time.Time, ttl time.Duration) []*loadEntry {
	var out []*loadEntry
	for wid, e := range b.byCluster[cluster] {
		if wid == id || now.Sub(e.heard) > ttl {
			continue
		}
		if !e.decided || e.rosterAt != st.RosterIndex {
			w := st.Workers[wid]
			e.live = w != nil && !w.Down && w.Host == e.load.Host
			e.rosterAt, e.decided = st.RosterIndex, true
		}
		if e.live {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].load.Host < out[j].load.Host })
	return out
}

// loadsOf is the loads of entries.
func loadsOf(es []*loadEntry) []HostLoad {
	if len(es) == 0 {
		return nil
	}
	out := make([]HostLoad, len(es))
	for i, e := range es {
		out[i] = e.load
	}
	return out
}

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
		now := time.Now()
		s.live.beats[req.ID] = now
		if req.Load != nil {
			s.live.loads.put(req.ID, *req.Load, now)
		} else {
			s.live.loads.heard(req.ID, now)
		}
	} else {
		known = false // not leading yet as far as liveness goes: write it
	}
	s.live.mu.Unlock()
	return wk, known && !s.cfg.HeartbeatsToLog
}

// peerLoads is the latest load of every live worker other than id whose
// host is in cluster, heard from within ttl in this term, by host name.
// Each is the load as encoded when it arrived (taken under the lock: a
// later heartbeat replaces an entry's encoding, never changes it).
func (s *Store) peerLoads(id, cluster string, now time.Time, ttl time.Duration) [][]byte {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	var out [][]byte
	s.fsm.read(func(st *State) {
		es := s.live.loads.peers(st, id, cluster, now, ttl)
		out = make([][]byte, len(es))
		for i, e := range es {
			out[i] = e.json
		}
	})
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
