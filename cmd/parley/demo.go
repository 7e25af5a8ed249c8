package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/worker/local"
)

func init() {
	topLevel["demo"] = command{"demo", "run a whole parley in one process on a simulated datacentre", (*cli).demo}
}

func statsOf(inv *vsphere.Inventory) vsphere.LoadStats { return vsphere.CPULoadStats(inv.Hosts) }

func bar(frac float64, width int) string {
	n := int(math.Round(math.Min(frac, 1.5) / 1.5 * float64(width)))
	return strings.Repeat("#", n) + strings.Repeat(".", width-n)
}

func (c *cli) demo(ctx context.Context, args []string) int {
	fs := c.newFlags("demo", "demo [--hosts N] [--vms M] [--seed S] [--policy NAME[,NAME...]] [--drain HOST] [--duration D] [--until-quiet=false]")
	hosts := fs.Int("hosts", 8, "simulated ESXi hosts")
	vms := fs.Int("vms", 64, "simulated VMs")
	seed := fs.Int64("seed", 1, "seed of the generated datacentre")
	policy := fs.String("policy", "balance", "shipped policies the workers follow, comma-separated in priority order ("+strings.Join(policies.Names(), ", ")+")")
	drainHost := fs.String("drain", "", "ask for this host to be drained a few seconds in (it is emptied whatever the policies)")
	duration := fs.Duration("duration", 45*time.Second, "stop after this long (it stops earlier once balanced and quiet)")
	interval := fs.Duration("interval", time.Second, "workers' tick")
	migrate := fs.Duration("migrate-time", time.Second, "how long a simulated vMotion takes")
	drift := fs.Bool("drift", true, "let VM demand wander while it runs")
	every := fs.Duration("every", 3*time.Second, "how often the live view is printed")
	untilQuiet := fs.Bool("until-quiet", true, "stop early once balanced and quiet for 8 s (false: run the whole --duration, for the dashboard)")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *hosts < 2 || *hosts > 512 || *vms < 1 || *vms > 20000 || *duration <= 0 || *interval <= 0 || *migrate <= 0 || *every <= 0 {
		fmt.Fprintln(c.stderr, "parley demo: --hosts must be 2..512, --vms 1..20000, durations positive")
		return exitUsage
	}
	for _, name := range strings.Split(*policy, ",") {
		if _, err := policies.Source(strings.TrimSpace(name)); err != nil {
			fmt.Fprintln(c.stderr, "parley demo:", err)
			return exitUsage
		}
	}
	// consolidation alone gets a datacentre that suits it: lightly loaded,
	// so that some hosts are nearly empty and others can take their VMs
	skew, util := 0.0, 0.0
	if *policy == "consolidate" {
		skew, util = 0.25, 0.25
	}
	log := c.log
	if os.Getenv("PARLEY_LOG_LEVEL") == "" {
		log = log.Level(zerolog.ErrorLevel) // keep the live view readable
	}
	started := time.Now()
	fmt.Fprintf(c.stdout, "parley demo: %d hosts, %d VMs (seed %d), policy %s; a 3-member store, one worker per host\n", *hosts, *vms, *seed, *policy)
	routeVCSimLog(c.log)
	l, err := local.Start(ctx, local.Config{Hosts: *hosts, VMs: *vms, Seed: *seed, Policy: *policy, Drift: *drift,
		MigrateTime: *migrate, Interval: *interval, Logger: log, Skew: skew, Utilisation: util})
	if err != nil {
		fmt.Fprintln(c.stderr, "parley demo:", err)
		return exitFailed
	}
	defer l.Close()
	fmt.Fprintf(c.stdout, "ready in %v (simulated vCenter built in %v)\n", time.Since(started).Round(time.Millisecond), l.Sim.BuildTime.Round(time.Millisecond))
	fmt.Fprintf(c.stdout, "secure: TLS on every port (raft over mutual TLS), a token per worker and for the admin; CA and certificates in %s\n", l.PKI)
	fmt.Fprintf(c.stdout, "store at %s; vCenter at %s (thumbprint %s)\n", l.Members[0].HTTPAddr(), vsphere.Redacted(l.Sim.URL().String()), l.Sim.Thumbprint())
	if tokenFile, err := dashboardToken(ctx, l); err != nil {
		fmt.Fprintln(c.stderr, "parley demo: dashboard token:", err)
	} else {
		fmt.Fprintf(c.stdout, "dashboard: https://%s/ui/ (sign in with the operator token in %s; the certificate is the demo CA's, %s)\n",
			l.Members[0].HTTPAddr(), tokenFile, filepath.Join(l.PKI, "ca.pem"))
	}
	fmt.Fprintln(c.stdout)
	inv, err := l.VS.Inventory(ctx)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley demo:", err)
		return exitFailed
	}
	before := statsOf(inv)
	if *policy == "evacuate" {
		// evacuate acts on drain requests: ask for the most loaded host
		if _, err := l.Store.Drain(ctx, before.MaxHost, "demo", true); err != nil {
			fmt.Fprintln(c.stderr, "parley demo:", err)
			return exitFailed
		}
		fmt.Fprintf(c.stdout, "requested a drain of %s (parley host drain %s)\n\n", before.MaxHost, before.MaxHost)
	}
	if *drainHost != "" {
		if _, ok := inv.Host(*drainHost); !ok {
			fmt.Fprintf(c.stderr, "parley demo: --drain %s: no such host (the demo's hosts are %s to %s)\n", *drainHost, l.Sim.Layout.Hosts[0].Name, l.Sim.Layout.Hosts[len(l.Sim.Layout.Hosts)-1].Name)
			return exitUsage
		}
		if _, err := l.Store.Drain(ctx, *drainHost, "demo", true); err != nil {
			fmt.Fprintln(c.stderr, "parley demo:", err)
			return exitFailed
		}
		fmt.Fprintf(c.stdout, "requested a drain of %s (parley host drain %s); the workers follow evacuate for it\n\n", *drainHost, *drainHost)
	}
	c.view(ctx, l, inv, 0)
	deadline := time.After(*duration)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	lastMoves, quietSince := 0, time.Now()
