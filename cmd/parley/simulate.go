package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/parleyhq/parley/worker/placement"
)

func init() {
	register("policy",
		command{"simulate", "run a policy on an in-memory copy of a datacentre and print what it would do; changes nothing", (*cli).policySimulate},
	)
}

// policySimulate runs the workers' real code on a generated datacentre.
// With FILE it reads no store; without, it takes NAME's active version
// (or --version) from the store.
func (c *cli) policySimulate(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy simulate", "policy simulate NAME [FILE] [--version N] [--hosts N --vms M --seed S --skew K --util U] [--drain HOST ...] [--ticks T] [-o table|json]")
	version := fs.Int("version", 0, "simulate this version from the store (default: the active one)")
	hosts := fs.Int("hosts", 8, "hosts of the generated datacentre")
	vms := fs.Int("vms", 64, "VMs of the generated datacentre")
	seed := fs.Int64("seed", 1, "seed of the generated layout")
	skew := fs.Float64("skew", 0.5, "share of the VMs on the first quarter of the hosts (0.25 is even)")
	util := fs.Float64("util", 0.45, "total CPU demand as a share of the capacity")
	ticks := fs.Int("ticks", 20, "ticks at most (every worker ticks once per tick); the run stops after a tick with nothing to do")
	var drains stringList
	fs.Var(&drains, "drain", "drain this host before the first tick (repeatable)")
	invFile := fs.String("inventory", "", "a datacentre recorded with 'parley inventory export' instead of a generated one")
	pos, code, ok := c.parse(fs, args, 1, 2)
	if !ok {
		return code
	}
	if *hosts < 2 || *hosts > 4096 || *vms < 1 || *vms > 200000 || *skew <= 0 || *skew > 1 || *util <= 0 || *util > 2 || *ticks < 1 || *ticks > 10000 {
		fmt.Fprintln(c.stderr, "parley policy simulate: --hosts 2..4096, --vms 1..200000, --skew in (0, 1], --util in (0, 2], --ticks 1..10000")
		return exitUsage
	}
	if *sf.output != "table" && *sf.output != "json" {
		fmt.Fprintf(c.stderr, "parley: -o must be table or json, not %q\n", *sf.output)
		return exitUsage
	}
	name := pos[0]
	var text string
	if len(pos) == 2 {
		b, err := os.ReadFile(pos[1])
		if err != nil {
			fmt.Fprintln(c.stderr, "parley policy simulate:", err)
			return exitUsage
		}
		text = string(b)
	} else {
		cl, code, ok := c.storeClient(sf)
		if !ok {
			return code
		}
		if *version > 0 {
			v, err := cl.PolicyVersion(ctx, name, *version)
			if err != nil {
				return c.storeErr("policy simulate", err)
			}
			text = v.Text
		} else {
			v, err := cl.ActivePolicy(ctx, name, false)
			if err != nil {
				return c.storeErr("policy simulate", err)
			}
			text = v.Text
		}
	}
	file := name + ".lcc"
	if len(pos) == 2 {
		file = pos[1]
	}
	if _, diags := policies.Check(file, []byte(text)); diags.HasErrors() {
		c.printDiags(diags)
		return exitFailed
	}
	extra := map[string]string{}
	if name != "evacuate" {
		if src, err := policies.Source("evacuate"); err == nil {
			extra["evacuate"] = string(src) // a drain needs it, as in a real fleet
		}
	}
	layout := sim.Generate(*hosts, *vms, *seed, *skew, *util)
	if *invFile != "" {
		var err error
		if layout, err = readInventory(*invFile); err != nil {
			fmt.Fprintln(c.stderr, "parley policy simulate:", err)
			return exitUsage
		}
	}
	res, err := placement.Simulate(ctx, placement.SimConfig{Name: name, Text: text, Layout: layout,
		Drain: drains, Ticks: *ticks, Extra: extra})
	if err != nil {
		fmt.Fprintln(c.stderr, "parley policy simulate:", err)
		return exitFailed
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, res)
		return exitOK
	}
	c.printSimulation(res)
	return exitOK
}

