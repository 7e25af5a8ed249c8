package worker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// The placement benchmark runs the negotiation on an in-memory datacentre:
// memDC stands in for vCenter (migrations are instant) and memStore for
// the Raft store (the same lease rules, in a map), and the workers talk
// over lcc.MemTransport. It needs no vcsim, so it scales to hundreds of
// hosts and thousands of VMs, and compares parley's decentralised
// decisions with a centralised greedy optimiser on the same start state.

// memDC is an in-memory vCenter.
type memDC struct {
	mu     sync.Mutex
	hosts  []vsphere.Host
	vms    []vsphere.VM
	vmIdx  map[string]int
	hostIx map[string]int
	inv    *vsphere.Inventory // cached until the next change
	moves  int
}

func newMemDC(l sim.Layout) *memDC {
	dc := &memDC{vmIdx: map[string]int{}, hostIx: map[string]int{}}
	for i, h := range l.Hosts {
		id := fmt.Sprintf("host-%d", i)
		dc.hosts = append(dc.hosts, vsphere.Host{ID: id, Name: h.Name, ConnectionState: "connected",
			CPUCapacityMHz: h.CPUCapacity(), MemCapacityMB: h.MemMB})
		dc.hostIx[id] = i
	}
	for i, v := range l.VMs {
		id := fmt.Sprintf("vm-%d", i)
		dc.vms = append(dc.vms, vsphere.VM{ID: id, Name: v.Name, PowerState: "poweredOn", Host: dc.hosts[v.Host].ID, CPUDemandMHz: v.CPUMHz, MemMB: v.MemMB})
		dc.vmIdx[id] = i
		dc.hosts[v.Host].CPUUsedMHz += v.CPUMHz
		dc.hosts[v.Host].MemUsedMB += v.MemMB
	}
	return dc
}

func (dc *memDC) Inventory(context.Context) (*vsphere.Inventory, error) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.inv == nil {
		dc.inv = &vsphere.Inventory{Hosts: append([]vsphere.Host(nil), dc.hosts...), VMs: append([]vsphere.VM(nil), dc.vms...)}
	}
	return dc.inv, nil
}

func (dc *memDC) Migrate(_ context.Context, vmID, hostID string, _ vsphere.Progress) error {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	i, ok := dc.vmIdx[vmID]
	t, ok2 := dc.hostIx[hostID]
	if !ok || !ok2 {
		return vsphere.ErrNotFound
	}
	v := &dc.vms[i]
	s := dc.hostIx[v.Host]
	dc.hosts[s].CPUUsedMHz -= v.CPUDemandMHz
	dc.hosts[s].MemUsedMB -= v.MemMB
	dc.hosts[t].CPUUsedMHz += v.CPUDemandMHz
	dc.hosts[t].MemUsedMB += v.MemMB
	v.Host = hostID
	dc.inv = nil
	dc.moves++
	return nil
}

func (dc *memDC) VMState(_ context.Context, vmID string) (vsphere.TaskState, error) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return vsphere.TaskState{Host: dc.vms[dc.vmIdx[vmID]].Host}, nil
}

func (dc *memDC) SetMaintenance(_ context.Context, hostID string, on bool) error {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	dc.hosts[dc.hostIx[hostID]].InMaintenance = on
	dc.inv = nil
	return nil
}

// memStore is an in-memory store with the same lease rules.
type memStore struct {
	mu       sync.Mutex
	version  *raftstore.PolicyVersion
	workers  []raftstore.Worker
	leases   map[string]*raftstore.Lease
	reserved map[string]*raftstore.Lease // the reserve/ subset of leases
	token    uint64
}

func (s *memStore) ActivePolicy(context.Context, string, bool) (*raftstore.PolicyVersion, error) {
	return s.version, nil
}

func (s *memStore) PolicyVersion(context.Context, string, int) (*raftstore.PolicyVersion, error) {
	return s.version, nil
}

func (s *memStore) Heartbeat(context.Context, raftstore.HeartbeatRequest) error { return nil }

func (s *memStore) Workers(context.Context, bool) ([]raftstore.Worker, error) { return s.workers, nil }

