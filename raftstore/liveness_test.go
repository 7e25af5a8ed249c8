package raftstore

import (
	"testing"
	"time"
)

// applies is how many commands of a type member m has applied as leader
// (its parley_apply_seconds histogram).
func applies(t *testing.T, m *Member, command string) uint64 {
	t.Helper()
	mfs, err := m.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mfs {
		if f.GetName() != "parley_apply_seconds" {
			continue
		}
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "command" && l.GetValue() == command {
					return mm.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// TestHeartbeatsCostTheLogNothing: a worker's first heartbeat is written;
// the next ones, through the leader or a follower, are kept by the leader
// alone; a worker that stops is marked down in one write, seen by a
// follower's stale read, and is written again when it comes back; a new
// leader gives every worker one TTL before it marks anyone down.
func TestHeartbeatsCostTheLogNothing(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	c := startCluster(t, 3, func(cfg *Config) { cfg.WorkerTTL, cfg.SweepInterval = ttl, 100*time.Millisecond })
	ctx := ctxT(t)
	lead := c.members[c.waitLeader()]
	follower := 0
	for i, m := range c.members {
		if m != lead {
			follower = i
		}
	}
	fc, err := testClient(t, []string{c.cfgs[follower].HTTPAddr}) // talks to a follower only
	if err != nil {
		t.Fatal(err)
	}
	beat := func(id string) {
		t.Helper()
		for _, cl := range []*Client{c.client, fc} {
			if err := cl.Heartbeat(ctx, HeartbeatRequest{ID: id, Host: "h-" + id, Addr: "127.0.0.1:1"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	live := func(id string) bool {
		ws, err := fc.Workers(ctx, true) // a follower's own state
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if w.ID == id {
				return true
			}
		}
		return false
	}
	beat("w1")
	beat("w2")
	written := applies(t, lead, cmdHeartbeat)
	if written != 2 {
		t.Fatalf("two new workers: %d heartbeats written, want 2", written)
	}
	for range 10 {
		beat("w1")
		beat("w2")
		time.Sleep(100 * time.Millisecond)
	}
	if n := applies(t, lead, cmdHeartbeat); n != written {
		t.Fatalf("40 heartbeats that changed nothing wrote %d entries, want none", n-written)
	}
	if !live("w1") || !live("w2") {
		t.Fatal("beating workers are not live on a follower")
	}

	// w2 stops: marked down within a TTL and a sweep, on the follower too
	deadline := time.Now().Add(5 * ttl)
	for live("w2") {
		if time.Now().After(deadline) {
			t.Fatalf("w2 silent for %v and still live", 5*ttl)
		}
		beat("w1")
		time.Sleep(100 * time.Millisecond)
	}
	if !live("w1") {
		t.Fatal("w1 marked down while it beat")
	}
	beat("w2") // back: written
	if n := applies(t, lead, cmdHeartbeat); n != written+1 {
		t.Fatalf("w2 came back: %d heartbeats written since, want 1", n-written)
	}
	waitFor(t, 2*time.Second, "w2 live again on the follower", func() bool { return live("w2") })

	// a new leader: w1 keeps beating through the failover and stays live
	old := c.leader()
	c.stop(old)
	var survivors []string
	for i, cfg := range c.cfgs {
		if i != old {
			survivors = append(survivors, cfg.HTTPAddr)
		}
	}
	sc, err := testClient(t, survivors)
	if err != nil {
		t.Fatal(err)
	}
	downs := 0
	for range 30 {
		if err := sc.Heartbeat(ctx, HeartbeatRequest{ID: "w1", Host: "h-w1", Addr: "127.0.0.1:1"}); err == nil {
			ws, _ := sc.Workers(ctx, false)
			up := false
			for _, w := range ws {
				up = up || w.ID == "w1"
			}
			if !up {
				downs++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if downs > 0 {
		t.Fatalf("w1 beat through a failover and was seen down %d times", downs)
	}
}

// TestSweepForgetsOnlyWorkersDownForAnHour: a live worker is never
// dropped however long ago it was written (its heartbeats are not), one
// marked down is dropped an hour later.
func TestSweepForgetsOnlyWorkersDownForAnHour(t *testing.T) {
	l := newFSMLog(t)
	mustOK[Worker](t, l.apply(cmdHeartbeat, "", HeartbeatRequest{ID: "w1", Host: "h1", Addr: "127.0.0.1:1"}))
	mustOK[Worker](t, l.apply(cmdHeartbeat, "", HeartbeatRequest{ID: "w2", Host: "h2", Addr: "127.0.0.1:2"}))
	l.now = l.now.Add(2 * time.Hour)
	l.apply(cmdSweep, "", SweepRequest{Down: []string{"w2"}})
	l.now = l.now.Add(30 * time.Minute)
	l.apply(cmdSweep, "", nil)
	l.fsm.read(func(s *State) {
		if s.Workers["w1"] == nil || s.Workers["w2"] == nil || !s.Workers["w2"].Down || s.Workers["w1"].Down {
			t.Fatalf("after 2.5 h: %+v %+v", s.Workers["w1"], s.Workers["w2"])
		}
	})
	l.now = l.now.Add(31 * time.Minute)
	l.apply(cmdSweep, "", nil)
	l.fsm.read(func(s *State) {
		if s.Workers["w1"] == nil || s.Workers["w2"] != nil {
			t.Fatalf("an hour after w2 was marked down: w1 %+v, w2 %+v; want w1 kept, w2 gone", s.Workers["w1"], s.Workers["w2"])
		}
	})
}
