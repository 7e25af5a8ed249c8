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
