package policies

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/lcc"
)

func parse(t *testing.T, src string) *lcc.Model {
	t.Helper()
	m, errs := lcc.Parse("p.lcc", []byte(src))
	if errs.HasErrors() {
		t.Fatal(errs)
	}
	return m
}

const head = "r(a, initial)\na(a, X) :: null.\n"

// TestCheckParamsRefusesWhatItShould: an unknown name, a wrong type, a
// value out of range and a parameter set twice are errors at the fact's
// line:col; the shipped policies and a policy setting every parameter
// within range pass.
func TestCheckParamsRefusesWhatItShould(t *testing.T) {
	for _, c := range []struct {
		fact, pos, want string
	}{
		{"param(hight_load, 0.7).", "p.lcc:3:1", `unknown parameter "hight_load"`},
		{"param(hight_load, 0.7).", "p.lcc:3:1", "did you mean high_load?"},
		{"param(high_load, 1.5).", "p.lcc:3:1", "high_load must be between 0 and 1"},
		{"param(high_load, -0.1).", "p.lcc:3:1", "between 0 and 1"},
		{"param(high_load, high).", "p.lcc:3:1", "high_load must be a number"},
		{"param(smoothing_window, 2.5).", "p.lcc:3:1", "smoothing_window must be an integer"},
		{"param(smoothing_window, 0).", "p.lcc:3:1", "between 1 and 100"},
		{"param(migration_slots, 5000).", "p.lcc:3:1", "between 1 and 1024"},
		{"param(dry_run, 1).", "p.lcc:3:1", "dry_run must be true or false"},
		{"param(dry_run, yes).", "p.lcc:3:1", "dry_run must be true or false"},
		{"param(lease_ttl, 0).", "p.lcc:3:1", "between 1 and 3600"},
		{"param(cooldown, 30).\nparam(cooldown, 60).", "p.lcc:4:1", "cooldown is set twice (first at p.lcc:3:1)"},
	} {
		errs := CheckParams(parse(t, head+c.fact+"\n"))
		if len(errs) != 1 {
			t.Errorf("%s: %d errors %v, want 1", c.fact, len(errs), errs)
			continue
		}
		if got := errs[0].Pos.String(); got != c.pos || !strings.Contains(errs[0].Msg, c.want) || errs[0].Severity != lcc.SevError {
			t.Errorf("%s: got %s %q, want %s ... %q", c.fact, got, errs[0].Msg, c.pos, c.want)
		}
	}
	var all strings.Builder
	all.WriteString(head)
	for _, p := range ParamSet {
		v := p.Default
		if v == "" {
			v = "0.1" // an unset number
			if p.Type == Boolean {
				v = "true"
			}
		}
		all.WriteString("param(" + p.Name + ", " + v + ").\n")
	}
	if errs := CheckParams(parse(t, all.String())); len(errs) != 0 {
		t.Errorf("every parameter at its default: %v", errs)
	}
	for _, n := range Names() {
		src, _ := Source(n)
		if _, errs := Check(n+".lcc", src); errs.HasErrors() {
			t.Errorf("shipped policy %s: %v", n, errs)
		}
	}
	// Check (the store's and the CLI's validation) runs it too
	if _, errs := Check("p.lcc", []byte(head+"param(hight_load, 0.7).\n")); !errs.HasErrors() {
		t.Error("policies.Check accepted an unknown parameter")
	}
}

// TestReadParams: declared defaults where a policy is silent, the
// policy's values where it speaks, units converted.
func TestReadParams(t *testing.T) {
	d := ReadParams(nil)
	if d.HighLoad != 0.7 || d.LowLoad != 0.3 || d.HighMem != 0.9 || d.HoldTime != 3*time.Second || d.SmoothingWindow != 3 ||
		d.Cooldown != time.Minute || d.MaxMovesPerCycle != 1 || d.MigrationSlots != 4 || d.LeaseTTL != 30*time.Second || d.DryRun || d.HasBalanceMargin {
		t.Fatalf("defaults: %+v", d)
	}
	p := ReadParams(parse(t, head+`param(high_load, 0.8).
param(high_mem, 0.75).
param(hold_time, 0).
param(cooldown, 1.5).
param(balance_margin, 0.05).
param(dry_run, true).
param(migration_slots, 2).
`))
	if p.HighLoad != 0.8 || p.HighMem != 0.75 || p.HoldTime != 0 || p.Cooldown != 1500*time.Millisecond || !p.HasBalanceMargin ||
		p.BalanceMargin != 0.05 || !p.DryRun || p.MigrationSlots != 2 || p.LowLoad != 0.3 {
		t.Fatalf("read: %+v", p)
	}
	if q := ReadParams(parse(t, head+"param(high_load, 3).\n")); q.HighLoad != 0.7 {
		t.Fatalf("an out-of-range value must not be used: %+v", q)
	}
}

// TestREADMEListsEveryParameter: the README's tables name every declared
// parameter, so the documentation cannot fall behind the set.
func TestREADMEListsEveryParameter(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ParamSet {
		if !strings.Contains(string(b), "`param("+p.Name) {
			t.Errorf("README.md does not list param(%s)", p.Name)
		}
	}
}

// TestActiveBetween: a policy with time windows is active only inside
// them (a window may wrap midnight); one without is always active; a
// window that is not two "HH:MM" times is a check error.
func TestActiveBetween(t *testing.T) {
	at := func(hm string) time.Time { tt, _ := time.Parse("15:04", hm); return tt }
	night := parse(t, head+`active_between("22:00", "06:00").`+"\n")
	for _, c := range []struct {
		m    *lcc.Model
		hm   string
		want bool
	}{
		{night, "23:30", true}, {night, "05:59", true}, {night, "06:00", false}, {night, "12:00", false}, {night, "22:00", true},
		{parse(t, head), "12:00", true},
		{parse(t, head+`active_between("09:00", "10:00").`+"\n"+`active_between("14:00", "15:00").`+"\n"), "14:30", true},
		{parse(t, head+`active_between("09:00", "10:00").`+"\n"+`active_between("14:00", "15:00").`+"\n"), "12:00", false},
	} {
		if got := ActiveAt(c.m, at(c.hm)); got != c.want {
			t.Errorf("at %s: active %v, want %v", c.hm, got, c.want)
		}
	}
	for _, bad := range []string{`active_between("25:00", "06:00").`, `active_between(22, 6).`, `active_between("22:00").`, `active_between("2200", "0600").`} {
		if errs := CheckParams(parse(t, head+bad+"\n")); !errs.HasErrors() {
			t.Errorf("%s: no check error", bad)
		}
	}
}
