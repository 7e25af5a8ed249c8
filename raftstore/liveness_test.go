package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
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

// livenessCluster is a 3-member cluster with a short worker TTL, its
// leader, and a client that talks to a follower only.
func livenessCluster(t *testing.T) (*testCluster, *Member, *Client) {
	t.Helper()
	c := startCluster(t, 3, func(cfg *Config) { cfg.WorkerTTL, cfg.SweepInterval = livenessTTL, 100*time.Millisecond })
	lead := c.members[c.waitLeader()]
	follower := 0
	for i, m := range c.members {
		if m != lead {
			follower = i
		}
	}
	fc, err := testClient(t, []string{c.cfgs[follower].HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	return c, lead, fc
}

const livenessTTL = 1500 * time.Millisecond

// TestHeartbeatsCostTheLogNothing: a worker's first heartbeat is written;
// the next ones, through the leader or a follower, are kept by the leader
// alone; a worker that stops is marked down in one write, seen by a
// follower's stale read, and is written again when it comes back; a new
// leader gives every worker one TTL before it marks anyone down.
func TestHeartbeatsCostTheLogNothing(t *testing.T) {
	c, lead, fc := livenessCluster(t)
	ctx := ctxT(t)
	beat := func(id string) {
		t.Helper()
		for _, cl := range []*Client{c.client, fc} {
			if _, err := cl.Heartbeat(ctx, HeartbeatRequest{ID: id, Host: "h-" + id, Addr: "127.0.0.1:1"}); err != nil {
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
	deadline := time.Now().Add(5 * livenessTTL)
	for live("w2") {
		if time.Now().After(deadline) {
			t.Fatalf("w2 silent for %v and still live", 5*livenessTTL)
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
		if _, err := sc.Heartbeat(ctx, HeartbeatRequest{ID: "w1", Host: "h-w1", Addr: "127.0.0.1:1"}); err == nil {
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

// TestHeartbeatsCarryPeersLoads: a heartbeat's load is kept by the leader,
// never written, and handed to the other live workers of the same cluster
// in their heartbeats' replies (through a follower too); a worker of
// another cluster, a worker marked down, and a load that names another
// host (refused, naming the field, changing nothing) are not handed on.
func TestHeartbeatsCarryPeersLoads(t *testing.T) {
	c, lead, fc := livenessCluster(t)
	ctx := ctxT(t)
	load := func(host, cluster string, cpu int64) *HostLoad {
		return &HostLoad{Host: host, Cluster: cluster, ConnectionState: "connected", CPUUsedMHz: cpu, CPUCapacityMHz: 10000, MemUsedMB: 10, MemCapacityMB: 100, At: time.Now().UnixNano()}
	}
	beat := func(cl *Client, id, cluster string, cpu int64) *HeartbeatReply {
		t.Helper()
		r, err := cl.Heartbeat(ctx, HeartbeatRequest{ID: id, Host: "h-" + id, Addr: "127.0.0.1:1", Load: load("h-"+id, cluster, cpu)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, id := range []string{"a", "b", "c"} {
		beat(c.client, id, "domain-c1", 1000) // registered: written
	}
	beat(c.client, "x", "domain-c2", 1000)
	written := applies(t, lead, cmdHeartbeat)
	beat(c.client, "a", "domain-c1", 1111)
	beat(c.client, "b", "domain-c1", 2222)
	beat(c.client, "x", "domain-c2", 9999)
	r := beat(fc, "c", "domain-c1", 3333) // through a follower
	if !r.PeersKnown || len(r.Peers) != 2 || r.Peers[0].Host != "h-a" || r.Peers[0].CPUUsedMHz != 1111 || r.Peers[1].Host != "h-b" || r.Peers[1].CPUUsedMHz != 2222 {
		t.Fatalf("c's peers: known=%v %+v, want h-a at 1111 and h-b at 2222", r.PeersKnown, r.Peers)
	}
	if n := applies(t, lead, cmdHeartbeat) - written; n != 0 {
		t.Errorf("%d heartbeats with loads were written to the log, want none", n)
	}
	var state []byte
	lead.fsm.read(func(s *State) { state, _ = json.Marshal(s) })
	if bytes.Contains(state, []byte("3333")) || bytes.Contains(state, []byte("cpu_used_mhz")) {
		t.Error("a load reached the replicated state")
	}

	// a load naming another host: refused, naming the field; nothing kept
	_, err := c.client.Heartbeat(ctx, HeartbeatRequest{ID: "a", Host: "h-a", Addr: "127.0.0.1:1", Load: load("h-b", "domain-c1", 7777)})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadRequest || e.Field != "load.host" {
		t.Fatalf("a load of another host: %v, want bad_request on load.host", err)
	}
	if r := beat(c.client, "c", "domain-c1", 3333); len(r.Peers) != 2 || r.Peers[0].CPUUsedMHz != 1111 {
		t.Errorf("after a refused heartbeat, c's peers are %+v", r.Peers)
	}

	// b stops: once it is marked down, its load is no longer handed on
	deadline := time.Now().Add(10 * time.Second)
	for {
		beat(c.client, "a", "domain-c1", 1111)
		r := beat(c.client, "c", "domain-c1", 3333)
		if len(r.Peers) == 1 && r.Peers[0].Host == "h-a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's load is still handed on after b stopped: %+v", r.Peers)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRosterIndexMovesOnlyWithTheRoster: the leader's heartbeat replies
// carry the roster index, which moves when a worker registers, when an
// operator drains a host, and when a worker is marked down, and not on
// other writes or heartbeats that change nothing; GET /v1/roster, through
// a follower, says the same index with the workers and drains.
func TestRosterIndexMovesOnlyWithTheRoster(t *testing.T) {
	c, _, fc := livenessCluster(t)
	ctx := ctxT(t)
	beat := func(id string) uint64 {
		t.Helper()
		r, err := c.client.Heartbeat(ctx, HeartbeatRequest{ID: id, Host: "h-" + id, Addr: "127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		return r.RosterIndex
	}
	roster := func() *Roster {
		t.Helper()
		r, err := fc.Roster(ctx, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got := beat("a"); got != 0 {
		t.Fatalf("a written heartbeat's reply says roster index %d, want 0 (nothing said)", got)
	}
	r1 := beat("a")
	if r1 == 0 {
		t.Fatal("a kept heartbeat's reply carries no roster index")
	}
	if r := roster(); r.Index != r1 || len(r.Workers) != 1 || r.Workers[0].ID != "a" {
		t.Fatalf("roster %+v, want index %d with worker a", r, r1)
	}
	// writes that leave the roster alone: a lease, a host report
	if _, err := c.client.Acquire(ctx, AcquireRequest{Holder: "a", TTLMillis: 5000, Items: []AcquireItem{{Key: "vm/x"}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.client.ReportHost(ctx, HostReport{Name: "h-a", State: "ok"}); err != nil {
		t.Fatal(err)
	}
	if got := beat("a"); got != r1 {
		t.Fatalf("roster index %d after a lease and a host report, want %d", got, r1)
	}
	beat("b") // registered
	r2 := beat("a")
	if r2 <= r1 {
		t.Fatalf("roster index %d after b registered, want more than %d", r2, r1)
	}
	if _, err := c.client.Drain(ctx, "h-a", "op", true); err != nil {
		t.Fatal(err)
	}
	r3 := beat("a")
	if r3 <= r2 {
		t.Fatalf("roster index %d after a drain, want more than %d", r3, r2)
	}
	if r := roster(); r.Index != r3 || len(r.Hosts) != 1 || !r.Hosts[0].Drain {
		t.Fatalf("roster %+v, want index %d with h-a draining", r, r3)
	}
	// b stops: marked down, the index moves and the roster leaves b out
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r4 := beat("a"); r4 > r3 {
			if r := roster(); len(r.Workers) != 1 || r.Workers[0].ID != "a" || r.Index != r4 {
				t.Fatalf("roster %+v after b was marked down, want a alone at %d", r, r4)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("roster index still %d after b stopped", r3)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// a worker whose load says cluster c2: the roster of c2 holds it and a
	// (whose heartbeats never said a cluster), with the drained host; the
	// roster of standalone hosts leaves it out
	for range 2 {
		if _, err := c.client.Heartbeat(ctx, HeartbeatRequest{ID: "x", Host: "h-x", Addr: "127.0.0.1:1",
			Load: &HostLoad{Host: "h-x", Cluster: "c2", ConnectionState: "connected"}}); err != nil {
			t.Fatal(err)
		}
	}
	c2, none := "c2", ""
	r, err := fc.Roster(ctx, &c2, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Workers) != 2 || r.Workers[0].ID != "a" || r.Workers[1].ID != "x" || r.Workers[1].Cluster != "c2" || len(r.Hosts) != 1 || r.Hosts[0].Name != "h-a" {
		t.Fatalf("roster of c2: %+v, want workers a and x and the drain of h-a", r)
	}
	if r, err = fc.Roster(ctx, &none, false); err != nil || len(r.Workers) != 1 || r.Workers[0].ID != "a" {
		t.Fatalf("roster of standalone hosts: %+v %v, want worker a", r, err)
	}
}

// in is the loads of a cluster's workers, by worker.
func (b *loadBook) in(cluster string) map[string]*loadEntry { return b.byCluster[cluster] }

// TestLoadBookKeepsEachWorkerInOneCluster: loads are kept by cluster, and
// a worker whose host moved to another cluster leaves the first one.
func TestLoadBookKeepsEachWorkerInOneCluster(t *testing.T) {
	var b loadBook
	now := time.Now()
	b.put("a", HostLoad{Host: "h-a", Cluster: "c1", CPUUsedMHz: 1}, now)
	b.put("b", HostLoad{Host: "h-b", Cluster: "c1", CPUUsedMHz: 2}, now)
	b.put("x", HostLoad{Host: "h-x", Cluster: "c2", CPUUsedMHz: 3}, now)
	if len(b.in("c1")) != 2 || len(b.in("c2")) != 1 || len(b.in("c3")) != 0 {
		t.Fatalf("c1 %v, c2 %v, c3 %v", b.in("c1"), b.in("c2"), b.in("c3"))
	}
	b.put("a", HostLoad{Host: "h-a", Cluster: "c2", CPUUsedMHz: 4}, now)
	if _, still := b.in("c1")["a"]; still || b.in("c2")["a"].load.CPUUsedMHz != 4 || len(b.in("c1")) != 1 {
		t.Fatalf("after a moved to c2: c1 %v, c2 %v", b.in("c1"), b.in("c2"))
	}
}

// TestLoadBookPicksLivePeersAsTheStateHasThem: a load goes out encoded as
// it came in; a peer is handed on only while the state has its worker
// live on the load's host and it was heard within the TTL; and a change
// to the workers (the roster index moves) is seen at the next pick
// although liveness is decided once per roster index.
func TestLoadBookPicksLivePeersAsTheStateHasThem(t *testing.T) {
	st := newState()
	st.RosterIndex = 7
	st.Workers["a"] = &Worker{ID: "a", Host: "h-a"}
	st.Workers["b"] = &Worker{ID: "b", Host: "h-b"}
	st.Workers["c"] = &Worker{ID: "c", Host: "h-c"}
	var b loadBook
	t0 := time.Now()
	b.put("a", HostLoad{Host: "h-a", Cluster: "c1", CPUUsedMHz: 1, At: 11}, t0)
	b.put("b", HostLoad{Host: "h-b", Cluster: "c1", CPUUsedMHz: 2}, t0)
	b.put("c", HostLoad{Host: "h-c", Cluster: "c1", CPUUsedMHz: 3}, t0.Add(-20*time.Second)) // not heard within the TTL
	names := func(es []*loadEntry) (out []string) {
		for _, e := range es {
			out = append(out, e.load.Host)
		}
		return out
	}
	if got := names(b.peers(st, "b", "c1", t0, 10*time.Second)); !slices.Equal(got, []string{"h-a"}) {
		t.Fatalf("b's peers %v, want [h-a] (c not heard within the TTL)", got)
	}
	if got := names(b.peers(st, "x", "c1", t0, 10*time.Second)); !slices.Equal(got, []string{"h-a", "h-b"}) {
		t.Fatalf("x's peers %v, want [h-a h-b]", got)
	}
	want, _ := json.Marshal(HostLoad{Host: "h-a", Cluster: "c1", CPUUsedMHz: 1, At: 11})
	if e := b.in("c1")["a"]; string(e.json) != string(want) {
		t.Fatalf("a's load encoded %s, want %s", e.json, want)
	}
	b.heard("c", t0) // a heartbeat without a load: c's last load counts again
	if got := names(b.peers(st, "x", "c1", t0, 10*time.Second)); !slices.Equal(got, []string{"h-a", "h-b", "h-c"}) {
		t.Fatalf("after c was heard: %v, want [h-a h-b h-c]", got)
	}
	// the state marks a down and moves b: the roster index moves with it
	st.Workers["a"].Down = true
	st.Workers["b"] = &Worker{ID: "b", Host: "h-z"}
	st.RosterIndex = 9
	if got := names(b.peers(st, "x", "c1", t0, 10*time.Second)); !slices.Equal(got, []string{"h-c"}) {
		t.Fatalf("after a went down and b moved: %v, want [h-c]", got)
	}
}

// TestKeptReplyDecodesAsTheReply: the reply written from encoded loads
// reads back as the HeartbeatReply it stands for.
func TestKeptReplyDecodesAsTheReply(t *testing.T) {
	var b loadBook
	now := time.Now()
	loads := []HostLoad{{Host: "h-a", Cluster: "c1", ConnectionState: "connected", CPUUsedMHz: 1, CPUCapacityMHz: 9, At: 5},
		{Host: "h-b", Cluster: "c1", InMaintenance: true, MemUsedMB: 7}}
	st := newState()
	for i, l := range loads {
		id := fmt.Sprint("w", i)
		st.Workers[id] = &Worker{ID: id, Host: l.Host}
		b.put(id, l, now)
	}
	for _, peers := range [][]*loadEntry{nil, b.peers(st, "x", "c1", now, time.Minute)} {
		reply := HeartbeatReply{Worker: Worker{ID: "x", Host: "h-x", Cluster: "c1", LastSeen: 3}, RosterIndex: 42}
		rec := httptest.NewRecorder()
		var encoded [][]byte
		for _, e := range peers {
			encoded = append(encoded, e.json)
		}
		writeKeptReply(rec, reply, encoded)
		var got HeartbeatReply
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v", rec.Body, err)
		}
		reply.PeersKnown, reply.Peers = true, loadsOf(peers)
		if !reflect.DeepEqual(got, reply) {
			t.Fatalf("reply read back as %+v, want %+v (%s)", got, reply, rec.Body)
		}
	}
}

// TestConcurrentHeartbeatsHandOnWholeLoads: workers of one cluster
// heartbeating at once each get their peers' loads whole, every one as
// some heartbeat of that peer carried it. Run with -race (as CI does):
// the reply is written from encodings that later heartbeats replace.
func TestConcurrentHeartbeatsHandOnWholeLoads(t *testing.T) {
	c, _, _ := livenessCluster(t)
	ctx := ctxT(t)
	const workers, rounds = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("w", i)
			for r := range rounds {
				// a worker's CPU is always its index times 1000 plus the round
				l := &HostLoad{Host: "h-" + id, Cluster: "domain-c1", ConnectionState: "connected", CPUUsedMHz: int64(i*1000 + r), CPUCapacityMHz: 100000, At: int64(r)}
				reply, err := c.client.Heartbeat(ctx, HeartbeatRequest{ID: id, Host: "h-" + id, Addr: "127.0.0.1:1", Load: l})
				if err != nil {
					errs <- err
					return
				}
				for _, p := range reply.Peers {
					var j int
					if _, err := fmt.Sscanf(p.Host, "h-w%d", &j); err != nil || p.CPUUsedMHz != int64(j*1000)+p.At || p.Cluster != "domain-c1" || p.CPUCapacityMHz != 100000 {
						errs <- fmt.Errorf("%s was handed %+v", id, p)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
