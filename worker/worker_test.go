package worker

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/policies"
)

// TestRegistryIsTheVocabulary: the worker implements every constraint of
// the vocabulary and registers nothing else.
func TestRegistryIsTheVocabulary(t *testing.T) {
	w, err := New(Config{ID: "w", Host: "h"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := w.Registry().Known()
	want := policies.Known()
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("vocabulary entry %s is not registered", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s is registered but not in the vocabulary", k)
		}
	}
}

func TestDryRunMovesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, LocalConfig{Hosts: 4, VMs: 16, Seed: 5, MigrateTime: 100 * time.Millisecond,
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
