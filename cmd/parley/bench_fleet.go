package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/pki"
	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/parleyhq/parley/worker"
)

func init() {
	register("bench",
		command{"fleet", "run N workers against an in-memory datacentre and a real 3-member store: what the store spends", (*cli).benchFleet},
	)
}

// fleetMember is one store process's share.
type fleetMember struct {
	ID         string  `json:"id"`
	Leader     bool    `json:"leader"`
	CPUPercent float64 `json:"cpu_percent"` // of one core, over the measured window
	RSSMB      float64 `json:"rss_mb"`
}

// fleetLoad is what 'parley bench fleet' reports.
type fleetLoad struct {
	Workers          int           `json:"workers"`
	VMs              int           `json:"vms"`
	ClusterSize      int           `json:"cluster_size"`
	Interval         string        `json:"interval"`
	Seconds          float64       `json:"seconds"`
	AppliesPerS      float64       `json:"applies_per_s"`
	StoreCPUPercent  float64       `json:"store_cpu_percent"` // the busiest member's (the leader's), of one core
	Members          []fleetMember `json:"members"`
	Migrations       int           `json:"migrations"`
	Negotiations     uint64        `json:"negotiations"`
	NegotiationP50MS float64       `json:"negotiation_p50_ms"`
	NegotiationP99MS float64       `json:"negotiation_p99_ms"`
	// from a host\'s smoothed load crossing the high threshold to its first vMotion starting
	ReactionP50MS    float64            `json:"reaction_p50_ms"`
	ReactionP99MS    float64            `json:"reaction_p99_ms"`
	AppliesByCommand map[string]float64 `json:"applies_by_command_per_s"` // on the leader
	Baseline         *fleetLoad         `json:"baseline,omitempty"`       // with --baseline: the same fleet, every heartbeat written
}

// benchFleet starts a 3-member store as three processes (TLS, tokens),
// then N workers in this process, each with its own certificate, token
// and HTTPS client of the store, on one in-memory datacentre, talking LCC
// in memory; after a warm-up it measures raft applies per second, each
// member's CPU and memory, and negotiation latency.
func (c *cli) benchFleet(ctx context.Context, args []string) int {
	fs := c.newFlags("bench fleet", "bench fleet --workers N [--duration D] [--warmup W] [--skew S] [-o table|json]")
	n := fs.Int("workers", 100, "workers, one per host")
	perHost := fs.Int("vms-per-host", 10, "VMs per host")
	duration := fs.Duration("duration", 30*time.Second, "how long to measure, after the warm-up")
	warmup := fs.Duration("warmup", 20*time.Second, "how long the workers run before measuring")
	interval := fs.Duration("interval", 2*time.Second, "workers' tick")
	skew := fs.Float64("skew", 0, "share of VMs on a quarter of the hosts (0: spread evenly, a steady state where nothing migrates)")
	util := fs.Float64("utilisation", 0.3, "total CPU demand over capacity")
	baseline := fs.Bool("baseline", false, "first run the same fleet with every heartbeat written to the log (parley store --heartbeats-to-log), and report both")
	clusterSize := fs.Int("cluster-size", 64, "hosts per vSphere cluster (vSphere 8 allows 96); workers negotiate within theirs")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the workers) over the measurement to this file")
	storeProfiles := fs.String("store-cpuprofile", "", "write each store member's CPU profile to this folder (ID.prof)")
	memProfile := fs.String("memprofile", "", "write a heap profile of this process (the workers) to this file at the end of the measurement")
	out := fs.String("o", "table", "output format: table or json")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *n < 2 || *n > 5000 || *perHost < 1 || *duration <= 0 || *warmup < 0 || *interval <= 0 || *skew < 0 || *skew >= 1 || *util <= 0 || *util > 1 || *clusterSize < 2 {
		fmt.Fprintln(c.stderr, "parley bench fleet: --workers 2..5000, --vms-per-host positive, positive durations, --skew 0..1, --utilisation 0..1, --cluster-size 2 or more")
		return exitUsage
	}
	o := fleetOpts{workers: *n, perHost: *perHost, clusterSize: *clusterSize, duration: *duration, warmup: *warmup, interval: *interval, skew: *skew, util: *util}
	var base *fleetLoad
	if *baseline {
		var err error
		bo := o
		bo.heartbeatsToLog = true
		if base, err = c.runFleet(ctx, bo); err != nil {
			fmt.Fprintln(c.stderr, "parley bench fleet: baseline:", err)
			return exitFailed
		}
	}
	o.memProfile, o.storeProfiles, o.cpuProfile = *memProfile, *storeProfiles, *cpuProfile
	if o.storeProfiles != "" {
		if err := os.MkdirAll(o.storeProfiles, 0o750); err != nil {
			fmt.Fprintln(c.stderr, "parley bench fleet: --store-cpuprofile:", err)
			return exitFailed
		}
	}
	r, err := c.runFleet(ctx, o)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley bench fleet:", err)
		return exitFailed
	}
	r.Baseline = base
	if *out == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
		return exitOK
	}
	if base != nil {
		fmt.Fprintf(c.stdout, "baseline (every heartbeat written): %.1f applies/s, leader CPU %.1f%%\n", base.AppliesPerS, base.StoreCPUPercent)
		fmt.Fprintf(c.stdout, "now: %.1f applies/s (%s), leader CPU %.1f%% (%s)\n", r.AppliesPerS, ratio(r.AppliesPerS, base.AppliesPerS), r.StoreCPUPercent, ratio(r.StoreCPUPercent, base.StoreCPUPercent))
	}
	fmt.Fprintf(c.stdout, "%d workers in clusters of %d hosts, %d VMs, ticking every %s; measured for %.1f s after %s\n", r.Workers, r.ClusterSize, r.VMs, r.Interval, r.Seconds, *warmup)
	cmds := make([]string, 0, len(r.AppliesByCommand))
	for k := range r.AppliesByCommand {
		cmds = append(cmds, k)
	}
	sort.Strings(cmds)
	for _, k := range cmds {
		fmt.Fprintf(c.stdout, "  %-20s %.2f/s\n", k, r.AppliesByCommand[k])
	}
	fmt.Fprintf(c.stdout, "raft applies: %.1f/s; migrations %d; negotiations %d (p50 %.0f ms, p99 %.0f ms)\n", r.AppliesPerS, r.Migrations, r.Negotiations, r.NegotiationP50MS, r.NegotiationP99MS)
	if r.ReactionP99MS > 0 {
		fmt.Fprintf(c.stdout, "reaction (smoothed load crossing high to the first vMotion): p50 %.0f ms, p99 %.0f ms\n", r.ReactionP50MS, r.ReactionP99MS)
	}
	t := newTable(c.stdout, "MEMBER", "LEADER", "CPU (% OF ONE CORE)", "RSS")
	for _, m := range r.Members {
		t.row(m.ID, strconv.FormatBool(m.Leader), fmt.Sprintf("%.1f%%", m.CPUPercent), fmt.Sprintf("%.0f MB", m.RSSMB))
	}
	t.flush()
	return exitOK
}

