// Package placement measures where parley's policies put VMs: it runs the
// workers' real code on an in-memory datacentre (sim.MemDC), an in-memory
// store that applies the real state machine (raftstore.Mem) and
// lcc.MemTransport, and compares the outcome with a central greedy
// optimiser on the same start state. Neither vcsim nor Raft is involved,
// so it scales to hundreds of hosts and thousands of VMs. 'parley bench
// placement' prints its table.
package placement

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/parleyhq/parley/worker"
)

// Result is one method's row of the comparison.
type Result struct {
	Method     string        `json:"method"`
	StdDev     float64       `json:"stddev"`
	MaxLoad    float64       `json:"max_load"`
	MaxHost    string        `json:"max_host"`
	Migrations int           `json:"migrations"`
	Rounds     int           `json:"rounds"`
	CPU        time.Duration `json:"cpu"`
	// StdDevAt is the standard deviation after 25%, 50% and 100% of a
	// number of migrations (the number balance made; see Trajectory).
	StdDevAt map[string]float64 `json:"stddev_at,omitempty"`
	moves    []sim.Move
}

// Moves lists the migrations the method made, in order.
func (r Result) Moves() []sim.Move { return r.moves }

// Fractions are the points of a migration budget at which Trajectory
// measures the standard deviation.
var Fractions = []struct {
	Name string
	F    float64
}{{"25%", 0.25}, {"50%", 0.5}, {"100%", 1}}