func (c *cli) printSimulation(res *placement.Simulation) {
	fmt.Fprintf(c.stdout, "policy %s on %d hosts, %d ticks (simulated: nothing was changed)\n\n", res.Policy, len(res.Before.Hosts), res.Ticks)
	t := newTable(c.stdout, "HOST", "CPU BEFORE", "CPU AFTER", "MEM AFTER", "VMS BEFORE", "VMS AFTER", "")
	for i, b := range res.Before.Hosts {
		a := res.After.Hosts[i]
		note := ""
		if a.InMaintenance {
			note = "maintenance"
		}
		t.row(b.Name, pct(b.CPU), bar(a.CPU, 20)+" "+pct(a.CPU), pct(a.Mem), fmt.Sprint(b.VMs), fmt.Sprint(a.VMs), note)
	}
	t.flush()
	fmt.Fprintln(c.stdout)
	if len(res.Migrations) == 0 {
		fmt.Fprintln(c.stdout, "no migrations")
	} else {
		mt := newTable(c.stdout, "TICK", "VM", "FROM", "TO")
		for _, m := range res.Migrations {
			mt.row(fmt.Sprint(m.Tick), m.VM, m.From, m.To)
		}
		mt.flush()
	}
	for _, j := range res.Journal {
		fmt.Fprintf(c.stdout, "journal: %s %s %s %s\n", j.Kind, j.VM, j.Outcome, j.Reason)
	}
	fmt.Fprintf(c.stdout, "\nimbalance (stddev of host CPU load) %.3f -> %.3f; most loaded %s %s -> %s %s; %d migrations; negotiations %v\n",
		res.Before.StdDev, res.After.StdDev, res.Before.MaxHost, pct(res.Before.MaxLoad), res.After.MaxHost, pct(res.After.MaxLoad), len(res.Migrations), res.Outcomes)
	for _, n := range res.Notes {
		fmt.Fprintln(c.stdout, "note:", n)
	}
}

func pct(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) }

// simulateOn simulates a policy text on a recorded datacentre, or on the
// default generated one (8 hosts, 64 VMs, seed 1).
func (c *cli) simulateOn(ctx context.Context, name, text, invFile string) (*placement.Simulation, error) {
	layout := sim.Generate(8, 64, 1, 0.5, 0.45)
	if invFile != "" {
		var err error
		if layout, err = readInventory(invFile); err != nil {
			return nil, err
		}
	}
	extra := map[string]string{}
	if name != "evacuate" {
		if src, err := policies.Source("evacuate"); err == nil {
			extra["evacuate"] = string(src)
		}
	}
	return placement.Simulate(ctx, placement.SimConfig{Name: name, Text: text, Layout: layout, Extra: extra})
}

// diffSimulations runs two versions on one datacentre and says how their
// outcomes differ.
func (c *cli) diffSimulations(ctx context.Context, cl *raftstore.Client, name string, v1, v2 int, invFile string) int {
	var res [2]*placement.Simulation
	for i, v := range []int{v1, v2} {
		pv, err := cl.PolicyVersion(ctx, name, v)
		if err != nil {
			return c.storeErr("policy diff", err)
		}
		if res[i], err = c.simulateOn(ctx, name, pv.Text, invFile); err != nil {
			fmt.Fprintln(c.stderr, "parley policy diff --simulate:", err)
			return exitUsage
		}
	}
	fmt.Fprintf(c.stdout, "\nsimulated on one copy of the datacentre:\n")
	t := newTable(c.stdout, "VERSION", "IMBALANCE", "MOST LOADED", "MIGRATIONS", "TICKS")
	for i, v := range []int{v1, v2} {
		r := res[i]
		t.row(fmt.Sprint(v), fmt.Sprintf("%.3f -> %.3f", r.Before.StdDev, r.After.StdDev), pct(r.After.MaxLoad), fmt.Sprint(len(r.Migrations)), fmt.Sprint(r.Ticks))
	}
	t.flush()
	moves := func(r *placement.Simulation) map[string]string {
		m := map[string]string{}
		for _, x := range r.Migrations {
			m[x.VM] = x.To
		}
		return m
	}
	a, b := moves(res[0]), moves(res[1])
	var only []string
	for vm, to := range a {
		if b[vm] != to {
			only = append(only, fmt.Sprintf("  version %d moves %s to %s; version %d %s", v1, vm, to, v2, destination(b[vm])))
		}
	}
	for vm, to := range b {
		if _, ok := a[vm]; !ok {
			only = append(only, fmt.Sprintf("  version %d moves %s to %s; version %d leaves it", v2, vm, to, v1))
		}
	}
	sort.Strings(only)
	if len(only) == 0 {
		fmt.Fprintln(c.stdout, "both versions make the same moves")
	}
	for _, o := range only {
		fmt.Fprintln(c.stdout, o)
	}
	return exitOK
}

func destination(to string) string {
	if to == "" {
		return "leaves it"
	}
	return "moves it to " + to
}
