package placement

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/parleyhq/parley/vsphere/sim"
)

// Policy tests, as 'opa test' has for Rego: a file NAME.tests.json beside
// NAME.lcc holds named scenarios, each a small datacentre and what must
// come of it. RunScenario runs one with Simulate.

// ScenarioFile is the content of a NAME.tests.json file.
type ScenarioFile struct {
	Policy    string     `json:"policy,omitempty"` // default: NAME of the file
	Scenarios []Scenario `json:"scenarios"`
}

// Scenario is a datacentre, facts added to the policy (rules), drains,
// and expectations.
type Scenario struct {
	Name   string         `json:"name"`
	Hosts  []ScenarioHost `json:"hosts"`
	VMs    []ScenarioVM   `json:"vms"`
	Facts  []string       `json:"facts,omitempty"` // e.g. "must_not_run_on(web1, h2)."
	Drain  []string       `json:"drain,omitempty"`
	Ticks  int            `json:"ticks,omitempty"` // default 20
	Expect Expectation    `json:"expect"`
}

// ScenarioHost is a host with its CPU capacity (MHz) and memory (MB).
type ScenarioHost struct {
	Name   string `json:"name"`
	CPUMHz int64  `json:"cpu_mhz"`
	MemMB  int64  `json:"mem_mb"`
}

// ScenarioVM is a VM on a host with its demand.
type ScenarioVM struct {
	Name   string `json:"name"`
	Host   string `json:"host"`
	CPUMHz int64  `json:"cpu_mhz"`
	MemMB  int64  `json:"mem_mb"`
}

// Expectation is what must come of a scenario; each field that is set is
// checked.
type Expectation struct {
	Moves             []ExpectMove      `json:"moves,omitempty"`     // each of these happens
	NotMoved          []string          `json:"not_moved,omitempty"` // these VMs stay
	NoMoves           bool              `json:"no_moves,omitempty"`
	MigrationsAtMost  *int              `json:"migrations_at_most,omitempty"`
	Maintenance       []string          `json:"maintenance,omitempty"` // these hosts end in maintenance mode
	Journal           []ExpectJournal   `json:"journal,omitempty"`     // each matches some journal entry
	TargetsAtMost     *float64          `json:"targets_at_most,omitempty"`
	MaxLoadAtMost     *float64          `json:"max_load_at_most,omitempty"` // after the run
	ImbalanceBelow    *float64          `json:"imbalance_below,omitempty"`  // stddev of host CPU load after the run
	ImbalanceLowered  bool              `json:"imbalance_lowered,omitempty"`
	HostVMCountAtMost map[string]int    `json:"host_vms_at_most,omitempty"`
	HostStates        map[string]string `json:"host_states,omitempty"` // host -> the state its worker reported (draining, drained, blocked, standby)
}

