package lcc

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// VerifyConfig configures Verify.
type VerifyConfig struct {
	Program    *Program
	Agents     []AgentSpec // every agent starts in its role; ids must differ
	Domain     *Domain     // what host constraints may answer (nil: none)
	Properties *Properties // nil: none
	// Bound is the deepest run explored, in transitions (default 1,000).
	Bound int
	// MaxStates stops the search past this many states (default 3,000,000).
	MaxStates int
	// Mailbox bounds the messages waiting for one agent (default 16): a
	// state past it is not explored further, and the search is bounded.
	// A model that sends without waiting would otherwise have no end.
	Mailbox int
	// Timeouts: "any" (default), a deadline may pass at any moment while
	// its receive waits; "quiescent", only when nothing else can happen.
	Timeouts string
	// Symmetry merges states that differ only by a renaming of agents that
	// play the same role with the same knowledge, unless a property, the
	// domain, the facts or a knowledge file names one of them.
	Symmetry bool
	// Context stops the search early (the report is then bounded).
	Context context.Context
}

// Finding is one verdict with its shortest counterexample.
type Finding struct {
	Kind     string      `json:"kind"`     // deadlock, lost_message, late_message, error, property, bound
	Severity string      `json:"severity"` // error or warning
	Property string      `json:"property,omitempty"`
	Summary  string      `json:"summary"`
	Steps    []TraceStep `json:"steps,omitempty"`
	path     []pathStep
}

// TraceStep is one transition of a counterexample.
type TraceStep struct {
	N        int           `json:"n"`
	Agent    string        `json:"agent"`
	Role     string        `json:"role"`
	Kind     string        `json:"transition"` // run, receive, expire
	Path     []int         `json:"path,omitempty"`
	Choices  []int         `json:"choices,omitempty"`
	Events   []VerifyEvent `json:"events"`
	Bindings []string      `json:"bindings,omitempty"`
}

// PropertyResult is one property's verdict.
type PropertyResult struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Holds  bool   `json:"holds"`
	Detail string `json:"detail,omitempty"`
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Complete     bool             `json:"complete"`
	States       int              `json:"states"`
	Transitions  int              `json:"transitions"`
	Depth        int              `json:"depth"`
	EndStates    int              `json:"end_states"`
	Seconds      float64          `json:"seconds"`
	StatesPerSec float64          `json:"states_per_second"`
	Timeouts     string           `json:"timeouts"`
	Symmetry     []string         `json:"symmetry,omitempty"` // the groups of agents treated as interchangeable
	Findings     []*Finding       `json:"findings"`
	Properties   []PropertyResult `json:"properties,omitempty"`
	Unreached    []string         `json:"unreached,omitempty"`
	Agents       []string         `json:"agents"`
	// Ends lists how the agents can end, one line per distinct end
	// ("h1:closed h2:failed"; waiting agents of a deadlock are "waiting").
	Ends []string `json:"ends,omitempty"`
}

// Errors counts the findings of severity error.
func (r *VerifyReport) Errors() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == "error" {
			n++
		}
	}
	return n
}

type pathStep struct {
	t       trans
	choices []int
}

type vnode struct {
	parent  int32
	depth   int32
	t       trans
	choices []int
}

type verifier struct {
	cfg     VerifyConfig
	m       *machine
	props   []*Property
	groups  [][]int
	nodes   []vnode
	seen    map[uint64]int32
	seed    maphash.Seed
	found   map[string]*Finding
	report  *VerifyReport
	witness map[int]bool
	ends    map[string]bool
	blank   map[string]string // every symmetric agent's id to ?
	scratch *writer           // reused to write agents' canonical forms
}

// Verify explores every run of a model among the given agents: message
// deliveries, or-choices, par interleavings, deadlines passing or not and
// the domain's outcomes for each host constraint. Breadth first, so each
// counterexample is a shortest one.
func Verify(cfg VerifyConfig) (*VerifyReport, error) {
	if cfg.Program == nil || len(cfg.Agents) == 0 {
		return nil, errors.New("lcc: verify needs a model and at least one agent")
	}
	if cfg.Bound <= 0 {
		cfg.Bound = 1000
	}
	if cfg.MaxStates <= 0 {
		cfg.MaxStates = 3_000_000
	}
	if cfg.Mailbox <= 0 {
		cfg.Mailbox = 16
	}
	switch cfg.Timeouts {
	case "":
		cfg.Timeouts = "any"
	case "any", "quiescent":
	default:
		return nil, fmt.Errorf("lcc: timeouts must be any or quiescent, not %q", cfg.Timeouts)
	}
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	m, init, err := newMachine(cfg.Program, cfg.Agents, cfg.Domain)
	if err != nil {
		return nil, err
	}
	v := &verifier{cfg: cfg, m: m, seen: map[uint64]int32{}, seed: maphash.MakeSeed(), found: map[string]*Finding{},
		report: &VerifyReport{Timeouts: cfg.Timeouts}, witness: map[int]bool{}, ends: map[string]bool{}}
	if cfg.Properties != nil {
		v.props = cfg.Properties.List
	}

	init.mon = make([]monState, len(v.props))
	for _, s := range m.specs {
		v.report.Agents = append(v.report.Agents, s.id+" ("+FormatTerm(s.entry)+")")
	}
	if cfg.Symmetry {
		v.symmetryGroups()
	}
	// The search makes many short-lived copies: collecting less often is
	// faster, at some memory.
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	start := time.Now()
	v.search(init)
	v.report.Seconds = time.Since(start).Seconds()
	if v.report.Seconds > 0 {
		v.report.StatesPerSec = float64(v.report.States) / v.report.Seconds
	}
	v.finish(init)
	return v.report, nil
}

