package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testCluster is a 3-member store in one process, over real TCP, with
// BoltDB (fsync on) in temporary folders.
type testCluster struct {
	t       testing.TB
	members []*Member
	cfgs    []Config
	client  *Client
}

func testConfig(t testing.TB, id string) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.DataDir = t.TempDir()
	cfg.RaftAddr = freeAddr(t)
	cfg.HTTPAddr = freeAddr(t)
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	cfg.LeaseLockDelay = time.Second
	cfg.Logger = zerolog.Nop()
	cfg.TLS = testTLS(t, id)
	cfg.AdminToken = testAdminToken
	cfg.Token = testAdminToken
	return cfg
}

func startCluster(t testing.TB, n int, opts ...func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	for i := 0; i < n; i++ {
		cfg := testConfig(t, fmt.Sprintf("s%d", i+1))
		for _, o := range opts {
			o(&cfg)
		}
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{c.cfgs[0].HTTPAddr}
		}
		m, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("start %s: %v", cfg.ID, err)
		}
		if i == 0 {
			waitFor(t, 10*time.Second, "first leader", m.IsLeader)
		}
		c.members = append(c.members, m)
		c.cfgs = append(c.cfgs, cfg)
	}
	var addrs []string
	for _, cfg := range c.cfgs {
		addrs = append(addrs, cfg.HTTPAddr)
	}
	cl, err := testClient(t, addrs)
	if c.cfgs[0].Insecure {
		cl, err = NewClient(addrs)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.client = cl
	waitFor(t, 10*time.Second, "the admin token", func() bool {
		if c.cfgs[0].Insecure {
			return true
		}
		n := 0
		c.members[0].fsm.read(func(s *State) { n = len(s.Tokens) })
		return n > 0
	})
	waitFor(t, 10*time.Second, "all members in the configuration", func() bool {
		st := c.members[0].Status()
		return len(st.Members) == n
	})
	t.Cleanup(func() {
		for _, m := range c.members {
			if m != nil {
				m.Close()
			}
		}
	})
	return c
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *testCluster) leader() int {
	for i, m := range c.members {
		if m != nil && m.IsLeader() {
			return i
		}
	}
	return -1
}

func (c *testCluster) waitLeader() int {
	c.t.Helper()
	var l int
	waitFor(c.t, 15*time.Second, "a leader", func() bool { l = c.leader(); return l >= 0 })
	return l
}

func (c *testCluster) stop(i int) {
	c.members[i].Close()
	c.members[i] = nil
}

func (c *testCluster) restart(i int) {
	c.t.Helper()
	cfg := c.cfgs[i]
	cfg.Bootstrap, cfg.Join = false, nil // a restarted member needs only its own flags
	m, err := Start(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("restart %s: %v", cfg.ID, err)
	}
	c.members[i] = m
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLeaderShutdownKeepsAcknowledgedWrites shuts the leader down in the
// middle of a stream of writes: every write the API acknowledged is on
// the new leader, and the store keeps serving.
func TestLeaderShutdownKeepsAcknowledgedWrites(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t)
	var acked sync.Map
	var wg sync.WaitGroup
	stopWriting := make(chan struct{})
	var n atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopWriting:
					return
				default:
				}
				name := fmt.Sprintf("p%d-%d", w, i)
				if _, err := c.client.Push(ctx, PushRequest{Name: name, Text: okPolicy, Author: "t"}); err == nil {
					acked.Store(name, true)
					n.Add(1)
				}
			}
		}()
	}
	waitFor(t, 10*time.Second, "some writes", func() bool { return n.Load() > 20 })
	old := c.leader()
	c.stop(old)
	before := n.Load()
	waitFor(t, 20*time.Second, "writes after failover", func() bool { return n.Load() > before+20 })
	close(stopWriting)
	wg.Wait()

	l := c.waitLeader()
	if l == old {
		t.Fatal("the stopped member is still leader")
	}
	list, err := c.client.ListPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range list {
		have[p.Name] = true
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if !have[k.(string)] {
			missing++
			t.Errorf("acknowledged policy %s is missing", k)
		}
		return missing < 10
	})
	t.Logf("%d acknowledged writes, all present after the leader was shut down", n.Load())

	// the old leader rejoins from its data folder and catches up
	c.restart(old)
	waitFor(t, 15*time.Second, "restarted member to catch up", func() bool {
		var got int
		c.members[old].fsm.read(func(s *State) { got = len(s.Policies) })
		return got >= len(have)
	})
}

