package worker

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// TestBehaviourFollowsDeclaredParameters: what used to switch on a
// policy's name is what the policy declares; a text without the
// parameter (pushed before it existed) keeps what its name had.
func TestBehaviourFollowsDeclaredParameters(t *testing.T) {
	w, err := New(Config{ID: "w", Host: "h"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	compile := func(name, params string) *lcc.Program {
		p, diags, err := lcc.Compile(name, []byte("r(a, initial)\na(a, X) :: null.\n"+params), lcc.PolicyRef{Name: name, Version: 1}, nil)
		if err != nil {
			t.Fatal(diags)
		}
		return p
	}
	for _, tc := range []struct {
		name, params   string
		fixes, intoDRS bool
	}{
		{"drain-gently", "param(fix_rules, false).\nparam(into_drs_clusters, true).\n", false, true},
		{"evacuate", "param(fix_rules, true).\nparam(into_drs_clusters, false).\n", true, false},
		{"evacuate", "", false, true},     // an evacuate text from before the parameters
		{"consolidate", "", false, false}, // likewise
		{"balance", "", true, false},
		{"mine", "", true, false},
	} {
		p := compile(tc.name, tc.params)
		if got := w.fixesRules(p); got != tc.fixes {
			t.Errorf("%s %q: fixesRules = %v, want %v", tc.name, tc.params, got, tc.fixes)
		}
		if got := w.intoDRSClusters(p); got != tc.intoDRS {
			t.Errorf("%s %q: intoDRSClusters = %v, want %v", tc.name, tc.params, got, tc.intoDRS)
		}
	}
}

// TestRealPartsHaveEveryCapability: the vCenter connection a real worker
// runs on (vsphere.Watched over govmomi's client) and raftstore's Client
// have every optional part, so nothing is off in production; a fake
// without them is told, not silently trusted.
func TestRealPartsHaveEveryCapability(t *testing.T) {
	if m := findCapabilities(&vsphere.Watched{}, &raftstore.Client{}).missing(); len(m) != 0 {
		t.Fatalf("the real vCenter connection and store lack: %v", m)
	}
	if m := findCapabilities(newTestDC(), raftstore.NewMem(raftstore.Config{})).missing(); len(m) == 0 {
		t.Fatal("a fake vCenter and Mem reported to have every capability")
	}
	if _, err := New(Config{ID: "w", Host: "h", Stats: StatsRealtime}, newTestDC(), raftstore.NewMem(raftstore.Config{})); err == nil || !strings.Contains(err.Error(), "performance samples") {
		t.Fatalf("realtime stats on a connection without them: %v", err)
	}
}
