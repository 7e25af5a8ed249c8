package worker

import (
	"testing"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/vsphere"
)

// TestRulesAllow: the must rules of a policy's facts decide placements.
func TestRulesAllow(t *testing.T) {
	src := `r(x, initial)
a(x, X) :: null.
must_run_on(db1, h1).
must_not_run_on(web1, h2).
anti_affinity(web1, web2).
should_run_on(app1, h3).
`
	p, diags, err := lcc.Compile("rules", []byte(src), lcc.PolicyRef{Name: "rules", Version: 1}, nil)
	if err != nil {
		t.Fatal(diags)
	}
	inv := &vsphere.Inventory{
		Hosts: []vsphere.Host{{ID: "host-1", Name: "h1"}, {ID: "host-2", Name: "h2"}, {ID: "host-3", Name: "h3"}},
		VMs:   []vsphere.VM{{ID: "vm-1", Name: "web2", Host: "host-3"}},
	}
	w := &Worker{}
	for _, c := range []struct {
		vm, host string
		ok       bool
	}{
		{"db1", "h1", true},
		{"db1", "h2", false},  // must run on h1
		{"web1", "h2", false}, // must not run on h2
		{"web1", "h3", false}, // web2 is there: anti-affinity
		{"web1", "h1", true},  // nothing against it
		{"app1", "h1", true},  // should rules do not forbid
		{"other", "h2", true}, // no rule
		{"web2", "h1", true},  // anti-affinity with web1, which runs nowhere
	} {
		if got := w.rulesAllow(p, inv, c.vm, c.host); got != c.ok {
			t.Errorf("%s on %s: %v, want %v", c.vm, c.host, got, c.ok)
		}
	}
	if !hasFact(p, "should_run_on", "app1", "h3") || hasFact(p, "should_run_on", "app1", "h1") {
		t.Error("should_run_on facts not found as stated")
	}
}
