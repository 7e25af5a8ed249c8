package raftstore

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"
)

// Mem is the store without Raft or HTTP: one state machine in memory,
// changed by the same commands through the same FSM as a real member, so
// that its rules (lease expiry, lock-delay, needs-reconcile, key checks,
// renewal, fencing tokens, journal bounds) are the store's own and cannot
// drift. It answers the same calls as Client, and stands in for a store
// where Raft would only cost time: the placement benchmark runs thousands
// of workers on it, and unit tests use it.
//
// Like the leader, it puts its clock into every command, fills in the
// configured lock-delay and journal limit, and sweeps expired leases (at
// most once a sweep interval, on the next write).
//
// Its writes take the store's one write path (write.go) as the identity it
// is bound to: NewMem's is nobody, as a store without tokens; As binds a
// worker's, and the state machine then decides that worker's rules (its
// own name, reservations it may give back, its own host) as a member
// does for that worker's token.
type Mem struct {
	*memState
	id Identity
}

type memState struct {
	cfg Config

	mu        sync.Mutex // serialises writes, as raft's log does
	fsm       *FSM
	index     uint64
	lastSweep time.Time
	now       func() time.Time
	loads     loadBook // the load each worker's last heartbeat carried
}

// NewMem returns an empty in-memory store with cfg's lease lock-delay,
// worker TTL, journal limit and sweep interval (DefaultConfig's where
// zero).
func NewMem(cfg Config) *Mem {
	def := DefaultConfig()
	if cfg.LeaseLockDelay == 0 {
		cfg.LeaseLockDelay = def.LeaseLockDelay
	}
	if cfg.WorkerTTL == 0 {
		cfg.WorkerTTL = def.WorkerTTL
	}
	if cfg.JournalLimit == 0 {
		cfg.JournalLimit = def.JournalLimit
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = def.SweepInterval
	}
	return &Mem{memState: &memState{cfg: cfg, fsm: NewFSM(zerolog.Nop()), now: time.Now}}
}

// As is the same store, called as id: a worker's calls through it act in
// that worker's name, and are refused as a member refuses that worker's
// token.
func (m *Mem) As(id Identity) *Mem { return &Mem{memState: m.memState, id: id} }

// AsWorker is As for the worker named name.
func (m *Mem) AsWorker(name string) *Mem { return m.As(Identity{Name: name, Role: RoleWorker}) }