type succ struct {
	h       uint64
	hashed  bool
	s       *mState
	events  []VerifyEvent
	t       trans
	choices []int
	bad     []int // never-properties violated by its events
	seen    []int // sometimes-properties witnessed
}

const maxChoices = 1 << 16

var noPOR = false

func (v *verifier) successors(s *mState, t trans) []succ {
	var out []succ
	var choices []int
	for n := 0; n < maxChoices; n++ {
		ns, evs, ch := v.m.apply(s, t, choices)
		out = append(out, succ{s: ns, events: evs, t: t, choices: append([]int(nil), ch.took...)})
		next, ok := ch.next()
		if !ok {
			break
		}
		choices = next
	}
	return out
}

// succHash hashes a successor once its monitors have run.
func (v *verifier) succHash(x *succ) uint64 {
	if !x.hashed {
		x.s.mon, x.bad, x.seen = v.m.observe(v.props, x.s.mon, x.events)
		x.h, x.hashed = v.hash(x.s), true
	}
	return x.h
}

func sends(ss []succ) bool {
	for _, x := range ss {
		for _, e := range x.events {
			if e.Kind == "send" {
				return true
			}
		}
	}
	return false
}

type queued struct {
	idx int32
	s   *mState
}

func (v *verifier) search(init *mState) {
	r := v.report
	v.nodes = append(v.nodes, vnode{parent: -1})
	v.seen[v.hash(init)] = 0
	queue := []queued{{0, init}}
	complete := true
	for len(queue) > 0 {
		q := queue[0]
		queue[0] = queued{}
		queue = queue[1:]
		if len(queue) == 0 {
			queue = nil
		}
		if v.cfg.Context.Err() != nil {
			complete = false
			v.addFinding(&Finding{Kind: "bound", Severity: "warning", Summary: "stopped: " + v.cfg.Context.Err().Error()}, -1)
			break
		}
		depth := int(v.nodes[q.idx].depth)
		if depth > r.Depth {
			r.Depth = depth
		}
		steps, expiries := v.m.enabled(q.s)
		if v.cfg.Timeouts == "any" || len(steps) == 0 {
			steps = append(steps, expiries...)
		}
		if len(steps) == 0 {
			v.terminal(q.idx, q.s)
			continue
		}
		if full := v.fullMailbox(q.s); full != "" {
			if complete {
				v.addFinding(&Finding{Kind: "bound", Severity: "warning", Summary: fmt.Sprintf("mailbox bound reached: %s holds more than %d messages, and runs past that were not explored, so this is not a proof (raise --mailbox)", full, v.cfg.Mailbox)}, q.idx)
			}
			complete = false
			continue
		}
		if depth >= v.cfg.Bound {
			if complete {
				v.addFinding(&Finding{Kind: "bound", Severity: "warning", Summary: fmt.Sprintf("bound reached: runs longer than %d transitions were not explored, so this is not a proof (raise --bound)", v.cfg.Bound)}, q.idx)
			}
			complete = false
			continue
		}
		for _, x := range v.expand(q.s, steps) {
			r.Transitions++
			h := v.succHash(&x)
			bad := x.bad
			for _, pi := range x.seen {
				if !v.witness[pi] {
					v.witness[pi] = true
				}
			}
			if _, ok := v.seen[h]; !ok {
				if len(v.nodes) >= v.cfg.MaxStates {
					if complete {
						v.addFinding(&Finding{Kind: "bound", Severity: "warning", Summary: fmt.Sprintf("state limit reached: more than %d states, so this is not a proof", v.cfg.MaxStates)}, q.idx)
					}
					complete = false
					continue
				}
				idx := int32(len(v.nodes))
				v.nodes = append(v.nodes, vnode{parent: q.idx, depth: int32(depth + 1), t: x.t, choices: x.choices})
				v.seen[h] = idx
				queue = append(queue, queued{idx, x.s})
			}
			for _, pi := range bad {
				pr := v.props[pi]
				v.addFindingVia(&Finding{Kind: "property", Severity: "error", Property: pr.Name,
					Summary: fmt.Sprintf("property %s (%s) is violated", pr.Name, pr.where)}, q.idx, x)
			}
			for _, e := range x.events {
				if e.Kind == "end" && x.s.agents[x.t.agent].broken {
					ag := x.s.agents[x.t.agent]
					v.addFindingVia(&Finding{Kind: "error", Severity: "error",
						Summary: fmt.Sprintf("%s fails with a model error: %s", v.m.specs[ag.idx].id, ag.reason)}, q.idx, x)
				}
			}
		}
	}
	r.States = len(v.nodes)
	r.Complete = complete
}