func (s *memStore) Acquire(_ context.Context, req raftstore.AcquireRequest) (*raftstore.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	held := func(k string) bool { l := s.leases[k]; return l != nil && l.Expiry > now }
	var keys []string
	taken := map[string]bool{}
	for _, it := range req.Items {
		k := it.Key
		if it.AnyOf > 0 {
			k = ""
			for n := 0; n < it.AnyOf; n++ {
				c := it.Key + strconv.Itoa(n)
				if !held(c) && !taken[c] {
					k = c
					break
				}
			}
			if k == "" {
				return nil, raftstore.ErrLeaseHeld
			}
		} else if held(k) {
			return nil, raftstore.ErrLeaseHeld
		}
		taken[k] = true
		keys = append(keys, k)
	}
	s.token++
	exp := now + req.TTLMillis*int64(time.Millisecond)
	for i, k := range keys {
		l := &raftstore.Lease{Key: k, Holder: req.Holder, Token: s.token, Expiry: exp, Attrs: req.Items[i].Attrs}
		s.leases[k] = l
		if strings.HasPrefix(k, "reserve/") {
			s.reserved[k] = l
		}
	}
	return &raftstore.Grant{Holder: req.Holder, Token: s.token, Expiry: exp, Keys: keys}, nil
}

func (s *memStore) Renew(_ context.Context, req raftstore.RenewRequest) (*raftstore.Grant, error) {
	return &raftstore.Grant{Holder: req.Holder, Token: req.Token, Keys: req.Keys}, nil
}

func (s *memStore) Release(_ context.Context, req raftstore.RenewRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range req.Keys {
		if l := s.leases[k]; l != nil && l.Holder == req.Holder && l.Token == req.Token {
			delete(s.leases, k)
			delete(s.reserved, k)
		}
	}
	return nil
}

func (s *memStore) Leases(_ context.Context, prefix string, _ bool) ([]raftstore.LeaseView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	var out []raftstore.LeaseView
	set := s.leases
	if strings.HasPrefix(prefix, "reserve/") {
		set = s.reserved // the one query on every call for proposals: keep it small
	}
	for k, l := range set {
		if strings.HasPrefix(k, prefix) && l.Expiry > now {
			out = append(out, raftstore.LeaseView{Lease: *l, State: "held"})
		}
	}
	return out, nil
}

func (s *memStore) AppendJournal(context.Context, ...raftstore.JournalEntry) error { return nil }

func (s *memStore) Hosts(context.Context, bool) ([]raftstore.HostState, error) { return nil, nil }

func (s *memStore) ReportHost(context.Context, raftstore.HostReport) error { return nil }