// ExpectMove is a move that must happen; empty fields match anything.
type ExpectMove struct {
	VM   string `json:"vm"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// ExpectJournal matches a journal entry: kind and VM exactly, reason as a
// substring; empty fields match anything.
type ExpectJournal struct {
	Kind   string `json:"kind,omitempty"`
	VM     string `json:"vm,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ScenarioResult says whether a scenario passed and, if not, what happened
// instead.
type ScenarioResult struct {
	Name     string      `json:"name"`
	Pass     bool        `json:"pass"`
	Failures []string    `json:"failures,omitempty"`
	Sim      *Simulation `json:"simulation,omitempty"`
}

// LoadScenarios reads and checks a tests file; errors name the scenario
// and the field.
func LoadScenarios(path string) (*ScenarioFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f ScenarioFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(f.Scenarios) == 0 {
		return nil, fmt.Errorf("%s: no scenarios", path)
	}
	names := map[string]bool{}
	for i, s := range f.Scenarios {
		where := fmt.Sprintf("%s: scenario %d (%q)", path, i+1, s.Name)
		if s.Name == "" || names[s.Name] {
			return nil, fmt.Errorf("%s: a scenario needs a unique name", where)
		}
		names[s.Name] = true
		if len(s.Hosts) < 2 {
			return nil, fmt.Errorf("%s: at least two hosts", where)
		}
		hosts := map[string]bool{}
		for _, h := range s.Hosts {
			if h.Name == "" || hosts[h.Name] || h.CPUMHz <= 0 || h.CPUMHz > 1<<30 || h.MemMB <= 0 {
				return nil, fmt.Errorf("%s: host %q needs a unique name and positive cpu_mhz and mem_mb", where, h.Name)
			}
			hosts[h.Name] = true
		}
		for _, v := range s.VMs {
			if v.Name == "" || !hosts[v.Host] || v.CPUMHz < 0 || v.MemMB < 0 {
				return nil, fmt.Errorf("%s: VM %q needs a name, a host of the scenario (not %q) and no negative demand", where, v.Name, v.Host)
			}
		}
		for _, d := range s.Drain {
			if !hosts[d] {
				return nil, fmt.Errorf("%s: drain of unknown host %q", where, d)
			}
		}
	}
	return &f, nil
}

// RunScenario simulates one scenario with the policy text (and evacuate,
// for drains) and checks its expectations.
func RunScenario(ctx context.Context, name, text string, extra map[string]string, s Scenario) ScenarioResult {
	res := ScenarioResult{Name: s.Name}
	var l sim.Layout
	idx := map[string]int{}
	for i, h := range s.Hosts {
		idx[h.Name] = i
		l.Hosts = append(l.Hosts, sim.HostSpec{Name: h.Name, Cores: 1, MHz: int(h.CPUMHz), MemMB: h.MemMB})
	}
	for _, v := range s.VMs {
		l.VMs = append(l.VMs, sim.VMSpec{Name: v.Name, Host: idx[v.Host], CPUMHz: v.CPUMHz, MemMB: v.MemMB})
	}
	if len(s.Facts) > 0 {
		text += "\n// facts of scenario " + s.Name + "\n" + strings.Join(s.Facts, "\n") + "\n"
	}
	out, err := Simulate(ctx, SimConfig{Name: name, Text: text, Layout: l, Drain: s.Drain, Ticks: s.Ticks, Extra: extra})
	res.Sim = out
	if err != nil {
		res.Failures = append(res.Failures, "the simulation failed: "+err.Error())
		return res
	}
	res.Failures = check(s.Expect, out)
	res.Pass = len(res.Failures) == 0
	return res
}

func check(e Expectation, out *Simulation) []string {
	var f []string
	moved := map[string][]SimMigration{}
	for _, m := range out.Migrations {
		moved[m.VM] = append(moved[m.VM], m)
	}
	describe := func() string {
		if len(out.Migrations) == 0 {
			return "nothing moved"
		}
		var ms []string
		for _, m := range out.Migrations {
			ms = append(ms, fmt.Sprintf("%s %s->%s (tick %d)", m.VM, m.From, m.To, m.Tick))
		}
		return "moves: " + strings.Join(ms, ", ")
	}
	for _, want := range e.Moves {
		ok := false
		for _, m := range moved[want.VM] {
			ok = ok || ((want.From == "" || m.From == want.From) && (want.To == "" || m.To == want.To))
		}
		if !ok {
			f = append(f, fmt.Sprintf("expected %s to move%s%s; %s", want.VM, prefix(" from ", want.From), prefix(" to ", want.To), describe()))
		}
	}
	for _, vm := range e.NotMoved {
		if len(moved[vm]) > 0 {
			f = append(f, fmt.Sprintf("expected %s to stay; it moved %s->%s", vm, moved[vm][0].From, moved[vm][0].To))
		}
	}
	if e.NoMoves && len(out.Migrations) > 0 {
		f = append(f, "expected no moves; "+describe())
	}
	if e.MigrationsAtMost != nil && len(out.Migrations) > *e.MigrationsAtMost {
		f = append(f, fmt.Sprintf("expected at most %d migrations, got %d", *e.MigrationsAtMost, len(out.Migrations)))
	}
	for _, h := range e.Maintenance {
		in := false
		for _, x := range out.After.Hosts {
			in = in || (x.Name == h && x.InMaintenance)
		}
		if !in {
			f = append(f, fmt.Sprintf("expected %s in maintenance mode; it is not (%s)", h, describe()))
		}
	}
	for _, want := range e.Journal {
		ok := false
		var seen []string
		for _, j := range out.Journal {
			seen = append(seen, fmt.Sprintf("%s %s %s", j.Kind, j.VM, j.Reason))
			ok = ok || ((want.Kind == "" || j.Kind == want.Kind) && (want.VM == "" || j.VM == want.VM) && strings.Contains(j.Reason, want.Reason))
		}
		if !ok {
			f = append(f, fmt.Sprintf("expected a journal entry %+v; the journal has %q", want, seen))
		}
	}
	if e.TargetsAtMost != nil && out.TargetPeak > *e.TargetsAtMost+1e-9 {
		f = append(f, fmt.Sprintf("a target reached a load of %.3f, over %.3f", out.TargetPeak, *e.TargetsAtMost))
	}
	if e.MaxLoadAtMost != nil && out.After.MaxLoad > *e.MaxLoadAtMost+1e-9 {
		f = append(f, fmt.Sprintf("the most loaded host, %s, ends at %.3f, over %.3f", out.After.MaxHost, out.After.MaxLoad, *e.MaxLoadAtMost))
	}
	if e.ImbalanceBelow != nil && out.After.StdDev >= *e.ImbalanceBelow {
		f = append(f, fmt.Sprintf("the imbalance ends at %.3f, not below %.3f", out.After.StdDev, *e.ImbalanceBelow))
	}
	if e.ImbalanceLowered && out.After.StdDev >= out.Before.StdDev {
		f = append(f, fmt.Sprintf("the imbalance did not fall: %.3f -> %.3f", out.Before.StdDev, out.After.StdDev))
	}
	for h, want := range e.HostStates {
		got := out.HostStates[h]
		if got != want && !strings.HasPrefix(got, want+":") {
			f = append(f, fmt.Sprintf("expected host %s reported %s; it reported %q", h, want, got))
		}
	}
	for h, n := range e.HostVMCountAtMost {
		for _, x := range out.After.Hosts {
			if x.Name == h && x.VMs > n {
				f = append(f, fmt.Sprintf("host %s ends with %d VMs, over %d", h, x.VMs, n))
			}
		}
	}
	return f
}

func prefix(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
