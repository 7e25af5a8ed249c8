package worker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// cutStore stands in for a store this worker cannot reach: once cut, its
// renewals and journal appends fail, as they would across a partition.
// Everything else goes to the in-memory store (the real state machine).
type cutStore struct {
	*raftstore.Mem
	cut atomic.Bool
}

var errCut = errors.New("store unreachable (cut)")

func (s *cutStore) Renew(ctx context.Context, r raftstore.RenewRequest) (*raftstore.Grant, error) {
	if s.cut.Load() {
		return nil, errCut
	}
	return s.Mem.Renew(ctx, r)
}

func (s *cutStore) AppendJournal(ctx context.Context, es ...raftstore.JournalEntry) error {
	if s.cut.Load() {
		return errCut
	}
	return s.Mem.AppendJournal(ctx, es...)
}

// TestNoRelocationOutlivesItsLease: a worker whose renewals fail cancels
// its relocation in vCenter (the simulator, over its SDK) before the
// leases can expire; the VM stays where vCenter says it is; and the worker
// journals "cancelled: lease lost" once it reaches the store again.
func TestNoRelocationOutlivesItsLease(t *testing.T) {
	ctx := context.Background()
	s, err := sim.New(sim.Config{Hosts: 2, VMs: 4, Seed: 3, MigrateTime: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vc, err := vsphere.Connect(ctx, vsphere.Config{URL: s.URL().String(), User: "u", Password: "p", Thumbprint: s.Thumbprint()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	inv, err := vc.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := inv.VMs[0]
	src, _ := inv.Host(v.Host)
	var dst vsphere.Host
	for _, h := range inv.Hosts {
		if h.ID != src.ID {
			dst = h
		}
	}
	st := &cutStore{Mem: raftstore.NewMem(raftstore.Config{})}
	for _, hb := range []raftstore.HeartbeatRequest{{ID: "w1", Host: src.Name}, {ID: "w2", Host: dst.Name}} {
		if _, err := st.Heartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	w := observingWorker(t, src.Name, vc, st)
	const ttlSeconds = 3
	res, err := st.Acquire(ctx, raftstore.AcquireRequest{Holder: "w2", TTLMillis: ttlSeconds * 1000, Items: []raftstore.AcquireItem{{Key: "reserve/" + dst.Name + "/" + v.Name}}})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := st.Acquire(ctx, raftstore.AcquireRequest{Holder: "w1", TTLMillis: ttlSeconds * 1000, Items: []raftstore.AcquireItem{{Key: "vm/" + v.Name}}})
	if err != nil {
		t.Fatal(err)
	}
	prog, diags, err := lcc.Compile("p", []byte("r(a, initial)\na(a, X) :: null.\nparam(lease_ttl, 3).\n"), lcc.PolicyRef{Name: "p", Version: 1}, nil)
	if err != nil {
		t.Fatal(diags)
	}
	g := &lcc.Goal{Program: prog, Interaction: "i-fence", Policy: prog.Ref, Args: []lcc.Term{
		lcc.A(v.Name), lcc.A("w2"),
		lcc.C("res", lcc.A("w2"), lcc.I(int64(res.Token)), lcc.S("reserve/"+dst.Name+"/"+v.Name)),
		lcc.C("lease", lcc.I(int64(lease.Token)), keysTerm(lease.Keys)),
	}}
	// the partition starts a moment after the relocation does
	go func() { time.Sleep(500 * time.Millisecond); st.cut.Store(true) }()
	start := time.Now()
	ok, err := w.cMigrate(ctx, g)
	if ok || err != nil {
		t.Fatalf("migrate while cut off: ok=%v err=%v", ok, err)
	}
	var recs []sim.Relocation
	for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
		if recs = s.Relocations(); len(recs) > 0 {
			break // the simulator records a cancelled relocation as its task ends
		}
	}
	if len(recs) != 1 || recs[0].Result != "cancelled" {
		st2, e2 := vc.VMState(ctx, v.ID)
		t.Fatalf("relocation record: %+v (vm state %+v %v, placement %v)", recs, st2, e2, s.Placement())
	}
	// the leases, renewed last just before the cut at the latest, expire
	// ttl after that renewal: the relocation ended before
	if latest := start.Add(500*time.Millisecond + ttlSeconds*time.Second); !recs[0].End.Before(latest) {
		t.Fatalf("the relocation ended at %s, after its lease could expire (%s)", recs[0].End.Format(time.StampMilli), latest.Format(time.StampMilli))
	}
	if p := s.Placement(); p[v.Name] != src.Name {
		t.Fatalf("the VM is on %s, want it left on %s", p[v.Name], src.Name)
	}
	st.cut.Store(false) // the store is reachable again: the journal catches up
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		js, _ := st.Journal(ctx, 0, 10)
		for _, e := range js {
			if e.Outcome == "cancelled" && strings.HasPrefix(e.Reason, "lease lost") && e.VM == v.Name {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	js, _ := st.Journal(ctx, 0, 10)
	t.Fatalf("no 'cancelled: lease lost' journal entry: %+v", js)
}

// slowCancelDC stands in for a vCenter that takes a while to answer a
// cancelled relocation (a hang, say): Migrate shows no progress, and once
// its context ends it takes cancelWait more to return.
type slowCancelDC struct {
	*fakeDC
	cancelWait time.Duration
}

func (f *slowCancelDC) Migrate(ctx context.Context, _, _ string, _ vsphere.Progress) error {
	<-ctx.Done()
	time.Sleep(f.cancelWait)
	return vsphere.ErrCancelled
}

// TestLeasesOutliveAStalledRelocationsCancel: a stalled relocation is
// cancelled, and vCenter takes longer than the lease's TTL to say how it
// ended; the leases are renewed until it has, then given back, so none is
// left expired and unreleased (the vCenter faults test, with a 60 s hang,
// found a VM lease left for a reconcile). (raftstore.Mem stands in for
// the store.)
func TestLeasesOutliveAStalledRelocationsCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a stall_timeout of 5 s")
	}
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	dc := &slowCancelDC{fakeDC: newTestDC(), cancelWait: 2500 * time.Millisecond}
	w, g := migrateGoal(t, st, dc, "web1", "i-7", nil)
	prog, diags, err := lcc.Compile("p", []byte("r(a, initial)\na(a, X) :: null.\nparam(lease_ttl, 1).\nparam(stall_timeout, 5).\nparam(cooldown, 0).\n"), lcc.PolicyRef{Name: "p", Version: 1}, nil)
	if err != nil {
		t.Fatal(diags)
	}
	g.Program, g.Policy = prog, prog.Ref
	if ok, err := w.cMigrate(ctx, g); ok || err != nil {
		t.Fatalf("migrate of a stalled relocation: ok=%v err=%v", ok, err)
	}
	ls, _ := st.Leases(ctx, "", false)
	if len(ls) != 0 {
		t.Fatalf("leases after the cancelled relocation: %+v, want none", ls)
	}
	js, _ := st.Journal(ctx, 0, 10)
	if len(js) != 1 || js[0].Outcome != "stalled" {
		t.Fatalf("journal: %+v, want one stalled entry", js)
	}
}
