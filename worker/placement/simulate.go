package placement

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/parleyhq/parley/worker"
)

// Simulation is what 'parley policy simulate' reports: the datacentre
// before and after, every migration the policy made and when, and the
// negotiations that ended without one.
type Simulation struct {
	Policy     string         `json:"policy"`
	Ticks      int            `json:"ticks"`
	Before     Snapshot       `json:"before"`
	After      Snapshot       `json:"after"`
	Migrations []SimMigration `json:"migrations"`
	Outcomes   map[string]int `json:"outcomes"` // agent outcomes by kind: closed, failed, timed_out
	Notes      []string       `json:"notes,omitempty"`
	// TargetPeak is the highest CPU load of a host right after the tick in
	// which it received a VM: what a policy's high threshold promises.
	TargetPeak float64 `json:"target_peak"`
	// HostStates are the workers' reports on their hosts (drains, standby,
	// DRS), by host name: "state: reason".
	HostStates map[string]string `json:"host_states,omitempty"`
	Journal    []JournalRecord   `json:"journal,omitempty"`
}

// Snapshot is the fleet at one moment.
type Snapshot struct {
	StdDev  float64     `json:"stddev"`
	MaxLoad float64     `json:"max_load"`
	MaxHost string      `json:"max_host"`
	Hosts   []HostState `json:"hosts"`
}

// HostState is one host's load and VM count.
type HostState struct {
	Name          string  `json:"name"`
	CPU           float64 `json:"cpu"` // used / capacity
	Mem           float64 `json:"mem"`
	VMs           int     `json:"vms"`
	InMaintenance bool    `json:"in_maintenance,omitempty"`
}

// SimMigration is one relocation, with the tick it happened in (from 1).
type SimMigration struct {
	VM   string `json:"vm"`
	From string `json:"from"`
	To   string `json:"to"`
	Tick int    `json:"tick"`
}

