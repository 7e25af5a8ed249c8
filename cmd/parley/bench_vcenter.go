package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/worker/local"
)

func init() {
	register("bench",
		command{"vcenter", "measure the load parley's workers put on vCenter: SDK calls and objects per second", (*cli).benchVCenter},
	)
}

// vcenterLoad is what 'parley bench vcenter' reports.
type vcenterLoad struct {
	Hosts             int                `json:"hosts"`
	VMs               int                `json:"vms"`
	Workers           int                `json:"workers"`
	Interval          string             `json:"interval"`
	DriftEvery        string             `json:"drift_every"`
	Inventory         string             `json:"inventory"` // watch or poll
	Seconds           float64            `json:"seconds"`
	CallsPerS         float64            `json:"calls_per_s"`
	ObjectsPerS       float64            `json:"objects_per_s"`
	CallsPerWorkerS   float64            `json:"calls_per_worker_s"`
	ObjectsPerWorkerS float64            `json:"objects_per_worker_s"`
	ByMethodPerS      map[string]float64 `json:"by_method_per_s"`
}

// benchVCenter runs a whole parley (simulated vCenter, 3-member store, a
// worker per host, dry run so that nothing moves and the figures are the
// steady state's) and counts what the simulator serves after a warm-up.
func (c *cli) benchVCenter(ctx context.Context, args []string) int {
	fs := c.newFlags("bench vcenter", "bench vcenter --hosts N --vms M [--workers K] [--duration D] [--interval I] [-o table|json]")
	hosts := fs.Int("hosts", 64, "hosts, one worker each")
	vms := fs.Int("vms", 1000, "VMs")
	duration := fs.Duration("duration", 20*time.Second, "how long to count, after the warm-up")
	warmup := fs.Duration("warmup", 5*time.Second, "how long the workers run before counting starts")
	interval := fs.Duration("interval", 2*time.Second, "workers' tick (the worker's default is 2s)")
	driftEvery := fs.Duration("drift-every", 2*time.Second, "how often a tenth of the VMs' demand changes (vCenter refreshes quickStats every 20s)")
	nWorkers := fs.Int("workers", 0, "run workers on only this many hosts, spread evenly (default: one on every host); the others are hosts without parley")
	invFrom := fs.String("inventory", "watch", "how the workers follow the inventory: watch or poll (see parley worker --inventory)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the counted window to this file")
	out := fs.String("o", "table", "output format: table or json")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *invFrom != "watch" && *invFrom != "poll" {
		fmt.Fprintln(c.stderr, "parley bench vcenter: --inventory watch or poll")
		return exitUsage
	}
	if *hosts < 2 || *hosts > 1024 || *vms < 1 || *vms > 20000 || *duration <= 0 || *warmup < 0 || *interval <= 0 || *nWorkers < 0 || *driftEvery <= 0 || *nWorkers > *hosts {
		fmt.Fprintln(c.stderr, "parley bench vcenter: --hosts 2..1024, --vms 1..20000, --workers 0..hosts, positive durations")
		return exitUsage
	}
	routeVCSimLog(c.log)
	l, err := local.Start(ctx, local.Config{Hosts: *hosts, VMs: *vms, Seed: 1, Drift: true, DriftEvery: *driftEvery, DryRun: true,
		MigrateTime: time.Second, Interval: *interval, PollInventory: *invFrom == "poll", Workers: *nWorkers, Logger: c.log.Level(zerolog.ErrorLevel)})
	if err != nil {
		fmt.Fprintln(c.stderr, "parley bench vcenter:", err)
		return exitFailed
	}
	defer l.Close()
	time.Sleep(*warmup)
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley bench vcenter:", err)
			return exitFailed
		}
		defer stop()
	}
	before, start := l.Sim.APIStats(), time.Now()
	select {
	case <-ctx.Done():
		return exitFailed
	case <-time.After(*duration):
	}
	after, secs := l.Sim.APIStats(), time.Since(start).Seconds()
	r := vcenterLoad{Inventory: *invFrom, Hosts: *hosts, VMs: *vms, Workers: len(l.Workers), Interval: interval.String(), DriftEvery: driftEvery.String(), Seconds: secs,
		CallsPerS: float64(after.Calls-before.Calls) / secs, ObjectsPerS: float64(after.Objects-before.Objects) / secs, ByMethodPerS: map[string]float64{}}
	r.CallsPerWorkerS, r.ObjectsPerWorkerS = r.CallsPerS/float64(r.Workers), r.ObjectsPerS/float64(r.Workers)
	for m, n := range after.ByMethod {
		if d := n - before.ByMethod[m]; d > 0 {
			r.ByMethodPerS[m] = float64(d) / secs
		}
	}
	if *out == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
		return exitOK
	}
	fmt.Fprintf(c.stdout, "%d hosts, %d VMs (a tenth drifting every %s), %d workers ticking every %s, inventory by %s; counted for %.1f s after %s\n", r.Hosts, r.VMs, r.DriftEvery, r.Workers, r.Interval, r.Inventory, r.Seconds, *warmup)
	t := newTable(c.stdout, "", "PER SECOND", "PER WORKER PER SECOND")
	t.row("SDK calls", fmt.Sprintf("%.1f", r.CallsPerS), fmt.Sprintf("%.2f", r.CallsPerWorkerS))
	t.row("objects returned", fmt.Sprintf("%.1f", r.ObjectsPerS), fmt.Sprintf("%.1f", r.ObjectsPerWorkerS))
	methods := make([]string, 0, len(r.ByMethodPerS))
	for m := range r.ByMethodPerS {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	for _, m := range methods {
		t.row("  "+m, fmt.Sprintf("%.1f", r.ByMethodPerS[m]), fmt.Sprintf("%.2f", r.ByMethodPerS[m]/float64(r.Workers)))
	}
	t.flush()
	return exitOK
}
