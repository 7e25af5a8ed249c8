package vsphere_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/parleyhq/parley/vsphere/sim"
)

// TestAPIStatsCountCallsAndObjects: the simulator counts the SDK calls it
// serves and the objects its property collector returns, and says so at
// GET /api-stats. One inventory read through the public API costs calls
// and at least one object per host and VM; a second costs the same.
func TestAPIStatsCountCallsAndObjects(t *testing.T) {
	s, c := newSim(t, sim.Config{Hosts: 4, VMs: 12, Seed: 3})
	ctx := ctxT(t)
	ctl := httptest.NewServer(s.ControlHandler())
	defer ctl.Close()
	read := func() sim.APIStats {
		t.Helper()
		resp, err := http.Get(ctl.URL + "/api-stats")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st sim.APIStats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	before := read()
	if _, err := c.Inventory(ctx); err != nil {
		t.Fatal(err)
	}
	first := read()
	if _, err := c.Inventory(ctx); err != nil {
		t.Fatal(err)
	}
	second := read()
	calls, objects := first.Calls-before.Calls, first.Objects-before.Objects
	t.Logf("one inventory read: %d calls, %d objects (%v)", calls, objects, second.ByMethod)
	if calls < 1 || objects < 4+12 {
		t.Fatalf("one inventory read of 4 hosts and 12 VMs counted %d calls and %d objects", calls, objects)
	}
	if second.ByMethod["RetrievePropertiesEx"] < 2 {
		t.Fatalf("by method: %v", second.ByMethod)
	}
	if c2, o2 := second.Calls-first.Calls, second.Objects-first.Objects; c2 != calls || o2 != objects {
		t.Fatalf("a second read counted %d calls and %d objects, the first %d and %d", c2, o2, calls, objects)
	}
}
