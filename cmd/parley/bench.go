package main

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/parleyhq/parley/worker/placement"
)

func init() {
	register("bench",
		command{"placement", "compare balance, first-fit and a central greedy optimiser on an in-memory datacentre", (*cli).benchPlacement},
	)
}

func (c *cli) benchPlacement(ctx context.Context, args []string) int {
	fs := c.newFlags("bench placement", "bench placement --hosts N --vms M --seed S [--rounds R] [-o table|json]")
	hosts := fs.Int("hosts", 64, "hosts")
	vms := fs.Int("vms", 1000, "VMs")
	seed := fs.Int64("seed", 1, "seed of the layout")
	rounds := fs.Int("rounds", 200, "give up after this many rounds")
	out := fs.String("o", "table", "output format: table or json")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *hosts < 2 || *hosts > 4096 || *vms < 1 || *vms > 200000 || *rounds < 1 {
		fmt.Fprintln(c.stderr, "parley bench placement: --hosts 2..4096, --vms 1..200000, --rounds positive")
		return exitUsage
	}
	l := sim.Generate(*hosts, *vms, *seed, 0.5, 0.45)
	results := []placement.Result{placement.StartState(l)}
	for _, p := range []string{"balance", "first-fit"} {
		r, err := placement.RunPolicy(ctx, l, p, *rounds)
		if err != nil {
			fmt.Fprintf(c.stderr, "parley bench placement: %s: %v\n", p, err)
			return exitFailed
		}
		results = append(results, r)
	}
	g, err := placement.Greedy(l, 0.7)
	if err != nil {
		fmt.Fprintf(c.stderr, "parley bench placement: greedy: %v\n", err)
		return exitFailed
	}
	results = append(results, g)
	// A fair comparison: greedy stopped at the number of migrations
	// balance made, and every method's standard deviation after 25%, 50%
	// and 100% of that number.
	budget := results[1].Migrations
	gb, err := placement.GreedyAt(l, 0.7, max(budget, 1))
	if err != nil {
		fmt.Fprintf(c.stderr, "parley bench placement: greedy@balance: %v\n", err)
		return exitFailed
	}
	results = append(results, gb)
	for i := range results[1:] {
		r := &results[i+1]
		if r.StdDevAt, err = placement.Trajectory(l, r.Moves(), budget); err != nil {
			fmt.Fprintf(c.stderr, "parley bench placement: %s: %v\n", r.Method, err)
			return exitFailed
		}
	}
	if *out == "json" {
		writeJSON(c.stdout, results)
		return exitOK
	}
	fmt.Fprintf(c.stdout, "%d hosts, %d VMs, seed %d\n", *hosts, *vms, *seed)
	t := newTable(c.stdout, "METHOD", "STDDEV", "VS GREEDY", "VS GREEDY@BALANCE", "AT 25%", "AT 50%", "MAX HOST", "MIGRATIONS", "VS GREEDY", "ROUNDS", "CPU")
	for _, r := range results {
		at := func(k string) string {
			if v, ok := r.StdDevAt[k]; ok {
				return fmt.Sprintf("%.4f", v)
			}
			return "-"
		}
		t.row(r.Method, fmt.Sprintf("%.4f", r.StdDev), ratio(r.StdDev, g.StdDev), ratio(r.StdDev, gb.StdDev), at("25%"), at("50%"),
			fmt.Sprintf("%s %.0f%%", r.MaxHost, r.MaxLoad*100),
			fmt.Sprint(r.Migrations), ratio(float64(r.Migrations), float64(g.Migrations)), fmt.Sprint(r.Rounds), r.CPU.Round(time.Millisecond).String())
	}
	t.flush()
	fmt.Fprintf(c.stdout, "AT 25%%/50%%: the standard deviation after that share of the %d migrations balance made\n", budget)
	return exitOK
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