// Trajectory replays a method's first migrations on the starting layout
// and returns the standard deviation of host CPU load after 25%, 50% and
// 100% of budget migrations (or of all it made, if fewer): how fast a
// method gets there, not only where it ends.
func Trajectory(l sim.Layout, moves []sim.Move, budget int) (map[string]float64, error) {
	out := map[string]float64{}
	dc := sim.NewMemDC(l)
	inv, err := dc.Inventory(context.Background())
	if err != nil {
		return nil, err
	}
	vmID, hostID := map[string]string{}, map[string]string{}
	for _, v := range inv.VMs {
		vmID[v.Name] = v.ID
	}
	for _, h := range inv.Hosts {
		hostID[h.Name] = h.ID
	}
	done := 0
	for _, f := range Fractions {
		n := min(int(math.Ceil(f.F*float64(budget))), len(moves))
		for ; done < n; done++ {
			m := moves[done]
			if err := dc.Migrate(context.Background(), vmID[m.VM], hostID[m.To], nil); err != nil {
				return nil, err
			}
		}
		out[f.Name], _, _ = loadStats(dc.Hosts())
	}
	return out, nil
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
func StartState(l sim.Layout) Result {
	sd, mx, mh := loadStats(sim.NewMemDC(l).Hosts())
	return Result{Method: "start", StdDev: sd, MaxLoad: mx, MaxHost: mh}
}

// RunPolicy runs a shipped policy on the in-memory datacentre in
// rounds (every worker ticks once per round) until a round moves nothing.
// Hold times and smoothing are set to act at once, and the cool-down to
// outlast the run, so that a VM moves at most once.
func RunPolicy(ctx context.Context, l sim.Layout, policy string, maxRounds int) (Result, error) {
	src, err := policies.Source(policy)
	if err != nil {
		return Result{}, err
	}
	text := string(src)
	for old, new := range map[string]string{"param(hold_time, 3).": "param(hold_time, 0).", "param(smoothing_window, 3).": "param(smoothing_window, 1).",
		"param(cooldown, 60).": "param(cooldown, 100000)."} {
		text = strings.Replace(text, old, new, 1)
	}
	dc := sim.NewMemDC(l)
	// the rounds outlast the default worker TTL: keep every worker live
	st := raftstore.NewMem(raftstore.Config{WorkerTTL: 24 * time.Hour})
	if _, err := st.Push(ctx, raftstore.PushRequest{Name: policy, Text: text, Author: "placement"}); err != nil {
		return Result{}, err
	}
	tr := lcc.NewMemTransport()
	var ws []*worker.Worker
	defer func() {
		for _, w := range ws {
			w.Close()
		}
	}()
	for i, h := range l.Hosts {
		id := fmt.Sprintf("w%d", i)
		if _, err := st.Heartbeat(ctx, raftstore.HeartbeatRequest{ID: id, Host: h.Name}); err != nil {
			return Result{}, err
		}
		w, err := worker.New(worker.Config{ID: id, Host: h.Name, Policy: policy, Interval: 10 * time.Second, Transport: tr, Logger: zerolog.Nop()}, dc, st.AsWorker(id)) // in its own name, as a worker's token
		if err != nil {
			return Result{}, err
		}
		tr.Add(w.Node())
		ws = append(ws, w)
	}
	for _, w := range ws {
		if err := w.Observe(ctx); err != nil {
			return Result{}, err
		}
	}
	cpu0 := cpuNow()
	rounds := 0
	for rounds < maxRounds {
		rounds++
		before := dc.Moves()
		for _, w := range ws {
			w.Tick(ctx)
		}
		// let the last interactions of the round finish
		for _, w := range ws {
			for w.Initiated() > 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
		}
		if dc.Moves() == before {
			break
		}
	}
	res := Result{Method: policy, Migrations: dc.Moves(), Rounds: rounds, CPU: cpuNow() - cpu0, moves: dc.Record()}
	res.StdDev, res.MaxLoad, res.MaxHost = loadStats(dc.Hosts())
	return res, ctx.Err()
}

// Greedy is the centralised baseline in the style of DRS: while
// some move lowers the standard deviation of host CPU load, make the one
// that lowers it most, taking VMs from the most loaded hosts and never
// pushing a target above high.
func Greedy(l sim.Layout, high float64) (Result, error) { return GreedyAt(l, high, 0) }

// GreedyAt is Greedy stopped after maxMoves migrations (0: no limit),
// for a fair comparison with a method that made that many.
func GreedyAt(l sim.Layout, high float64, maxMoves int) (Result, error) {
	dc := sim.NewMemDC(l)
	inv, err := dc.Inventory(context.Background())
	if err != nil {
		return Result{}, err
	}
	hosts, vms := inv.Hosts, inv.VMs
	hostIdx := map[string]int{}
	for i, h := range hosts {
		hostIdx[h.ID] = i
	}
	cpu0 := cpuNow()
	n := float64(len(hosts))
	load := make([]float64, len(hosts))
	capac := make([]float64, len(hosts))
	var sum, sumSq float64
	for i, h := range hosts {
		capac[i] = float64(h.CPUCapacityMHz)
		load[i] = float64(h.CPUUsedMHz) / capac[i]
		sum += load[i]
		sumSq += load[i] * load[i]
	}
	variance := func(s, sq float64) float64 { m := s / n; return sq/n - m*m }
	onHost := make([][]int, len(hosts))
	for i, v := range vms {
		onHost[hostIdx[v.Host]] = append(onHost[hostIdx[v.Host]], i)
	}
	moves, rounds := 0, 0
	const sources = 16
	for maxMoves <= 0 || moves < maxMoves {
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
				d := float64(vms[vi].CPUDemandMHz)
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
		d := float64(vms[bestVM].CPUDemandMHz)
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
		if err := dc.Migrate(context.Background(), vms[bestVM].ID, hosts[bestT].ID, nil); err != nil {
			return Result{}, err
		}
		moves++
	}
	method := "greedy (central)"
	if maxMoves > 0 {
		method = "greedy@balance"
	}
	res := Result{Method: method, Migrations: moves, Rounds: rounds, CPU: cpuNow() - cpu0, moves: dc.Record()}
	res.StdDev, res.MaxLoad, res.MaxHost = loadStats(dc.Hosts())
	return res, nil
}
