package policies_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/worker/placement"
)

// The policies' own tests (NAME.tests.json beside NAME.lcc), run with the
// simulator of 'parley policy simulate': the workers' real constraints,
// interpreter, in-memory store and transport.

func runScenarios(t *testing.T, name, text string) (passed, failed int, failures []string) {
	t.Helper()
	sf, err := placement.LoadScenarios(name + ".tests.json")
	if err != nil {
		t.Fatal(err)
	}
	evac, _ := policies.Source("evacuate")
	extra := map[string]string{}
	if name != "evacuate" {
		extra["evacuate"] = string(evac)
	}
	for _, s := range sf.Scenarios {
		r := placement.RunScenario(context.Background(), name, text, extra, s)
		if r.Pass {
			passed++
		} else {
			failed++
			failures = append(failures, s.Name+": "+strings.Join(r.Failures, "; "))
		}
	}
	return passed, failed, failures
}

func TestShippedPolicyScenarios(t *testing.T) {
	for _, name := range policies.Names() {
		t.Run(name, func(t *testing.T) {
			text, err := policies.Source(name)
			if err != nil {
				t.Fatal(err)
			}
			passed, failed, failures := runScenarios(t, name, string(text))
			for _, f := range failures {
				t.Error(f)
			}
			if passed+failed < 5 {
				t.Errorf("%s has %d scenarios; every shipped policy has at least 5", name, passed+failed)
			}
		})
	}
}

// TestScenariosCatchABrokenPolicy: a copy of balance whose bids skip the
// fits check fails its tests.
func TestScenariosCatchABrokenPolicy(t *testing.T) {
	text, _ := policies.Source("balance")
	broken := strings.Replace(string(text), "<- fits(VM, CPU, Mem) and bid_score(VM, CPU, Mem, Score)", "<- bid_score(VM, CPU, Mem, Score)", 1)
	if broken == string(text) {
		t.Fatal("the bid's fits check was not found in balance.lcc")
	}
	if _, diags := policies.Check("broken.lcc", []byte(broken)); diags.HasErrors() {
		t.Fatalf("the broken copy does not check: %v", diags)
	}
	_, failed, failures := runScenarios(t, "balance", broken)
	if failed == 0 {
		t.Fatal("balance without fits in its bids passed every scenario")
	}
	t.Logf("the broken copy fails %d scenarios: %v", failed, failures)
}

func TestScenarioFilesAreChecked(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		`{"scenarios": []}`: "no scenarios",
		`{"scenarios": [{"name": "x", "hosts": [{"name": "h1", "cpu_mhz": 1, "mem_mb": 1}]}]}`:                                                                                  "at least two hosts",
		`{"scenarios": [{"name": "x", "hosts": [{"name": "h1", "cpu_mhz": 1, "mem_mb": 1}, {"name": "h2", "cpu_mhz": 1, "mem_mb": 1}], "vms": [{"name": "a", "host": "h9"}]}]}`: "a host of the scenario",
		`{"scenarios": [{"name": "x", "bogus": 1}]}`: "unknown field",
	} {
		p := dir + "/x.tests.json"
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := placement.LoadScenarios(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
