package worker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/vsphere"
)

// flakyDC is fakeDC (standing in for vCenter) that can be made not to
// answer, counting the reads it was asked for.
type flakyDC struct {
	*fakeDC
	down  atomic.Bool
	reads atomic.Int64
}

func (f *flakyDC) Inventory(ctx context.Context) (*vsphere.Inventory, error) {
	f.reads.Add(1)
	if f.down.Load() {
		return nil, errors.New("dial tcp 127.0.0.1:443: connect: connection refused")
	}
	return f.fakeDC.Inventory(ctx)
}

// TestNoVMotionFromAnOldView: with a view of its host older than
// max_view_age, a worker declines to bid and does not start a relocation
// it had negotiated; it gives back what it took and says why.
func TestNoVMotionFromAnOldView(t *testing.T) {
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	dc := newTestDC()
	w, g := migrateGoal(t, st, dc, "web1", "i-old", nil)
	if fits, _, _, _ := w.fitsMem(ctx, g.Program, "db9", 100, 100, true); !fits {
		t.Fatal("a worker with a fresh view declined a small VM")
	}
	w.mu.Lock()
	w.observed = time.Now().Add(-2 * time.Minute) // vCenter last vouched for this host 2 minutes ago
	w.mu.Unlock()
	if fits, _, _, _ := w.fitsMem(ctx, g.Program, "db9", 100, 100, true); fits {
		t.Fatal("a worker bid from a view 2 minutes old")
	}
	if ok, err := w.cMigrate(ctx, g); ok || err != nil {
		t.Fatalf("migrate from an old view: ok=%v err=%v", ok, err)
	}
	if len(dc.migrated) != 0 {
		t.Fatalf("a relocation started from a view 2 minutes old: %v", dc.migrated)
	}
	if ls, _ := st.Leases(ctx, "", false); len(ls) != 0 {
		t.Fatalf("leases left held: %+v", ls)
	}
	js, _ := st.Journal(ctx, 0, 10)
	if len(js) != 1 || js[0].Outcome != api.OutcomeSkipped || !strings.Contains(js[0].Reason, "max_view_age") {
		t.Fatalf("journal: %+v", js)
	}
}

// TestVCenterOutageSaidOncePerChange: while vCenter does not answer, a
// worker journals one "unavailable" and one "available" when it is back,
// not one line a tick; it reads vCenter less and less often meanwhile (no
// retry storm); it starts nothing; and it resumes by itself.
func TestVCenterOutageSaidOncePerChange(t *testing.T) {
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	dc := &flakyDC{fakeDC: newTestDC()}
	w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop(), Interval: time.Second}, dc, st.AsWorker("w1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	w.Tick(ctx)
	if up, _ := w.vcenterUp(); !up {
		t.Fatal("vCenter reported unavailable while it answers")
	}
	dc.down.Store(true)
	w.mu.Lock()
	w.observed = time.Now().Add(-time.Minute) // the last answer is old by now
	w.mu.Unlock()
	before := dc.reads.Load()
	for range 50 {
		w.Tick(ctx)
	}
	if n := dc.reads.Load() - before; n > 3 {
		t.Fatalf("50 ticks during an outage read vCenter %d times: no backoff", n)
	}
	if up, reason := w.vcenterUp(); up || !strings.Contains(reason, "connection refused") {
		t.Fatalf("during the outage: up=%v reason %q", up, reason)
	}
	if w.ready.Load() {
		t.Fatal("a worker without vCenter says it is ready")
	}
	dc.down.Store(false)
	w.vc.mu.Lock()
	w.vc.nextTry = time.Time{} // its backoff over
	w.vc.mu.Unlock()
	w.Tick(ctx)
	if up, _ := w.vcenterUp(); !up {
		t.Fatal("the worker did not resume once vCenter answered")
	}
	js, _ := st.Journal(ctx, 0, 100)
	var kinds []string
	for _, j := range js {
		if j.Kind == api.KindVCenter {
			kinds = append(kinds, j.Outcome)
		}
	}
	if strings.Join(kinds, ",") != api.OutcomeVCenterDown+","+api.OutcomeVCenterUp {
		t.Fatalf("vcenter journal entries: %v, want one unavailable then one available", kinds)
	}
}