// expand picks the transitions to explore from a state: one agent's,
// when none of them sends or races a deadline and none leads back to a
// state already seen (they commute with everything the others do);
// otherwise all of them.
func (v *verifier) expand(s *mState, steps []trans) []succ {
	byAgent := map[int][]trans{}
	var agents []int
	for _, t := range steps {
		if byAgent[t.agent] == nil {
			agents = append(agents, t.agent)
		}
		byAgent[t.agent] = append(byAgent[t.agent], t)
	}
	cache := map[int][]succ{}
	if len(agents) > 1 && !noPOR {
	candidates:
		for _, a := range agents {
			for _, t := range byAgent[a] {
				if t.kind == tExpire {
					continue candidates
				}
			}
			var ss []succ
			for _, t := range byAgent[a] {
				ss = append(ss, v.successors(s, t)...)
			}
			cache[a] = ss
			if sends(ss) {
				continue
			}
			// The cycle proviso, as breadth-first searches state it: one
			// agent's moves may stand for everyone's only if one of them
			// leads somewhere new, so no agent is put off forever on a
			// cycle.
			for i := range ss {
				if _, ok := v.seen[v.succHash(&ss[i])]; !ok {
					return ss
				}
			}
		}
	}
	var all []succ
	for _, a := range agents {
		ss, ok := cache[a]
		if !ok {
			for _, t := range byAgent[a] {
				ss = append(ss, v.successors(s, t)...)
			}
		}
		all = append(all, ss...)
	}
	return all
}

// terminal judges a state where nothing can happen.
func (v *verifier) terminal(idx int32, s *mState) {
	var end []string
	for _, ag := range s.agents {
		st := ag.status.String()
		if !ag.status.ended() {
			st = "waiting"
		}
		end = append(end, v.m.specs[ag.idx].id+":"+st)
	}
	if e := strings.Join(end, " "); !v.ends[e] && len(v.ends) < 256 {
		v.ends[e] = true
		v.report.Ends = append(v.report.Ends, e)
	}
	var waiting []string
	for _, ag := range s.agents {
		if ag.status.ended() || v.m.dormant(ag) {
			continue
		}
		waiting = append(waiting, v.m.describeWait(ag))
	}
	if len(waiting) > 0 {
		v.addFinding(&Finding{Kind: "deadlock", Severity: "error",
			Summary: "deadlock: " + strings.Join(waiting, "; ")}, idx)
	} else {
		v.report.EndStates++
		for _, ag := range s.agents {
			for _, msg := range ag.mbox {
				late := false
				for _, p := range ag.late {
					if v.m.wouldHaveTaken(ag, p, msg) {
						late = true
						break
					}
				}
				what := fmt.Sprintf("%s sent %s to %s, who never took it", msg.FromID, FormatTerm(msg.Body), msg.ToID)
				if late {
					v.addFinding(&Finding{Kind: "late_message", Severity: "warning", Summary: "unconsumed message, late after a deadline: " + what}, idx)
				} else {
					v.addFinding(&Finding{Kind: "lost_message", Severity: "error", Summary: "unconsumed message, never receivable: " + what}, idx)
				}
			}
		}
	}
	for pi, pr := range v.props {
		if pr.Kind == "after" && len(s.mon[pi].items) > 0 {
			v.addFinding(&Finding{Kind: "property", Severity: "error", Property: pr.Name,
				Summary: fmt.Sprintf("property %s (%s) is violated: the run ends without %s", pr.Name, pr.where, pr.pending(s.mon[pi]))}, idx)
		}
	}
}

// dormant reports whether an agent is a responder that no message has
// started: in a real fleet it does not exist, so it is not waiting.
func (m *machine) dormant(ag *mAgent) bool {
	return !ag.woken && !m.initial[RoleKey(m.specs[ag.idx].entry)] && len(ag.mbox) == 0
}

