package policies

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/parleyhq/parley/lcc"
)

// ParamType is the type of a parameter's value.
type ParamType string

// The types a parameter may have.
const (
	Number  ParamType = "number"  // an integer or decimal literal
	Integer ParamType = "integer" // an integer literal
	Boolean ParamType = "boolean" // true or false
)

// ParamInfo declares one parameter a policy may set with a
// param(Name, Value) fact: its type, its range (inclusive), its default
// and what it means. The worker reads parameters through Params, the
// checker refuses undeclared names, wrong types and values out of range,
// and 'parley policy params' and the README list them.
type ParamInfo struct {
	Name    string    `json:"name"`
	Type    ParamType `json:"type"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Default string    `json:"default"` // as written in a policy; "" means unset (the feature is off)
	Unit    string    `json:"unit,omitempty"`
	Doc     string    `json:"doc"`

	set func(p *Params, v float64) // v is 0 or 1 for a boolean
}

// Params is a policy's parameters, defaults filled in.
type Params struct {
	HighLoad         float64       // CPU share no host should stay above, and no target may exceed
	LowLoad          float64       // CPU share below which a host counts as nearly empty
	HighMem          float64       // memory share no target may exceed
	MemWeight        float64       // weight of memory against CPU in a bid's score
	HoldTime         time.Duration // how long the smoothed load must stay high (or low) before acting
	SmoothingWindow  int           // load samples averaged
	Cooldown         time.Duration // a moved VM is not moved again within this time
	MaxMovesPerCycle int           // negotiations a host starts per tick
	MigrationSlots   int           // concurrent migrations a host takes part in
	LeaseTTL         time.Duration // lease lifetime; renewed while a migration runs
	DryRun           bool          // negotiate and journal, move nothing
	BalanceMargin    float64       // with HasBalanceMargin: shed above the fleet mean plus this
	HasBalanceMargin bool
	PickTowardMean   bool          // pick_vm offers the VM whose move evens this host with the least loaded peer
	MaxViewAge       time.Duration // a view of the host older than this: no offer, no bid, no vMotion
	StallTimeout     time.Duration // a relocation with no progress for this long is cancelled
	// FixRules (with HasFixRules): a VM breaking a mandatory vCenter rule
	// is moved first, and its host sheds at once. Unset: as the policy's
	// name had it before the parameter (off for consolidate and evacuate).
	FixRules    bool
	HasFixRules bool
	// IntoDRSClusters (with HasIntoDRSClusters): a host in a cluster left
	// to DRS still gives room to this policy's VMs. Unset: as the name had
	// it (on for evacuate only).
	IntoDRSClusters    bool
	HasIntoDRSClusters bool
}

func seconds(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }

// ParamSet declares every parameter, in the order they are documented.
var ParamSet = []ParamInfo{
	{Name: "high_load", Type: Number, Min: 0, Max: 1, Default: "0.7", Unit: "share",
		Doc: "CPU share above which a host sheds load, and which no target may exceed",
		set: func(p *Params, v float64) { p.HighLoad = v }},
	{Name: "low_load", Type: Number, Min: 0, Max: 1, Default: "0.3", Unit: "share",
		Doc: "CPU share below which a host counts as nearly empty",
		set: func(p *Params, v float64) { p.LowLoad = v }},
	{Name: "high_mem", Type: Number, Min: 0, Max: 1, Default: "0.9", Unit: "share",
		Doc: "memory share no target may exceed after taking a VM",
		set: func(p *Params, v float64) { p.HighMem = v }},
	{Name: "mem_weight", Type: Number, Min: 0, Max: 1, Default: "0", Unit: "share",
		Doc: "weight of memory in a target's bid: score = 1 - ((1 - w) x CPU share + w x memory share) after taking the VM; 0: CPU only",
		set: func(p *Params, v float64) { p.MemWeight = v }},
	{Name: "balance_margin", Type: Number, Min: 0, Max: 1, Default: "", Unit: "share",
		Doc: "when set, hosts above the fleet's mean load plus this shed load too, and no target is filled past it; unset: off",
		set: func(p *Params, v float64) { p.BalanceMargin, p.HasBalanceMargin = v, true }},
	{Name: "pick_toward_mean", Type: Boolean, Min: 0, Max: 1, Default: "false",
		Doc: "true: pick_vm offers the VM whose move to the least loaded peer with room (CPU, memory, rules) evens the two hosts most, as a central greedy optimiser moves; false: the smallest VM that gets this host under its ceiling, or else the largest",
		set: func(p *Params, v float64) { p.PickTowardMean = v != 0 }},
	{Name: "fix_rules", Type: Boolean, Min: 0, Max: 1, Default: "",
		Doc: "true: a VM that breaks a mandatory vCenter rule (anti-affinity, a VM-host must rule) is offered first and its host sheds at once; false: VMs are chosen for the policy's own reasons; unset: true, except for policies named consolidate or evacuate (texts from before this parameter)",
		set: func(p *Params, v float64) { p.FixRules, p.HasFixRules = v != 0, true }},
	{Name: "into_drs_clusters", Type: Boolean, Min: 0, Max: 1, Default: "",
		Doc: "true: a host in a cluster left to DRS still gives room to this policy's VMs (a drain empties its host wherever there is room); unset: true only for a policy named evacuate (texts from before this parameter)",
		set: func(p *Params, v float64) { p.IntoDRSClusters, p.HasIntoDRSClusters = v != 0, true }},
	{Name: "max_view_age", Type: Number, Min: 15, Max: 3600, Default: "30", Unit: "s",
		Doc: "a worker whose view of its host (what vCenter last answered for it) is older than this neither offers, bids nor starts a vMotion, and resumes by itself when vCenter answers again; at least 15: a watched view is answered for every 10 s",
		set: func(p *Params, v float64) { p.MaxViewAge = seconds(v) }},
	{Name: "stall_timeout", Type: Number, Min: 5, Max: 86400, Default: "300", Unit: "s",
		Doc: "a relocation whose task shows no progress for this long is cancelled and journaled stalled",
		set: func(p *Params, v float64) { p.StallTimeout = seconds(v) }},
	{Name: "hold_time", Type: Number, Min: 0, Max: 3600, Default: "3", Unit: "s",
		Doc: "how long the smoothed load must stay high (or low) before acting",
		set: func(p *Params, v float64) { p.HoldTime = seconds(v) }},
	{Name: "smoothing_window", Type: Integer, Min: 1, Max: 100, Default: "3", Unit: "samples",
		Doc: "load samples averaged into the smoothed load",
		set: func(p *Params, v float64) { p.SmoothingWindow = int(v) }},
	{Name: "cooldown", Type: Number, Min: 0, Max: 7 * 86400, Default: "60", Unit: "s",
		Doc: "a moved VM is not moved again within this time",
		set: func(p *Params, v float64) { p.Cooldown = seconds(v) }},
	{Name: "max_moves_per_cycle", Type: Integer, Min: 1, Max: 64, Default: "1",
		Doc: "negotiations a host starts per tick",
		set: func(p *Params, v float64) { p.MaxMovesPerCycle = int(v) }},
	{Name: "migration_slots", Type: Integer, Min: 1, Max: 1024, Default: "4",
		Doc: "concurrent migrations a host takes part in",
		set: func(p *Params, v float64) { p.MigrationSlots = int(v) }},
	{Name: "lease_ttl", Type: Number, Min: 1, Max: 3600, Default: "30", Unit: "s",
		Doc: "lease lifetime; renewed while a migration runs",
		set: func(p *Params, v float64) { p.LeaseTTL = seconds(v) }},
	{Name: "dry_run", Type: Boolean, Min: 0, Max: 1, Default: "false",
		Doc: "true: negotiate and journal would-migrate, reserve and move nothing",
		set: func(p *Params, v float64) { p.DryRun = v != 0 }},
}

var paramByName = func() map[string]*ParamInfo {
	m := make(map[string]*ParamInfo, len(ParamSet))
	for i := range ParamSet {
		m[ParamSet[i].Name] = &ParamSet[i]
	}
	return m
}()

// Range describes the accepted values, for messages and listings.
func (pi ParamInfo) Range() string {
	switch pi.Type {
	case Boolean:
		return "true or false"
	}
	return fmt.Sprintf("%g to %g", pi.Min, pi.Max)
}

// value reads a parameter's value from a term, or says why it cannot.
func (pi ParamInfo) value(t lcc.Term) (float64, error) {
	t = lcc.Deref(t)
	var v float64
	switch pi.Type {
	case Boolean:
		a, ok := t.(*lcc.Atom)
		if !ok || (a.Name != "true" && a.Name != "false") {
			return 0, fmt.Errorf("param(%s, %s): %s must be true or false", pi.Name, lcc.FormatTerm(t), pi.Name)
		}
		if a.Name == "true" {
			return 1, nil
		}
		return 0, nil
	case Integer:
		i, ok := t.(*lcc.Int)
		if !ok {
			return 0, fmt.Errorf("param(%s, %s): %s must be an integer", pi.Name, lcc.FormatTerm(t), pi.Name)
		}
		v = float64(i.V)
	default:
		switch n := t.(type) {
		case *lcc.Int:
			v = float64(n.V)
		case *lcc.Float:
			v = n.V
		default:
			return 0, fmt.Errorf("param(%s, %s): %s must be a number", pi.Name, lcc.FormatTerm(t), pi.Name)
		}
	}
	if math.IsNaN(v) || v < pi.Min || v > pi.Max {
		return 0, fmt.Errorf("param(%s, %s): %s must be between %g and %g", pi.Name, lcc.FormatTerm(t), pi.Name, pi.Min, pi.Max)
	}
	return v, nil
}

// DefaultParams returns every parameter at its default.
func DefaultParams() Params {
	var p Params
	for _, pi := range ParamSet {
		if pi.Default == "" {
			continue
		}
		v := 0.0
		if pi.Type == Boolean {
			if pi.Default == "true" {
				v = 1
			}
		} else {
			f, err := strconv.ParseFloat(pi.Default, 64)
			if err != nil {
				panic("policies: default of " + pi.Name + " is not a number: " + pi.Default) // a bug in ParamSet, caught by its test
			}
			v = f
		}
		pi.set(&p, v)
	}
	return p
}

// ReadParams returns a model's parameters, defaults filled in. A param
// fact the checker would refuse is skipped (its default stays): a stored
// policy passed CheckParams before it was written. A nil model gives the
// defaults.
func ReadParams(m *lcc.Model) Params {
	p := DefaultParams()
	if m == nil {
		return p
	}
	seen := map[string]bool{}
	for _, f := range m.Facts {
		name, val, ok := paramFact(f.Term)
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		pi := paramByName[name]
		if pi == nil {
			continue
		}
		if v, err := pi.value(val); err == nil {
			pi.set(&p, v)
		}
	}
	return p
}

// paramFact splits param(Name, Value) when t is one.
func paramFact(t lcc.Term) (name string, val lcc.Term, ok bool) {
	c, isC := lcc.Deref(t).(*lcc.Compound)
	if !isC || c.Functor != "param" || len(c.Args) != 2 {
		return "", nil, false
	}
	a, isA := lcc.Deref(c.Args[0]).(*lcc.Atom)
	if !isA {
		return lcc.FormatTerm(c.Args[0]), c.Args[1], true
	}
	return a.Name, c.Args[1], true
}

// CheckParams checks every param fact of a model against ParamSet (the
// name is declared, the value has its type and lies in its range, and no
// parameter is set twice) and every active_between fact (two "HH:MM"
// times). Errors carry the fact's file:line:col.
func CheckParams(m *lcc.Model) lcc.ErrorList {
	var errs lcc.ErrorList
	if m == nil || m.File == nil {
		return errs
	}
	errs = append(errs, checkSchedule(m)...)
	first := map[string]lcc.Position{}
	for _, f := range m.Facts {
		name, val, ok := paramFact(f.Term)
		if !ok {
			continue
		}
		pos := m.File.Position(f.Pos)
		pi := paramByName[name]
		if pi == nil {
			hint := "known: " + paramNames()
			if near := nearestParam(name); near != "" {
				hint = "did you mean " + near + "?"
			}
			errs.Add(pos, lcc.SevError, fmt.Sprintf("unknown parameter %q in %s (%s)", name, lcc.FormatTerm(f.Term), hint))
			continue
		}
		if _, err := pi.value(val); err != nil {
			errs.Add(pos, lcc.SevError, err.Error())
			continue
		}
		if p, dup := first[name]; dup {
			errs.Add(pos, lcc.SevError, fmt.Sprintf("parameter %s is set twice (first at %s)", name, p))
			continue
		}
		first[name] = pos
	}
	return errs
}

func paramNames() string {
	s := ""
	for i, pi := range ParamSet {
		if i > 0 {
			s += ", "
		}
		s += pi.Name
	}
	return s
}

// nearestParam is the declared name within two edits of name, if any.
func nearestParam(name string) string {
	best, bestD := "", 3
	for _, pi := range ParamSet {
		if d := editDistance(name, pi.Name); d < bestD {
			best, bestD = pi.Name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