// JournalRecord is a journal entry the workers wrote, by kind.
type JournalRecord struct {
	Kind    string `json:"kind"`
	VM      string `json:"vm,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Worker  string `json:"worker,omitempty"`
}

// SimConfig says what to simulate: the policy's text (checked by the
// caller), the datacentre, drains to request before the first tick, and
// how many ticks at most. Every worker ticks once per tick; the run stops
// early after a tick that moves nothing and starts nothing.
type SimConfig struct {
	Name   string
	Text   string
	Layout sim.Layout
	Drain  []string // host names to drain
	Ticks  int
	// Extra are further policies the fleet follows beside Name (evacuate is
	// always pushed: a drain needs it).
	Extra map[string]string
}

// instant makes a policy's timing parameters fit instantaneous ticks:
// loads are not smoothed and hold at once, and a moved VM does not move
// again within the run. Simulate says so in its notes.
func instant(text string) string {
	for old, new := range map[string]string{"param(hold_time, 3).": "param(hold_time, 0).", "param(smoothing_window, 3).": "param(smoothing_window, 1).",
		"param(cooldown, 60).": "param(cooldown, 100000)."} {
		text = strings.Replace(text, old, new, 1)
	}
	return text
}

// Simulate runs the workers' real code (constraints, interpreter, the
// in-memory store and transport) on an in-memory copy of a datacentre.
// Nothing outside the process is read or changed.
func Simulate(ctx context.Context, cfg SimConfig) (*Simulation, error) {
	if cfg.Ticks <= 0 {
		cfg.Ticks = 20
	}
	dc := sim.NewMemDC(cfg.Layout)
	st := raftstore.NewMem(raftstore.Config{WorkerTTL: 24 * time.Hour})
	texts := map[string]string{cfg.Name: cfg.Text}
	for n, t := range cfg.Extra {
		if _, ok := texts[n]; !ok {
			texts[n] = t
		}
	}
	for n, t := range texts {
		if _, err := st.Push(ctx, raftstore.PushRequest{Name: n, Text: instant(t), Author: "simulate"}); err != nil {
			return nil, fmt.Errorf("policy %s: %w", n, err)
		}
	}
	hostNames := map[string]bool{}
	for _, h := range cfg.Layout.Hosts {
		hostNames[h.Name] = true
	}
	for _, h := range cfg.Drain {
		if !hostNames[h] {
			return nil, fmt.Errorf("drain %s: no such host", h)
		}
		if _, err := st.Drain(ctx, h, "simulate", true); err != nil {
			return nil, err
		}
	}
	out := &Simulation{Policy: cfg.Name, Outcomes: map[string]int{},
		Notes: []string{"ticks are instantaneous: hold_time 0, smoothing_window 1, and a moved VM does not move again (cooldown outlasts the run)"}}
	var mu sync.Mutex
	observe := func(o lcc.Outcome) {
		if o.Declined {
			return // an opening condition that did not hold: nothing happened
		}
		mu.Lock()
		out.Outcomes[fmt.Sprint(o.Status)]++
		mu.Unlock()
	}
	tr := lcc.NewMemTransport()
	var ws []*worker.Worker
	defer func() {
		for _, w := range ws {
			w.Close()
		}
	}()
	for i, h := range cfg.Layout.Hosts {
		id := fmt.Sprintf("w%d", i)
		if _, err := st.Heartbeat(ctx, raftstore.HeartbeatRequest{ID: id, Host: h.Name}); err != nil {
			return nil, err
		}
		w, err := worker.New(worker.Config{ID: id, Host: h.Name, Policy: cfg.Name, Interval: 10 * time.Second, Transport: tr,
			Logger: zerolog.Nop(), Observer: observe}, dc, st.AsWorker(id)) // in its own name, as a worker's token
		if err != nil {
			return nil, err
		}
		tr.Add(w.Node())
		ws = append(ws, w)
	}
	for _, w := range ws {
		if err := w.Observe(ctx); err != nil {
			return nil, err
		}
	}
	out.Before = snapshotOf(dc.Hosts(), dc)
	seen := 0
	for out.Ticks < cfg.Ticks && ctx.Err() == nil {
		out.Ticks++
		mu.Lock()
		started := sum(out.Outcomes)
		mu.Unlock()
		for _, w := range ws {
			w.Tick(ctx)
		}
		for _, w := range ws {
			for w.Initiated() > 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
		}
		rec := dc.Record()
		loads := map[string]float64{}
		for _, h := range dc.Hosts() {
			loads[h.Name] = share(h.CPUUsedMHz, h.CPUCapacityMHz)
		}
		for _, m := range rec[seen:] {
			out.Migrations = append(out.Migrations, SimMigration{VM: m.VM, From: m.From, To: m.To, Tick: out.Ticks})
			out.TargetPeak = max(out.TargetPeak, loads[m.To])
		}
		moved := len(rec) > seen
		seen = len(rec)
		mu.Lock()
		quiet := !moved && sum(out.Outcomes) == started
		mu.Unlock()
		if quiet {
			break
		}
	}
	out.After = snapshotOf(dc.Hosts(), dc)
	if hs, err := st.Hosts(ctx, false); err == nil {
		out.HostStates = map[string]string{}
		for _, h := range hs {
			if h.State != "" {
				out.HostStates[h.Name] = h.State + ": " + h.Reason
			}
		}
	}
	if js, err := st.Journal(ctx, 0, 100000); err == nil {
		for _, j := range js {
			if j.Kind != "migration" && j.Kind != "audit" {
				out.Journal = append(out.Journal, JournalRecord{Kind: j.Kind, VM: j.VM, Outcome: j.Outcome, Reason: j.Reason, Worker: j.Worker})
			}
		}
	}
	return out, ctx.Err()
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func snapshotOf(hosts []vsphere.Host, dc *sim.MemDC) Snapshot {
	sd, mx, mh := loadStats(hosts)
	s := Snapshot{StdDev: sd, MaxLoad: mx, MaxHost: mh}
	inv, _ := dc.Inventory(context.Background())
	for _, h := range hosts {
		n := 0
		if inv != nil {
			n = len(inv.VMsOn(h.ID))
		}
		s.Hosts = append(s.Hosts, HostState{Name: h.Name, CPU: share(h.CPUUsedMHz, h.CPUCapacityMHz), Mem: share(h.MemUsedMB, h.MemCapacityMB),
			VMs: n, InMaintenance: h.InMaintenance})
	}
	return s
}

func share(used, capacity int64) float64 {
	if capacity <= 0 {
		return 0
	}
	return float64(used) / float64(capacity)
}