// PlacementResult is one method's row of the comparison.
type PlacementResult struct {
	Method     string        `json:"method"`
	StdDev     float64       `json:"stddev"`
	MaxLoad    float64       `json:"max_load"`
	MaxHost    string        `json:"max_host"`
	Migrations int           `json:"migrations"`
	Rounds     int           `json:"rounds"`
	CPU        time.Duration `json:"cpu"`
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadStats(hosts []vsphere.Host) (sd, mx float64, mxHost string) {
	st := vsphere.CPULoadStats(hosts)
	return st.StdDev, st.Max, st.MaxHost
}

// StartState describes the layout before any method runs.
func StartState(l sim.Layout) PlacementResult {
	dc := newMemDC(l)
	sd, mx, mh := loadStats(dc.hosts)
	return PlacementResult{Method: "start", StdDev: sd, MaxLoad: mx, MaxHost: mh}
}

// RunPolicyPlacement runs a shipped policy on the in-memory datacentre in
// rounds (every worker ticks once per round) until a round moves nothing.
// Hold times and smoothing are set to act at once, and the cool-down to
// outlast the run, so that a VM moves at most once.
func RunPolicyPlacement(ctx context.Context, l sim.Layout, policy string, maxRounds int) (PlacementResult, error) {
	src, err := policies.Source(policy)
	if err != nil {
		return PlacementResult{}, err
	}
	text := string(src)
	for old, new := range map[string]string{"param(hold_time, 3).": "param(hold_time, 0).", "param(smoothing_window, 3).": "param(smoothing_window, 1).",
		"param(cooldown, 60).": "param(cooldown, 100000)."} {
		text = strings.Replace(text, old, new, 1)
	}
	dc := newMemDC(l)
	st := &memStore{leases: map[string]*raftstore.Lease{}, reserved: map[string]*raftstore.Lease{},
		version: &raftstore.PolicyVersion{Version: 1, Text: text, SHA256: lcc.HashSource([]byte(text))}}
	tr := lcc.NewMemTransport()
	var ws []*Worker
	for i, h := range l.Hosts {
		id := fmt.Sprintf("w%d", i)
		st.workers = append(st.workers, raftstore.Worker{ID: id, Host: h.Name})
		w, err := New(Config{ID: id, Host: h.Name, Policy: policy, Interval: 10 * time.Second, Transport: tr, Logger: zerolog.Nop()}, dc, st)
		if err != nil {
			return PlacementResult{}, err
		}
		tr.Add(w.Node())
		ws = append(ws, w)
	}
	defer func() {
		for _, w := range ws {
			w.node.Close()
		}
	}()
	for _, w := range ws {
		if err := w.observe(ctx); err != nil {
			return PlacementResult{}, err
		}
	}
	cpu0 := cpuNow()
	rounds := 0
	for rounds < maxRounds {
		rounds++
		before := dc.moves
		for _, w := range ws {
			w.tick(ctx)
		}
		// let the last interactions of the round finish
		for _, w := range ws {
			for w.initiated() > 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
		}
		if dc.moves == before {
			break
		}
	}
	res := PlacementResult{Method: policy, Migrations: dc.moves, Rounds: rounds, CPU: cpuNow() - cpu0}
	res.StdDev, res.MaxLoad, res.MaxHost = loadStats(dc.hosts)
	return res, ctx.Err()
}

// GreedyPlacement is the centralised baseline in the style of DRS: while
// some move lowers the standard deviation of host CPU load, make the one
// that lowers it most, taking VMs from the most loaded hosts and never
// pushing a target above high.
func GreedyPlacement(l sim.Layout, high float64) PlacementResult {
	dc := newMemDC(l)
	cpu0 := cpuNow()
	n := float64(len(dc.hosts))
	load := make([]float64, len(dc.hosts))
	capac := make([]float64, len(dc.hosts))
	var sum, sumSq float64
	for i, h := range dc.hosts {
		capac[i] = float64(h.CPUCapacityMHz)
		load[i] = float64(h.CPUUsedMHz) / capac[i]
		sum += load[i]
		sumSq += load[i] * load[i]
	}
	variance := func(s, sq float64) float64 { m := s / n; return sq/n - m*m }
	onHost := make([][]int, len(dc.hosts))
	for i, v := range dc.vms {
		onHost[dc.hostIx[v.Host]] = append(onHost[dc.hostIx[v.Host]], i)
	}
	moves, rounds := 0, 0
	const sources = 16
	for {
		rounds++
		order := make([]int, len(load))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return load[order[a]] > load[order[b]] })
		cur := variance(sum, sumSq)
		best, bestVM, bestS, bestT := cur-1e-12, -1, -1, -1
		for _, s := range order[:min(sources, len(order))] {
			for _, vi := range onHost[s] {
				d := float64(dc.vms[vi].CPUDemandMHz)
				ls := load[s] - d/capac[s]
				for t := range load {
					if t == s {
						continue
					}
					lt := load[t] + d/capac[t]
					if lt > high {
						continue
					}
					ns := sum - load[s] - load[t] + ls + lt
					nsq := sumSq - load[s]*load[s] - load[t]*load[t] + ls*ls + lt*lt
					if v := variance(ns, nsq); v < best {
						best, bestVM, bestS, bestT = v, vi, s, t
					}
				}
			}
		}
		if bestVM < 0 {
			break
		}
		d := float64(dc.vms[bestVM].CPUDemandMHz)
		nls, nlt := load[bestS]-d/capac[bestS], load[bestT]+d/capac[bestT]
		sum += nls + nlt - load[bestS] - load[bestT]
		sumSq += nls*nls + nlt*nlt - load[bestS]*load[bestS] - load[bestT]*load[bestT]
		load[bestS], load[bestT] = nls, nlt
		for k, vi := range onHost[bestS] {
			if vi == bestVM {
				onHost[bestS] = append(onHost[bestS][:k], onHost[bestS][k+1:]...)
				break
			}
		}
		onHost[bestT] = append(onHost[bestT], bestVM)
		dc.Migrate(context.Background(), dc.vms[bestVM].ID, dc.hosts[bestT].ID, nil)
		moves++
	}
	res := PlacementResult{Method: "greedy (central)", Migrations: moves, Rounds: rounds, CPU: cpuNow() - cpu0}
	res.StdDev, res.MaxLoad, res.MaxHost = loadStats(dc.hosts)
	return res
}