// fleetOpts is one fleet run's settings (see benchFleet's flags).
type fleetOpts struct {
	workers, perHost, clusterSize int
	duration, warmup, interval    time.Duration
	skew, util                    float64
	heartbeatsToLog               bool
	memProfile, storeProfiles     string
	cpuProfile                    string
}

func (c *cli) runFleet(ctx context.Context, o fleetOpts) (*fleetLoad, error) {
	n, perHost, duration, warmup, interval, skew, util := o.workers, o.perHost, o.duration, o.warmup, o.interval, o.skew, o.util
	dir, err := os.MkdirTemp("", "parley-bench-fleet-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := startFleetStore(ctx, dir, o.heartbeatsToLog, o.storeProfiles)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	text, _ := policies.Source("balance")
	if _, err := st.admin.Push(ctx, raftstore.PushRequest{Name: "balance", Text: string(text), Author: "bench"}); err != nil {
		return nil, err
	}
	if skew == 0 {
		skew = 0.25 // a quarter of the VMs on a quarter of the hosts: even
	}
	l := sim.Generate(n, n*perHost, 1, skew, util)
	dc := sim.NewMemDCClusters(l, o.clusterSize)
	tr := lcc.NewMemTransport()
	workers := make([]*worker.Worker, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	began := time.Now()
	for i, h := range l.Hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := fmt.Sprintf("w%d", i)
			w, err := st.worker(ctx, id, h.Name, dc, tr, interval, c.log.Level(zerolog.ErrorLevel))
			if err != nil {
				errs <- fmt.Errorf("worker %s: %w", id, err)
				return
			}
			workers[i] = w
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	fmt.Fprintf(c.stderr, "parley bench fleet: %d workers ready in %s; warming up for %s\n", n, time.Since(began).Round(time.Second), warmup)
	wctx, stopWorkers := context.WithCancel(ctx)
	var run sync.WaitGroup
	for _, w := range workers {
		tr.Add(w.Node())
		run.Add(1)
		go func() { defer run.Done(); w.Run(wctx) }()
	}
	defer func() { stopWorkers(); run.Wait() }()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(warmup):
	}
	s0, err := st.admin.Status(ctx)
	if err != nil {
		return nil, err
	}
	leaderMetrics := func() map[string]float64 { return st.appliesByCommand(ctx, s0.Leader) }
	by0 := leaderMetrics()
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	cpu0, moves0, start := st.cpu(), dc.Moves(), time.Now()
	negs0 := mergedHistogram(workers, "parley_worker_negotiation_seconds")
	react0 := mergedHistogram(workers, "parley_worker_reaction_seconds")
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(duration):
	}
	secs := time.Since(start).Seconds()
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			return nil, err
		}
	}
	s1, err := st.admin.Status(ctx)
	if err != nil {
		return nil, err
	}
	cpu1 := st.cpu()
	by1 := leaderMetrics()
	negs := mergedHistogram(workers, "parley_worker_negotiation_seconds").minus(negs0)
	react := mergedHistogram(workers, "parley_worker_reaction_seconds").minus(react0)
	r := &fleetLoad{Workers: n, VMs: n * perHost, ClusterSize: o.clusterSize, Interval: interval.String(), Seconds: secs, AppliesPerS: float64(s1.Applied-s0.Applied) / secs,
		Migrations: dc.Moves() - moves0, Negotiations: negs.count, NegotiationP50MS: negs.quantile(0.5) * 1000, NegotiationP99MS: negs.quantile(0.99) * 1000,
		ReactionP50MS: react.quantile(0.5) * 1000, ReactionP99MS: react.quantile(0.99) * 1000}
	r.AppliesByCommand = map[string]float64{}
	for cmd, v := range by1 {
		if d := v - by0[cmd]; d > 0 {
			r.AppliesByCommand[cmd] = d / secs
		}
	}
	for i, id := range st.ids {
		m := fleetMember{ID: id, Leader: s1.Leader == id, CPUPercent: 100 * (cpu1[i] - cpu0[i]).Seconds() / secs, RSSMB: rssMB(st.procs[i].Process.Pid)}
		r.StoreCPUPercent = math.Max(r.StoreCPUPercent, m.CPUPercent)
		r.Members = append(r.Members, m)
	}
	return r, nil
}