// TestLeaseExclusivity: 50 goroutines race for the same keys; the
// acquire/release history shows at most one holder of a key at any
// instant, and fencing tokens increase with every grant.
func TestLeaseExclusivity(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t)
	type hold struct {
		key        string
		holder     string
		token      uint64
		start, end time.Time // acquire returned, release called
	}
	var mu sync.Mutex
	var holds []hold
	keys := []string{"vm/a", "vm/b", "vm/c"}
	var wg sync.WaitGroup
	// 4 s of contention, longer on a machine too busy to have granted 40
	// leases by then (a shared CI machine): the test counts, it does not time
	deadline, latest := time.Now().Add(4*time.Second), time.Now().Add(60*time.Second)
	var grants atomic.Int64
	running := func() bool {
		return time.Now().Before(deadline) || (grants.Load() < 40 && time.Now().Before(latest))
	}
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("g%d", g)
			for i := 0; running(); i++ {
				key := keys[(g+i)%len(keys)]
				gr, err := c.client.Acquire(ctx, AcquireRequest{Holder: holder, TTLMillis: 30000, Items: []AcquireItem{{Key: key}}})
				if err != nil {
					if !errors.Is(err, ErrLeaseHeld) {
						t.Errorf("acquire: %v", err)
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				start := time.Now()
				grants.Add(1)
				time.Sleep(time.Millisecond)
				end := time.Now()
				if err := c.client.Release(ctx, RenewRequest{Keys: []string{key}, Holder: holder, Token: gr.Token}); err != nil {
					t.Errorf("release: %v", err)
					return
				}
				mu.Lock()
				holds = append(holds, hold{key, holder, gr.Token, start, end})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(holds) < 30 {
		t.Fatalf("only %d holds recorded", len(holds))
	}
	byKey := map[string][]hold{}
	for _, h := range holds {
		byKey[h.key] = append(byKey[h.key], h)
	}
	for key, hs := range byKey {
		sort.Slice(hs, func(i, j int) bool { return hs[i].token < hs[j].token })
		for i := 1; i < len(hs); i++ {
			a, b := hs[i-1], hs[i]
			if a.token == b.token {
				t.Errorf("%s: token %d granted twice", key, a.token)
			}
			if b.start.Before(a.end) {
				t.Errorf("%s: %s held it from %v while %s held it until %v", key, b.holder, b.start.Format(time.StampMicro), a.holder, a.end.Format(time.StampMicro))
			}
		}
	}
	t.Logf("%d grants checked over %d keys", len(holds), len(byKey))
}

func TestExpiryCASAndForwarding(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t)
	l := c.waitLeader()
	follower := (l + 1) % 3
	fc, _ := testClient(t, []string{c.cfgs[follower].HTTPAddr})

	// a write sent to a follower is forwarded to the leader
	res, err := fc.Push(ctx, PushRequest{Name: "balance", Text: okPolicy, Author: "ann"})
	if err != nil || res.Version != 1 {
		t.Fatalf("push via follower: %+v %v", res, err)
	}
	// and a linearizable read through the follower sees it at once
	v, err := fc.ActivePolicy(ctx, "balance", false)
	if err != nil || v.Version != 1 || v.Text != okPolicy {
		t.Fatalf("read via follower: %+v %v", v, err)
	}
	// compare-and-set
	zero := 0
	_, err = fc.Push(ctx, PushRequest{Name: "balance", Text: okPolicy + "//2\n", ExpectVersion: &zero})
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != "version_conflict" || ae.Status != http.StatusConflict {
		t.Fatalf("CAS conflict: %v", err)
	}
	// expiry
	g, err := fc.Acquire(ctx, AcquireRequest{Holder: "w1", TTLMillis: 300, Items: []AcquireItem{{Key: "reserve/h1/vm-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 300, Items: []AcquireItem{{Key: "reserve/h1/vm-1"}}}); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second acquire: %v", err)
	}
	time.Sleep(400 * time.Millisecond)
	g2, err := fc.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 300, Items: []AcquireItem{{Key: "reserve/h1/vm-1"}}})
	if err != nil || g2.Token <= g.Token {
		t.Fatalf("acquire after expiry: %+v %v", g2, err)
	}
	if err := fc.Release(ctx, RenewRequest{Keys: []string{"reserve/h1/vm-1"}, Holder: "w1", Token: g.Token}); !errors.Is(err, ErrStaleToken) {
		t.Fatalf("release with a stale token: %v", err)
	}
}

func TestInvalidPolicyRefusedWithPositions(t *testing.T) {
	c := startCluster(t, 1)
	ctx := ctxT(t)
	if _, err := c.client.Push(ctx, PushRequest{Name: "balance", Text: okPolicy}); err != nil {
		t.Fatal(err)
	}
	_, err := c.client.Push(ctx, PushRequest{Name: "balance", Text: "r(x, initial)\na(x, X) :: null <- nowhere(X).\n"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != "invalid_policy" || ae.Status != http.StatusUnprocessableEntity {
		t.Fatalf("want invalid_policy 422, got %v", err)
	}
	if d := fmt.Sprint(ae.Details); !strings.Contains(d, "2:20") || !strings.Contains(d, "unknown constraint nowhere/1") {
		t.Errorf("details do not carry line:col: %s", d)
	}
	h, _ := c.client.History(ctx, "balance")
	if len(h.Versions) != 1 || h.Active != 1 {
		t.Errorf("an invalid push changed the policy: %+v", h)
	}
}

func TestHTTPBadInput(t *testing.T) {
	c := startCluster(t, 1)
	base := "https://" + c.cfgs[0].HTTPAddr
	post := func(path, body string) (int, string) {
		resp, err := testHTTP(t).Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		fmt.Fprint(b, resp.Body)
		buf := make([]byte, 4096)
		nr, _ := resp.Body.Read(buf)
		return resp.StatusCode, string(buf[:nr])
	}
	tests := []struct {
		path, body string
		code       int
		field      string
	}{
		{"/v1/leases/acquire", "{", 400, `"field": "body"`},
		{"/v1/leases/acquire", `{"holder": 3}`, 400, `"field": "holder"`},
		{"/v1/leases/acquire", `{"holder": "w", "ttl_ms": 1000, "items": [{"key": "vm/a"}], "extra": 1}`, 400, `"field": "extra"`},
		{"/v1/leases/acquire", `{"holder": "w", "ttl_ms": -1, "items": [{"key": "vm/a"}]}`, 400, `"field": "ttl_ms"`},
		{"/v1/policies/balance", `{"text": "` + strings.Repeat("x", 3<<20) + `"}`, 413, `"code": "too_large"`},
		{"/v1/policies/Bad%20Name", `{"text": "x"}`, 400, `"field": "name"`},
		{"/v1/policies/balance/activate", `{"version": 0}`, 400, `"field": "version"`},
		{"/v1/policies/balance/activate", `{"version": 3}`, 404, `"code": "not_found"`},
		{"/v1/cluster/join", `{}`, 400, `"field": "id"`},
	}
	for _, tt := range tests {
		code, body := post(tt.path, tt.body)
		if code != tt.code || !strings.Contains(body, tt.field) {
			t.Errorf("POST %s %.40s: %d %s, want %d with %s", tt.path, tt.body, code, body, tt.code, tt.field)
		}
	}
	resp, err := testHTTP(t).Get(base + "/v1/journal?since=x")
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("bad since: %v %v", resp.StatusCode, err)
	}
}

func TestSnapshotRestoreAPI(t *testing.T) {
	c := startCluster(t, 1)
	ctx := ctxT(t)
	c.client.Push(ctx, PushRequest{Name: "balance", Text: okPolicy, Author: "ann"})
	backup, err := c.client.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.client.Push(ctx, PushRequest{Name: "balance", Text: okPolicy + "//2\n", Author: "ann"})
	c.client.Push(ctx, PushRequest{Name: "other", Text: okPolicy, Author: "ann"})
	if err := c.client.Restore(ctx, backup); err != nil {
		t.Fatal(err)
	}
	list, _ := c.client.ListPolicies(ctx)
	if len(list) != 1 || list[0].Latest != 1 {
		t.Fatalf("after restore: %+v", list)
	}
	if err := c.client.Restore(ctx, []byte(`{"nonsense": true}`)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("garbage restore: %v", err)
	}
}

// TestElectionDoesNotExpireLeases: a lease with time left when the leader
// stops still holds under the new leader.
func TestElectionDoesNotExpireLeases(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t)
	g, err := c.client.Acquire(ctx, AcquireRequest{Holder: "w1", TTLMillis: 3000, Items: []AcquireItem{{Key: "vm/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	c.stop(c.leader())
	c.waitLeader()
	// the new leader extended it: it can still be renewed after its
	// original expiry would have passed during a slow election
	if _, err := c.client.Renew(ctx, RenewRequest{Keys: []string{"vm/x"}, Holder: "w1", Token: g.Token, TTLMillis: 3000}); err != nil {
		t.Fatalf("renew after election: %v", err)
	}
	if _, err := c.client.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/x"}}}); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("another holder got the lease after the election: %v", err)
	}
}

func TestNoQuorumError(t *testing.T) {
	c := startCluster(t, 3)
	c.waitLeader()
	c.stop(1)
	c.stop(2)
	cl, _ := testClient(t, []string{c.cfgs[0].HTTPAddr})
	cl.Timeout = 3 * time.Second
	_, err := cl.Push(context.Background(), PushRequest{Name: "x", Text: okPolicy})
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("want no_quorum, got %v", err)
	}
	if !strings.Contains(err.Error(), "no store member could serve") {
		t.Errorf("unclear message: %v", err)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	c := startCluster(t, 1)
	ctx := ctxT(t)
	c.client.Push(ctx, PushRequest{Name: "p", Text: okPolicy})
	base := "https://" + c.cfgs[0].HTTPAddr
	for path, want := range map[string]string{
		"/metrics": "parley_raft_leader 1",
		"/healthz": `"ok"`,
		"/readyz":  `"ready"`,
	} {
		resp, err := testHTTP(t).Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1<<16)
		n, _ := io.ReadFull(resp.Body, b)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b[:n]), want) {
			t.Errorf("%s: %d, want %q in:\n%s", path, resp.StatusCode, want, b[:n])
		}
	}
	resp, _ := testHTTP(t).Get(base + "/metrics")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// the member's own series, and raft's through go-metrics' Prometheus sink
	for _, series := range []string{"parley_policy_pushes_total 1", `parley_apply_seconds_count{command="policy.push"} 1`, "parley_leases_held 0",
		"parley_journal_entries ", "parley_policy_versions 1", "raft_state_leader ", "raft_commitTime_count ", "raft_fsm_apply_count "} {
		if !strings.Contains(string(b), series) {
			t.Errorf("metrics lack %s", series)
		}
	}
}
