// Command bench measures parley beside its peers on one machine, in one
// run, with the same clients and workload. It is a module of its own so
// that parley's go.mod does not carry etcd.
//
//	cd bench && go run . store -o json
//
// runs parley's 3-member store (TLS, tokens, fsync'd BoltDB), bare
// raft.Apply on that store's leader, and an embedded 3-member etcd (TLS
// with client certificates, fsync on), and prints, for 1 and 64 clients,
// lease acquire+release pairs per second and the median pair latency.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: bench store [-o table|json] [--clients 1,64] [--pairs N] [--rounds N] [--systems parley,raft,etcd] [--cpuprofile FILE]

store   lease acquire+release pairs through parley's store, bare raft.Apply on
        the same store's leader, and an embedded etcd; 3 members each on loopback
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "store" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("bench store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "table", "output: table or json")
	clientsFlag := fs.String("clients", "1,64", "client counts, comma-separated")
	pairs := fs.Int("pairs", 2000, "pairs per round at 64 clients (a quarter of that at 1 client)")
	rounds := fs.Int("rounds", 3, "rounds per system and client count, interleaved")
	systemsFlag := fs.String("systems", "parley,raft,etcd", "systems to measure")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the measured rounds to FILE")
	logStore := fs.String("log-store", "", "parley's raft log store: bolt or wal (parley store --log-store; unset, bolt: a new folder's default)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *out != "table" && *out != "json" {
		fmt.Fprintf(stderr, "bench store: -o %q: want table or json\n", *out)
		return 2
	}
	var clients []int
	for _, s := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1024 {
			fmt.Fprintf(stderr, "bench store: --clients %q: want counts from 1 to 1024, comma-separated\n", *clientsFlag)
			return 2
		}
		clients = append(clients, n)
	}
	systems := strings.Split(*systemsFlag, ",")
	for _, s := range systems {
		if !slices.Contains([]string{"parley", "raft", "etcd"}, s) {
			fmt.Fprintf(stderr, "bench store: --systems: unknown system %q (want parley, raft, etcd)\n", s)
			return 2
		}
	}
	if *pairs < 1 || *rounds < 1 {
		fmt.Fprintln(stderr, "bench store: --pairs and --rounds must be positive")
		return 2
	}
	res, err := storeBench(ctx, stderr, storeOptions{clients: clients, pairs: *pairs, rounds: *rounds, systems: systems, cpuprofile: *cpuprofile, logStore: *logStore})
	if err != nil {
		fmt.Fprintf(stderr, "bench store: %v\n", err)
		return 1
	}
	if *out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return 0
	}
	printTable(stdout, res, clients)
	return 0
}

// Result is one system's figures by client count ("clients_1", ...).
type Result map[string]Figures

// Figures are one system's at one client count.
type Figures struct {
	PairsPerS float64 `json:"pairs_per_s"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	Pairs     int     `json:"pairs"`
	Elections uint64  `json:"elections"` // terms begun while these rounds ran: a healthy cluster under load holds none
}

type storeOptions struct {
	clients    []int
	pairs      int
	rounds     int
	systems    []string
	cpuprofile string
	logStore   string
}

// system is one thing measured: pair runs one acquire+release pair for
// client c (of n), numbered i.
type system interface {
	name() string
	pair(ctx context.Context, c, i int) error
	term() uint64 // the highest raft term of its members
	close()
}

func storeBench(ctx context.Context, logw io.Writer, o storeOptions) (map[string]Result, error) {
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	maxClients := slices.Max(o.clients)
	var sys []system
	defer func() {
		for _, s := range sys {
			s.close()
		}
	}()
	for _, name := range o.systems {
		fmt.Fprintf(logw, "starting %s\n", name)
		var s system
		switch name {
		case "parley", "raft":
			p, err := startParley(ctx, dir, name == "raft", o.logStore)
			if err != nil {
				return nil, fmt.Errorf("parley: %w", err)
			}
			s = p
		case "etcd":
			e, err := startEtcd(ctx, dir, maxClients)
			if err != nil {
				return nil, fmt.Errorf("etcd: %w", err)
			}
			s = e
		}
		sys = append(sys, s)
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	res := map[string]Result{}
	round := 0
	for _, n := range o.clients {
		total := max(o.pairs*n/64, o.pairs/4)
		acc := map[string]*measure{}
		terms := map[string]uint64{}
		for _, s := range sys {
			terms[s.name()] = s.term()
		}
		for r := 0; r < o.rounds; r++ {
			for _, s := range sys {
				round++
				base := round * 10_000_000
				m, err := load(ctx, n, total, func(c, i int) error { return s.pair(ctx, c, base+i) })
				if err != nil {
					return nil, fmt.Errorf("%s, %d clients: %w", s.name(), n, err)
				}
				if acc[s.name()] == nil {
					acc[s.name()] = &measure{}
				}
				acc[s.name()].add(m)
				fmt.Fprintf(logw, "%-6s clients=%-3d round %d: %.0f pairs/s\n", s.name(), n, r+1, float64(m.n)/m.elapsed.Seconds())
			}
		}
		for name, m := range acc {
			if res[name] == nil {
				res[name] = Result{}
			}
			f := m.figures()
			for _, s := range sys {
				if s.name() == name {
					f.Elections = s.term() - terms[name]
				}
			}
			res[name][fmt.Sprintf("clients_%d", n)] = f
		}
	}
	return res, nil
}

func printTable(w io.Writer, res map[string]Result, clients []int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tclients\tpairs/s\tp50 ms\tp99 ms\tvs raft\tvs etcd\telections\t")
	for _, n := range clients {
		k := fmt.Sprintf("clients_%d", n)
		for _, name := range []string{"raft", "parley", "etcd"} {
			f, ok := res[name][k]
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%s\t%s\t%d\t\n", name, n, f.PairsPerS, f.P50Ms, f.P99Ms,
				ratio(f.PairsPerS, res["raft"][k].PairsPerS), ratio(f.PairsPerS, res["etcd"][k].PairsPerS), f.Elections)
		}
	}
	tw.Flush()
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