// fleetStore is a 3-member store run as processes of this binary.
type fleetStore struct {
	dir   string
	ids   []string
	addrs []string
	procs []*exec.Cmd
	admin *raftstore.Client

	adminTLS   *pki.TLS
	adminToken string
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startFleetStore(ctx context.Context, dir string, heartbeatsToLog bool, profiles string) (*fleetStore, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ca := filepath.Join(dir, "pki")
	if err := pki.InitCA(ca); err != nil {
		return nil, err
	}
	adminToken, adminFile := raftstore.NewToken(), filepath.Join(dir, "admin.token")
	if err := os.WriteFile(adminFile, []byte(adminToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	st := &fleetStore{dir: dir}
	for i := range 3 {
		id := fmt.Sprintf("store%d", i+1)
		raftAddr, err1 := freePort()
		httpAddr, err2 := freePort()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("ports: %v %v", err1, err2)
		}
		if _, err := pki.IssueLocal(ca, id); err != nil {
			return nil, err
		}
		args := []string{"store", "--id", id, "--data", filepath.Join(dir, id), "--raft-addr", raftAddr, "--http-addr", httpAddr,
			"--tls-ca", filepath.Join(ca, pki.CAFile), "--tls-cert", pki.CertFile(ca, id), "--tls-key", pki.KeyFile(ca, id)}
		if heartbeatsToLog {
			args = append(args, "--heartbeats-to-log")
		}
		if profiles != "" {
			args = append(args, "--cpuprofile", filepath.Join(profiles, id+".prof"))
		}
		if i == 0 {
			args = append(args, "--bootstrap", "--admin-token-file", adminFile)
		} else {
			args = append(args, "--join", st.addrs[0], "--token-file", adminFile)
		}
		cmd := exec.Command(self, args...)
		dieWithParent(cmd) // a bench killed outright leaves no store running
		cmd.Env = append(os.Environ(), "PARLEY_LOG_LEVEL=error")
		logf, err := os.Create(filepath.Join(dir, id+".log"))
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		st.ids, st.addrs, st.procs = append(st.ids, id), append(st.addrs, httpAddr), append(st.procs, cmd)
		if i == 0 {
			time.Sleep(2 * time.Second) // the first member bootstraps before the others join
		}
	}
	admin, err := pki.IssueLocal(ca, "admin")
	if err != nil {
		st.stop()
		return nil, err
	}
	st.adminTLS, st.adminToken = admin, adminToken
	if st.admin, err = raftstore.NewClient(st.addrs, raftstore.WithTLS(admin), raftstore.WithToken(adminToken)); err != nil {
		st.stop()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := st.admin.Status(ctx)
		if err == nil && len(s.Members) == 3 && s.Leader != "" {
			return st, nil
		}
		if time.Now().After(deadline) {
			st.stop()
			b, _ := os.ReadFile(filepath.Join(dir, "store1.log"))
			return nil, fmt.Errorf("the store did not form (%v): %s", err, lastLines(string(b), 5))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// stop asks the members to shut down (they write their profiles then),
// and kills those still running after 5 s.
func (st *fleetStore) stop() {
	for _, p := range st.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range st.procs {
		t := time.AfterFunc(5*time.Second, func() { p.Process.Kill() })
		p.Wait()
		t.Stop()
	}
}

// worker makes one worker with its own certificate, token and client.
func (st *fleetStore) worker(ctx context.Context, id, host string, dc *sim.MemDC, tr *lcc.MemTransport, interval time.Duration, log zerolog.Logger) (*worker.Worker, error) {
	ca := filepath.Join(st.dir, "pki")
	wt, err := pki.IssueLocal(ca, id)
	if err != nil {
		return nil, err
	}
	secret := raftstore.NewToken()
	if _, err := st.admin.CreateToken(ctx, id, raftstore.RoleWorker, secret); err != nil {
		return nil, err
	}
	cl, err := raftstore.NewClient(st.addrs, raftstore.WithTLS(wt), raftstore.WithToken(secret))
	if err != nil {
		return nil, err
	}
	return worker.New(worker.Config{ID: id, Host: host, Policy: "balance", Interval: interval, Transport: tr, Logger: log}, dc, cl)
}

// cpu is each member process's CPU time so far.
func (st *fleetStore) cpu() []time.Duration {
	out := make([]time.Duration, len(st.procs))
	for i, p := range st.procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Process.Pid))
		if err != nil {
			continue
		}
		// fields after the command name (which may hold spaces): utime is the 14th, stime the 15th
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			stm, _ := strconv.ParseInt(f[12], 10, 64)
			out[i] = time.Duration(ut+stm) * time.Second / 100 // USER_HZ
		}
	}
	return out
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// histogram is a Prometheus histogram merged over workers.
type histogram struct {
	bounds []float64
	counts []uint64 // cumulative, per bound
	count  uint64
}

func mergedHistogram(ws []*worker.Worker, name string) histogram {
	var h histogram
	for _, w := range ws {
		c := w.Latency(name)
		if c == nil {
			continue
		}
		ch := make(chan prometheus.Metric, 256) // one per policy label: far fewer
		c.Collect(ch)
		close(ch)
		for m := range ch {
			var d dto.Metric
			if m.Write(&d) != nil || d.GetHistogram() == nil {
				continue
			}
			hist := d.GetHistogram()
			if h.bounds == nil {
				for _, b := range hist.GetBucket() {
					h.bounds = append(h.bounds, b.GetUpperBound())
				}
				h.counts = make([]uint64, len(h.bounds))
			}
			for i, b := range hist.GetBucket() {
				if i < len(h.counts) {
					h.counts[i] += b.GetCumulativeCount()
				}
			}
			h.count += hist.GetSampleCount()
		}
	}
	return h
}

func (h histogram) minus(o histogram) histogram {
	out := histogram{bounds: h.bounds, counts: append([]uint64(nil), h.counts...), count: h.count - o.count}
	for i := range out.counts {
		if i < len(o.counts) {
			out.counts[i] -= o.counts[i]
		}
	}
	return out
}

// quantile estimates q by linear interpolation within its bucket, as
// PromQL's histogram_quantile does.
func (h histogram) quantile(q float64) float64 {
	if h.count == 0 || len(h.bounds) == 0 {
		return 0
	}
	rank := q * float64(h.count)
	i := sort.Search(len(h.counts), func(i int) bool { return float64(h.counts[i]) >= rank })
	if i == len(h.counts) {
		return h.bounds[len(h.bounds)-1]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = h.bounds[i-1], float64(h.counts[i-1])
	}
	in := float64(h.counts[i]) - below
	if in <= 0 {
		return h.bounds[i]
	}
	return lo + (h.bounds[i]-lo)*(rank-below)/in
}

var applyCount = regexp.MustCompile(`(?m)^parley_apply_seconds_count\{command="([^"]+)"\} ([0-9.e+]+)$`)

// appliesByCommand reads how many commands of each type member id has
// applied as leader.
func (st *fleetStore) appliesByCommand(ctx context.Context, id string) map[string]float64 {
	out := map[string]float64{}
	for i, mid := range st.ids {
		if mid != id {
			continue
		}
		cl, err := raftstore.NewClient([]string{st.addrs[i]}, raftstore.WithTLS(st.adminTLS), raftstore.WithToken(st.adminToken))
		if err != nil {
			return out
		}
		b, err := cl.Metrics(ctx)
		if err != nil {
			return out
		}
		for _, m := range applyCount.FindAllStringSubmatch(string(b), -1) {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = v
		}
	}
	return out
}

// writeHeapProfile writes this process's live heap, after a collection.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startCPUProfile profiles this process until the returned stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