// apply runs one command through the FSM as the next log entry, and
// decodes its data into out (when out is not nil).
func (m *Mem) apply(typ string, body, out any) error {
	if e := settingsOf(m.cfg).prepare(m.id, body); e != nil {
		return e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if typ != cmdSweep && now.Sub(m.lastSweep) >= m.cfg.SweepInterval {
		m.lastSweep = now
		// every heartbeat is applied here: the silent are those written longest ago
		var down []string
		m.fsm.read(func(s *State) {
			for id, w := range s.Workers {
				if !w.Down && now.UnixNano()-w.LastSeen > int64(m.cfg.WorkerTTL) {
					down = append(down, id)
				}
			}
		})
		if _, err := m.applyLocked(cmdSweep, Identity{}, SweepRequest{Down: down}, now); err != nil {
			return err
		}
	}
	r, err := m.applyLocked(typ, m.id, body, now)
	if err != nil {
		return err
	}
	if r.Error != nil {
		return r.Error
	}
	if out != nil {
		return json.Unmarshal(r.Data, out)
	}
	return nil
}

func (m *memState) applyLocked(typ string, by Identity, body any, now time.Time) (*Result, error) {
	data, err := encodeCommandBy(typ, "", by, now.UnixNano(), body)
	if err != nil {
		return nil, err
	}
	m.index++
	res := m.fsm.Apply(&raft.Log{Index: m.index, Term: 1, Type: raft.LogCommand, Data: data})
	r, _ := res.(*Result)
	if r == nil {
		return nil, errf(CodeInternal, "", "unexpected apply response %T", res)
	}
	return r, nil
}

// read runs fn on the state under the read lock.
func read[T any](m *Mem, fn func(s *State) (T, *Error)) (T, error) {
	var out T
	var e *Error
	m.fsm.read(func(s *State) { out, e = fn(s) })
	if e != nil {
		return out, e
	}
	return out, nil
}

// Push pushes a new policy version. Unlike the HTTP API, it does not run
// the checker: callers pass texts they have checked.
func (m *Mem) Push(_ context.Context, req PushRequest) (*PushResult, error) {
	var out PushResult
	return &out, m.apply(cmdPush, &req, &out)
}

// Activate makes a version active.
func (m *Mem) Activate(_ context.Context, name string, version int, who string) (*ActivateResult, error) {
	var out ActivateResult
	return &out, m.apply(cmdActivate, &ActivateRequest{Name: name, Version: version, Who: who}, &out)
}

// ActivePolicy returns the active version of a policy, text included.
func (m *Mem) ActivePolicy(_ context.Context, name string, _ bool) (*PolicyVersion, error) {
	v, err := read(m, func(s *State) (PolicyVersion, *Error) { return s.activeVersion(name) })
	return &v, err
}

// PolicyVersion returns one version, text included.
func (m *Mem) PolicyVersion(_ context.Context, name string, version int) (*PolicyVersion, error) {
	v, err := read(m, func(s *State) (PolicyVersion, *Error) { return s.policyVersion(name, version) })
	return &v, err
}

// Acquire takes every item or none.
func (m *Mem) Acquire(_ context.Context, req AcquireRequest) (*Grant, error) {
	var out Grant
	return &out, m.apply(cmdAcquire, &req, &out)
}

// Renew extends leases held under one token.
func (m *Mem) Renew(_ context.Context, req RenewRequest) (*Grant, error) {
	var out Grant
	return &out, m.apply(cmdRenew, &req, &out)
}

// Release frees leases held under one token.
func (m *Mem) Release(_ context.Context, req RenewRequest) error {
	return m.apply(cmdRelease, &req, nil)
}

// Leases lists held leases under prefix (and VM leases needing
// reconciliation).
func (m *Mem) Leases(_ context.Context, prefix string, _ bool) ([]LeaseView, error) {
	now := m.now().UnixNano()
	return read(m, func(s *State) ([]LeaseView, *Error) { return s.listLeases(prefix, now), nil })
}

// Heartbeat records a live worker.
func (m *Mem) Heartbeat(_ context.Context, req HeartbeatRequest) (*HeartbeatReply, error) {
	if e := settingsOf(m.cfg).prepare(m.id, &req); e != nil {
		return nil, e
	}
	load := req.Load
	req.Load = nil // loads live in memory, never in the log
	var wk Worker
	if err := m.apply(cmdHeartbeat, &req, &wk); err != nil {
		return nil, err
	}
	reply := &HeartbeatReply{Worker: wk}
	if load == nil {
		return reply, nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	reply.PeersKnown = true
	m.loads.put(req.ID, *load, now)
	m.fsm.read(func(st *State) { reply.Peers = loadsOf(m.loads.peers(st, req.ID, load.Cluster, now, m.cfg.WorkerTTL)) })
	return reply, nil
}

// Workers lists live workers.
func (m *Mem) Workers(_ context.Context, _ bool) ([]Worker, error) {
	now := m.now().UnixNano()
	return read(m, func(s *State) ([]Worker, *Error) { return s.liveWorkers(now, m.cfg.WorkerTTL), nil })
}

// AppendJournal appends entries.
func (m *Mem) AppendJournal(_ context.Context, entries ...JournalEntry) error {
	return m.apply(cmdJournal, &JournalRequest{Entries: entries}, nil)
}

// Journal reads entries after index since.
func (m *Mem) Journal(_ context.Context, since uint64, limit int) ([]JournalEntry, error) {
	return read(m, func(s *State) ([]JournalEntry, *Error) { return s.journalSince(since, limit), nil })
}

// Roster reads the live workers and the host states. Mem's heartbeat
// replies carry no roster index (its liveness is each worker's TTL, read
// at the time), so a worker on Mem reads the roster at every tick.
func (m *Mem) Roster(_ context.Context, cluster *string, _ bool) (*Roster, error) {
	now := m.now().UnixNano()
	return read(m, func(s *State) (*Roster, *Error) {
		r := s.roster(now, m.cfg.WorkerTTL, cluster != nil, deref(cluster))
		return &r, nil
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Hosts lists drain requests and reports.
func (m *Mem) Hosts(_ context.Context, _ bool) ([]HostState, error) {
	return read(m, func(s *State) ([]HostState, *Error) { return s.hostList(), nil })
}

// Drain asks for a host to be drained (on) or withdraws the request.
func (m *Mem) Drain(_ context.Context, host, who string, on bool) (*HostState, error) {
	var out HostState
	return &out, m.apply(cmdHostDrain, &HostRequest{Name: host, Who: who, Drain: on}, &out)
}

// ReportHost records a worker's report on its host.
func (m *Mem) ReportHost(_ context.Context, r HostReport) error {
	return m.apply(cmdHostReport, &r, nil)
}