loop:
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.stdout, "interrupted")
			break loop
		case <-deadline:
			break loop
		case <-tick.C:
		}
		inv, err = l.VS.Inventory(ctx)
		if err != nil {
			continue
		}
		moves := len(l.Sim.Relocations())
		c.view(ctx, l, inv, time.Since(started))
		if moves != lastMoves {
			lastMoves, quietSince = moves, time.Now()
		}
		st := statsOf(inv)
		drained := *drainHost == "" || hostDrained(inv, *drainHost)
		if *untilQuiet && moves > 0 && drained && (st.Max <= 0.7 || *policy != "balance") && time.Since(quietSince) > 8*time.Second {
			fmt.Fprintln(c.stdout, "quiet for 8s: stopping early")
			break
		}
	}
	if final, err := l.VS.Inventory(context.WithoutCancel(ctx)); err == nil {
		inv = final
	}
	after := statsOf(inv)
	ok, failed := 0, 0
	for _, r := range l.Sim.Relocations() {
		if r.Result == "success" {
			ok++
		} else {
			failed++
		}
	}
	fmt.Fprintf(c.stdout, "\nsummary after %v\n", time.Since(started).Round(time.Second))
	t := newTable(c.stdout, "", "BEFORE", "AFTER")
	t.row("imbalance (stddev of host CPU load)", fmt.Sprintf("%.3f", before.StdDev), fmt.Sprintf("%.3f", after.StdDev))
	t.row("most loaded host", fmt.Sprintf("%s %.0f%%", before.MaxHost, before.Max*100), fmt.Sprintf("%s %.0f%%", after.MaxHost, after.Max*100))
	t.row("mean host CPU load (per host, unweighted)", fmt.Sprintf("%.0f%%", before.Mean*100), fmt.Sprintf("%.0f%%", after.Mean*100))
	t.flush()
	fmt.Fprintf(c.stdout, "migrations: %d done, %d failed\n", ok, failed)
	if react := mergedHistogram(l.Workers, "parley_worker_reaction_seconds"); react.count > 0 {
		fmt.Fprintf(c.stdout, "reaction: %d overloads relieved; from the smoothed load crossing high to the first vMotion starting, p50 %.1f s, p99 %.1f s (hold_time included)\n",
			react.count, react.quantile(0.5), react.quantile(0.99))
	}
	if *drainHost != "" {
		if hostDrained(inv, *drainHost) {
			fmt.Fprintf(c.stdout, "%s: drained, in maintenance mode\n", *drainHost)
		} else {
			fmt.Fprintf(c.stdout, "%s: not drained yet\n", *drainHost)
		}
	}
	if ok == 0 {
		fmt.Fprintln(c.stdout, "the demo reached nothing: no migration was made")
		return exitFailed
	}
	if (*policy == "balance" || *policy == "first-fit") && after.StdDev >= before.StdDev {
		fmt.Fprintln(c.stdout, "the demo reached nothing: the imbalance did not fall")
		return exitFailed
	}
	return exitOK
}

