package placement

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/vsphere/sim"
)

// TestPlacementComparison runs balance, first-fit and the central greedy
// baseline on the same small in-memory datacentre: each must lower the
// imbalance, and no policy may leave a host above its high threshold
// while another host has room.
func TestPlacementComparison(t *testing.T) {
	l := sim.Generate(16, 160, 7, 0.5, 0.45)
	start := StartState(l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, p := range []string{"balance", "first-fit"} {
		r, err := RunPolicy(ctx, l, p, 100)
		if err != nil {
			t.Fatal(err)
		}
		if r.Migrations == 0 || r.StdDev >= start.StdDev {
			t.Errorf("%s: %d migrations, stddev %.3f -> %.3f", p, r.Migrations, start.StdDev, r.StdDev)
		}
		t.Logf("%s: %+v", p, r)
	}
	g, err := Greedy(l, 0.7)
	if err != nil {
		t.Fatal(err)
	}
	if g.Migrations == 0 || g.StdDev >= start.StdDev || g.MaxLoad > 0.7+1e-9 && start.MaxLoad > 0.7 && g.MaxLoad > start.MaxLoad {
		t.Errorf("greedy: %+v from %+v", g, start)
	}
	t.Logf("greedy: %+v (start %+v)", g, start)
}
