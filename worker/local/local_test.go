package local

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestDryRunMovesNothing: with dry run on, workers negotiate and journal
// would-migrate, and neither vCenter nor the store sees a move or a
// reservation.
func TestDryRunMovesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, Config{Hosts: 4, VMs: 16, Seed: 5, MigrateTime: 100 * time.Millisecond,
		Interval: 500 * time.Millisecond, Logger: zerolog.Nop(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		js, _ := l.Store.Journal(ctx, 0, 1000)
		for _, e := range js {
			if e.Kind == "would-migrate" {
				if n := len(l.Sim.Relocations()); n != 0 {
					t.Fatalf("dry run relocated %d VMs", n)
				}
				ls, _ := l.Store.Leases(ctx, "reserve/", false)
				if len(ls) != 0 {
					t.Fatalf("dry run reserved capacity: %+v", ls)
				}
				return
			}
		}
	}
	t.Fatal("no would-migrate entry in the journal")
}

func TestSampledSpreadsWorkersOverHosts(t *testing.T) {
	for _, c := range []struct{ n, k int }{{512, 64}, {10, 3}, {7, 7}, {5, 1}, {100, 99}} {
		var picked []int
		for i := 0; i < c.n; i++ {
			if sampled(i, c.k, c.n) {
				picked = append(picked, i)
			}
		}
		if len(picked) != c.k {
			t.Fatalf("%d of %d hosts: %d picked (%v)", c.k, c.n, len(picked), picked)
		}
		// Spread evenly: no gap between picked hosts is more than one
		// larger than another.
		if c.k > 1 {
			lo, hi := c.n, 0
			for j := 1; j < len(picked); j++ {
				g := picked[j] - picked[j-1]
				lo, hi = min(lo, g), max(hi, g)
			}
			if hi-lo > 1 {
				t.Fatalf("%d of %d hosts: gaps %d..%d in %v", c.k, c.n, lo, hi, picked)
			}
		}
	}
}