// view prints hosts with CPU and memory bars, VM counts, migrations in
// and out, and leases held.
func (c *cli) view(ctx context.Context, l *local.System, inv *vsphere.Inventory, elapsed time.Duration) {
	in, out := map[string]int{}, map[string]int{}
	inflight := 0
	for _, r := range l.Sim.Relocations() {
		if r.Result == "success" {
			in[r.To]++
			out[r.From]++
		}
	}
	leases, err := l.Store.Leases(ctx, "", true)
	held := 0
	if err == nil {
		for _, le := range leases {
			if le.State == api.LeaseHeld && !strings.HasPrefix(le.Key, api.PrefixCool) {
				held++
			}
			if strings.HasPrefix(le.Key, api.PrefixVM) && le.State == api.LeaseHeld {
				inflight++
			}
		}
	}
	st := statsOf(inv)
	fmt.Fprintf(c.stdout, "t=%-4s imbalance %.3f  migrations in flight %d  leases held %d\n", elapsed.Round(time.Second), st.StdDev, inflight, held)
	hs := append([]vsphere.Host(nil), inv.Hosts...)
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	t := newTable(c.stdout, "  HOST", "CPU", "", "MEM", "VMS", "IN", "OUT")
	for _, h := range hs {
		cpu := float64(h.CPUUsedMHz) / float64(max(h.CPUCapacityMHz, 1))
		mem := float64(h.MemUsedMB) / float64(max(h.MemCapacityMB, 1))
		t.row("  "+h.Name, bar(cpu, 24), fmt.Sprintf("%3.0f%%", cpu*100), fmt.Sprintf("%3.0f%%", mem*100),
			fmt.Sprint(len(inv.VMsOn(h.ID))), fmt.Sprint(in[h.Name]), fmt.Sprint(out[h.Name]))
	}
	t.flush()
	fmt.Fprintln(c.stdout)
}

// hostDrained reports whether a host is in maintenance mode with no VM.
func hostDrained(inv *vsphere.Inventory, name string) bool {
	h, ok := inv.Host(name)
	return ok && h.InMaintenance && len(inv.VMsOn(h.ID)) == 0
}

// dashboardToken creates an operator token for the dashboard and writes it
// to a file only its owner can read, in the demo's PKI folder.
func dashboardToken(ctx context.Context, l *local.System) (string, error) {
	secret := raftstore.NewToken()
	if _, err := l.Store.CreateToken(ctx, "dashboard", raftstore.RoleOperator, secret); err != nil {
		return "", err
	}
	path := filepath.Join(l.PKI, "dashboard.token")
	return path, os.WriteFile(path, []byte(secret+"\n"), 0o600)
}
