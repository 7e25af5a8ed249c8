// Package policies holds the LCC policies parley ships (embedded), the
// vocabulary: the constraints a policy may call besides the interpreter's
// builtins and its own facts, and the parameter set: every param(Name,
// Value) a policy may state, with its type, range and default. Workers implement the vocabulary (a test in
// package worker checks that they implement exactly it); the store and
// 'parley lcc check' validate policies against it, so the store never
// imports the worker.
package policies

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/parleyhq/parley/lcc"
)

//go:embed *.lcc
var files embed.FS

// Vocabulary lists the constraints workers provide.
var Vocabulary = []lcc.ConstraintInfo{
	// observations
	{Name: "self_host", Arity: 1, Doc: "self_host(H): the name of this worker's ESXi host"},
	{Name: "load", Arity: 2, Doc: "load(CPU, Mem): this host's smoothed CPU and memory use, as shares of capacity"},
	{Name: "capacity", Arity: 2, Doc: "capacity(CPUMHz, MemMB): this host's capacity"},
	{Name: "vms", Arity: 1, Doc: "vms(L): the VMs on this host as a list of vm(Name, CPUMHz, MemMB)"},
	{Name: "peers", Arity: 2, Doc: "peers(Role, Ids): the live peer workers (all workers can play any role)"},
	{Name: "vm_count", Arity: 1, Doc: "vm_count(N): the powered-on VMs on this host"},
	{Name: "drain_requested", Arity: 1, Doc: "drain_requested(Who): an operator asked (parley host drain) for this host to be emptied"},
	// decisions
	{Name: "overloaded", Arity: 1, Doc: "overloaded(Load): smoothed CPU load has stayed above param(high_load) for param(hold_time) seconds"},
	{Name: "fleet_calm", Arity: 0, Doc: "fleet_calm: no available host is above the high threshold (or this worker follows one policy only), so consolidation may empty hosts without balancing filling them again"},
	{Name: "underloaded", Arity: 1, Doc: "underloaded(Load): smoothed CPU load has stayed below param(low_load) for param(hold_time) seconds"},
	{Name: "pick_vm", Arity: 3, Doc: "pick_vm(VM, CPU, Mem): a VM to move off this host: not under negotiation, not cooling down, not bound here by a must rule"},
	{Name: "fits", Arity: 3, Doc: "fits(VM, CPU, Mem): the VM fits here under param(high_load) after current reservations, and the must rules allow it"},
	{Name: "bid_score", Arity: 4, Doc: "bid_score(VM, CPU, Mem, Score): a bid from this host's sampled load: higher is better"},
	{Name: "best_bid", Arity: 3, Doc: "best_bid(Bids, Winner, Losers): the highest b(Peer, Score) wins; the other peers lose"},
	{Name: "rules_allow", Arity: 2, Doc: "rules_allow(VM, Host): the policy's must rules allow VM on Host"},
	// actions
	{Name: "reserve", Arity: 4, Doc: "reserve(VM, CPU, Mem, Res): reserve the capacity on this host in the store (checked again under a lock)"},
	{Name: "take_leases", Arity: 4, Doc: "take_leases(VM, Winner, Res, Lease): take the VM lease and a migration slot on both hosts, all or nothing"},
	{Name: "migrate", Arity: 4, Doc: "migrate(VM, Winner, Res, Lease): vMotion the VM to the winner's host, renewing the leases; journal it; release"},
	{Name: "release", Arity: 1, Doc: "release(Res): give back a reservation or leases"},
	{Name: "journal_note", Arity: 2, Doc: "journal_note(VM, Reason): record a negotiation that ended without a move"},
	{Name: "report_drain", Arity: 2, Doc: "report_drain(State, Reason): record this host's drain state (draining, drained, blocked, standby) and the VMs left"},
	{Name: "set_maintenance", Arity: 1, Doc: "set_maintenance(On): put this host into maintenance mode (true) or take it out (false) through vSphere"},
}

// Known returns the vocabulary as a set for the checker.
func Known() lcc.Known { return lcc.NewKnown(Vocabulary...) }

// Names lists the shipped policies.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".lcc"))
	}
	sort.Strings(out)
	return out
}

// Source returns a shipped policy's text.
func Source(name string) ([]byte, error) {
	b, err := files.ReadFile(name + ".lcc")
	if err != nil {
		return nil, fmt.Errorf("policies: no shipped policy %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// Check parses and checks a policy text against the vocabulary and the
// parameter set.
func Check(file string, text []byte) (*lcc.Model, lcc.ErrorList) {
	m, errs := lcc.Parse(file, text)
	if errs.HasErrors() {
		return m, errs
	}
	errs = append(lcc.Check(m, Known()), CheckParams(m)...)
	errs.Sort()
	return m, errs
}
