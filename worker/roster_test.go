package worker

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/raftstore"
)

// rosterStore is raftstore.Mem, standing in for the raft store, whose
// heartbeat replies carry a roster index the test sets (as the leader's
// do) and which counts the worker's roster reads.
type rosterStore struct {
	*raftstore.Mem
	index  atomic.Uint64
	reads  atomic.Int32
	scoped atomic.Int32 // reads that named a cluster
}

func (s *rosterStore) Heartbeat(ctx context.Context, req raftstore.HeartbeatRequest) (*raftstore.HeartbeatReply, error) {
	r, err := s.Mem.Heartbeat(ctx, req)
	if r != nil {
		r.RosterIndex = s.index.Load()
	}
	return r, err
}

func (s *rosterStore) Roster(ctx context.Context, cluster *string, stale bool) (*raftstore.Roster, error) {
	s.reads.Add(1)
	if cluster != nil {
		s.scoped.Add(1)
	}
	r, err := s.Mem.Roster(ctx, cluster, stale)
	if r != nil {
		r.Index = s.index.Load()
	}
	return r, err
}

// TestWorkerReadsTheRosterOnlyWhenItMoves: while the heartbeat replies
// carry the roster index the worker last read, a tick reads no roster;
// when it moves (here: an operator drains the worker's host) the next
// tick reads it and sees the drain; a reply that says nothing (0) means a
// read at every tick.
func TestWorkerReadsTheRosterOnlyWhenItMoves(t *testing.T) {
	ctx := context.Background()
	st := &rosterStore{Mem: raftstore.NewMem(raftstore.Config{})}
	st.index.Store(5)
	w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop(), DryRun: true}, newTestDC(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	for range 4 {
		w.Tick(ctx)
	}
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("4 ticks at an unchanged roster index read the roster %d times, want 1", n)
	}
	if w.draining() {
		t.Fatal("draining before any drain")
	}
	if _, err := st.Drain(ctx, "h1", "op", true); err != nil {
		t.Fatal(err)
	}
	st.index.Store(6)
	w.Tick(ctx)
	w.Tick(ctx)
	if n := st.reads.Load(); n != 2 || !w.draining() {
		t.Fatalf("after the roster moved: %d reads (want 2), draining %v", n, w.draining())
	}
	st.index.Store(0)
	w.Tick(ctx)
	w.Tick(ctx)
	if n := st.reads.Load(); n != 4 {
		t.Fatalf("two ticks whose replies say no roster index: %d reads in all, want 4", n)
	}
	// every read names the host's cluster: the first tick observes first
	if n := st.scoped.Load(); n != 4 {
		t.Fatalf("%d of 4 roster reads named the host's cluster, want 4", n)
	}
}

// oldStore is raftstore.Mem standing in for a store from before GET
// /v1/roster: the route answers 404 as Go's mux does.
type oldStore struct{ *raftstore.Mem }

func (oldStore) Roster(context.Context, *string, bool) (*raftstore.Roster, error) {
	return nil, &raftstore.Error{Status: http.StatusNotFound, Code: "internal", Message: "404 page not found"}
}

// TestWorkerReadsPeersFromAStoreWithoutTheRoster: during an upgrade a
// worker may meet a store that has no roster; it lists workers and hosts
// as before, and sees its peers and its host's drain.
func TestWorkerReadsPeersFromAStoreWithoutTheRoster(t *testing.T) {
	ctx := context.Background()
	st := oldStore{raftstore.NewMem(raftstore.Config{})}
	if _, err := st.Heartbeat(ctx, raftstore.HeartbeatRequest{ID: "w2", Host: "h2", Addr: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Drain(ctx, "h1", "op", true); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop(), DryRun: true}, newTestDC(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	w.Tick(ctx)
	if host, ok := w.peerHost("w2"); !ok || host != "h2" || !w.draining() {
		t.Fatalf("peer w2 on %q (%v), draining %v; want h2 and a drain", host, ok, w.draining())
	}
}

// firstBeatStore is raftstore.Mem, standing in for the store, keeping
// the heartbeats it was sent.
type firstBeatStore struct {
	*raftstore.Mem
	beats []raftstore.HeartbeatRequest
}

func (s *firstBeatStore) Heartbeat(ctx context.Context, req raftstore.HeartbeatRequest) (*raftstore.HeartbeatReply, error) {
	s.beats = append(s.beats, req)
	return s.Mem.Heartbeat(ctx, req)
}

// TestFirstHeartbeatCarriesTheLoad: a worker observes its host before
// its first heartbeat, so that the store learns its cluster at once (and
// writes it once), and a tick observes only once.
func TestFirstHeartbeatCarriesTheLoad(t *testing.T) {
	ctx := context.Background()
	st := &firstBeatStore{Mem: raftstore.NewMem(raftstore.Config{})}
	dc := newTestDC()
	w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop(), DryRun: true}, dc, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	w.Tick(ctx)
	if len(st.beats) != 1 || st.beats[0].Load == nil || st.beats[0].Load.Host != "h1" || st.beats[0].Load.CPUCapacityMHz != 10000 {
		t.Fatalf("first heartbeat: %+v", st.beats)
	}
	w.mu.Lock()
	samples := len(w.samples)
	w.mu.Unlock()
	if samples != 1 {
		t.Fatalf("the first tick took %d samples of the host's load, want 1", samples)
	}
}