func (m *machine) describeWait(ag *mAgent) string {
	var parts []string
	var walk func(th *mThread)
	walk = func(th *mThread) {
		if th == nil {
			return
		}
		for _, b := range th.par {
			walk(b)
		}
		for _, w := range th.wait {
			if w.expired {
				continue
			}
			pos := m.prog.Model.File.Position(w.recv.Msg.TermPos())
			parts = append(parts, fmt.Sprintf("%s (%s) waits for %s from %s with no deadline [%s]",
				m.specs[ag.idx].id, FormatTerm(Export(th.role)), FormatTerm(Export(instantiate(w.recv.Msg, w.env))),
				FormatTerm(Export(instantiate(w.recv.From.Role, w.env))), pos))
		}
	}
	walk(ag.root)
	if len(parts) == 0 {
		return m.specs[ag.idx].id + " cannot go on"
	}
	return strings.Join(parts, "; ")
}

func (v *verifier) pathTo(idx int32) []pathStep {
	var out []pathStep
	for i := idx; i > 0; i = v.nodes[i].parent {
		n := v.nodes[i]
		out = append(out, pathStep{t: n.t, choices: n.choices})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func (v *verifier) addFinding(f *Finding, idx int32) { v.addFindingThen(f, idx, nil) }

// addFindingVia records a finding whose counterexample ends with the
// transition x from the state parent.
func (v *verifier) addFindingVia(f *Finding, parent int32, x succ) {
	v.addFindingThen(f, parent, &pathStep{t: x.t, choices: x.choices})
}

// addFindingThen records the first finding of each kind (and property),
// with the path to state idx (none when idx < 0), then last.
func (v *verifier) addFindingThen(f *Finding, idx int32, last *pathStep) {
	key := f.Kind + "/" + f.Property
	if _, ok := v.found[key]; ok {
		return
	}
	if idx >= 0 {
		f.path = v.pathTo(idx)
	}
	if last != nil {
		f.path = append(f.path, *last)
	}
	v.found[key] = f
	v.report.Findings = append(v.report.Findings, f)
}

// finish fills in the properties' verdicts, the steps never reached, and
// each finding's counterexample.
func (v *verifier) finish(init *mState) {
	r := v.report
	for pi, pr := range v.props {
		res := PropertyResult{Name: pr.Name, Kind: pr.Kind, Holds: true}
		if f := v.found["property/"+pr.Name]; f != nil {
			res.Holds = false
		}
		if pr.Kind == "sometimes" && !v.witness[pi] {
			res.Holds = false
			res.Detail = "no explored run has such an event"
			if !r.Complete {
				res.Detail += " (the search was bounded)"
			}
			v.report.Findings = append(v.report.Findings, &Finding{Kind: "property", Severity: "error", Property: pr.Name,
				Summary: fmt.Sprintf("property %s (%s) never holds: %s", pr.Name, pr.where, res.Detail)})
		}
		r.Properties = append(r.Properties, res)
	}
	for _, st := range v.m.steps {
		if !v.m.reached[st] {
			r.Unreached = append(r.Unreached, v.m.prog.Model.File.Position(st.Pos).String())
		}
	}
	for _, f := range r.Findings {
		if f.path != nil {
			f.Steps = v.m.replaySteps(init, f.path)
		}
	}
	sort.Strings(r.Ends)
	sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Severity == "error" && r.Findings[j].Severity != "error" })
}

// replaySteps runs a path again from the first state and describes each
// transition: what happened, and the variables it bound.
func (m *machine) replaySteps(init *mState, path []pathStep) []TraceStep {
	steps := make([]TraceStep, len(path))
	for i, p := range path {
		steps[i] = TraceStep{Agent: m.specs[p.t.agent].id, Kind: p.t.kind.String(), Path: p.t.path, Choices: p.choices}
	}
	// The machine is deterministic given the choices, so this cannot
	// fail; were it to, the steps that replayed are still worth showing.
	res, _ := replayFrom(m, init, steps)
	return res.Steps
}

// bindings lists the bound variables of an agent's clause instances by
// name (the first instance holding a name wins).
func bindings(ag *mAgent) map[string]string {
	out := map[string]string{}
	var walk func(th *mThread)
	walk = func(th *mThread) {
		if th == nil {
			return
		}
		for i := len(th.k) - 1; i >= 0; i-- {
			for name, r := range th.k[i].env {
				if _, ok := out[name]; ok || r.Val == nil || strings.HasPrefix(name, "_") {
					continue
				}
				out[name] = FormatTerm(Export(r))
			}
		}
		for _, b := range th.par {
			walk(b)
		}
	}
	walk(ag.root)
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fullMailbox names an agent with more messages waiting than the bound.
func (v *verifier) fullMailbox(s *mState) string {
	for _, ag := range s.agents {
		if len(ag.mbox) > v.cfg.Mailbox {
			return v.m.specs[ag.idx].id
		}
	}
	return ""
}
