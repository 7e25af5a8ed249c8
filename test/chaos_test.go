package test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// A scenario: an environment of real processes, lease and policy traffic
// recorded in a history, a failure injected while the workers balance,
// then the checks every scenario makes: linearizability, no overlap, no
// oversubscription, no lost data, every VM on one host.
type scenario struct {
	t    *testing.T
	e    *env
	h    *history
	stop chan struct{}
	wgs  []*sync.WaitGroup
	vms  int
	ctx  context.Context
}

func startScenario(t *testing.T, cfg envConfig) *scenario {
	if testing.Short() {
		t.Skip("chaos scenarios start real processes")
	}
	s := &scenario{t: t, e: newEnv(t, cfg), h: newHistory(), stop: make(chan struct{}), vms: cfg.vms}
	s.ctx = ctxFor(t, 10*time.Minute)
	s.wgs = append(s.wgs, leaseTraffic(s.ctx, s.e.client, s.h, 4, s.stop), policyTraffic(s.ctx, s.e.client, s.h, s.e.policyText, s.stop))
	return s
}

// finish stops the traffic and runs the common checks.
func (s *scenario) finish() {
	close(s.stop)
	for _, wg := range s.wgs {
		wg.Wait()
	}
	s.e.waitLeader(30 * time.Second)
	s.h.check(s.t)
	s.h.checkPolicies(s.t)
	s.e.checkNoOverlap(4, 0.7)
	s.h.checkNoLostData(s.t, s.e.client)
	s.e.checkPlacement(s.vms)
}

// imbalance reads host loads through the vSphere API itself.
func (s *scenario) imbalance() (sd, maxLoad float64) {
	c, err := vsphere.Connect(s.ctx, vsphere.Config{URL: s.e.sdk, User: "u", Password: "p", CAFile: s.e.simCA}, zerolog.Nop())
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	inv, err := c.Inventory(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	st := vsphere.CPULoadStats(inv.Hosts)
	sd, maxLoad = st.StdDev, st.Max
	if len(inv.VMs) != s.vms {
		s.t.Errorf("vCenter lists %d VMs, want %d", len(inv.VMs), s.vms)
	}
	return sd, maxLoad
}

// waitBalanced waits until no host is over high and no migration is in
// flight, or the deadline.
func (s *scenario) waitBalanced(d time.Duration) (float64, float64) {
	deadline := time.Now().Add(d)
	var sd, mx float64
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		sd, mx = s.imbalance()
		ls, err := s.e.client.Leases(s.ctx, "vm/", false)
		if mx <= 0.7 && err == nil && len(ls) == 0 {
			break
		}
	}
	return sd, mx
}

// TestChaosBalance: 8 hosts, 64 VMs with skewed load; the workers run
// balance until quiet. Checked through the vSphere API.
func TestChaosBalance(t *testing.T) {
	s := startScenario(t, envConfig{hosts: 8, vms: 64, seed: 11})
	before, beforeMax := s.imbalance()
	after, afterMax := s.waitBalanced(chaosDuration(90 * time.Second))
	if after >= before {
		t.Errorf("imbalance did not fall: %.3f -> %.3f", before, after)
	}
	if afterMax > 0.7 {
		t.Errorf("a host is above the high threshold: %.3f", afterMax)
	}
	t.Logf("imbalance %.3f -> %.3f, max load %.2f -> %.2f, %d relocations", before, after, beforeMax, afterMax, len(s.e.relocations()))
	s.finish()
}

// TestChaosLeaderKilled: SIGKILL the store's leader every few seconds
// while the workers migrate, and restart it; at least 5 times.
func TestChaosLeaderKilled(t *testing.T) {
	s := startScenario(t, envConfig{hosts: 8, vms: 64, seed: 12, migrateTime: time.Second})
	before, _ := s.imbalance()
	end := time.Now().Add(chaosDuration(0))
	kills := 0
	for kills < 5 || time.Now().Before(end) {
		time.Sleep(2 * time.Second)
		l := s.e.waitLeader(20 * time.Second)
		s.e.killStore(l)
		kills++
		time.Sleep(time.Second)
		s.e.stores[l].restart()
	}
	after, _ := s.waitBalanced(60 * time.Second)
	if after >= before {
		t.Errorf("imbalance did not fall under leader kills: %.3f -> %.3f", before, after)
	}
	t.Logf("%d leader kills, %d relocations", kills, len(s.e.relocations()))
	s.finish()
}

// TestChaosFrozenMember: SIGSTOP the leader for longer than the election
// timeout, then SIGCONT it. Requests sent straight to the old leader are
// part of the history: it must not grant anything after being deposed.
func TestChaosFrozenMember(t *testing.T) {
	s := startScenario(t, envConfig{hosts: 4, vms: 24, seed: 13})
	time.Sleep(2 * time.Second)
	l := s.e.waitLeader(20 * time.Second)
	s.e.stores[l].kill(syscall.SIGSTOP)
	time.Sleep(3 * time.Second) // 6 election timeouts
	s.e.stores[l].kill(syscall.SIGCONT)
	// the old leader, straight after waking: its answers go in the history
	old, _ := s.e.newClient(s.e.storeHTTP[l])
	old.Timeout = 5 * time.Second
	for i := 0; i < 20; i++ {
		in := leaseInput{Op: "acquire", Key: "lock/chaos-a", Holder: "old-leader-client"}
		call := s.h.now()
		g, err := old.Acquire(s.ctx, raftstore.AcquireRequest{Holder: "old-leader-client", TTLMillis: 120000, Items: []raftstore.AcquireItem{{Key: "lock/chaos-a"}}})
		out := outcome(err)
		if err == nil {
			out.Token = g.Token
			s.h.record(99, in, call, out)
			rin := leaseInput{Op: "release", Key: "lock/chaos-a", Holder: "old-leader-client", Token: g.Token}
			rcall := s.h.now()
			s.h.record(99, rin, rcall, outcome(old.Release(s.ctx, raftstore.RenewRequest{Keys: []string{"lock/chaos-a"}, Holder: "old-leader-client", Token: g.Token})))
			continue
		}
		s.h.record(99, in, call, out)
		time.Sleep(50 * time.Millisecond)
	}
	if nl := s.e.waitLeader(20 * time.Second); nl == l {
		t.Logf("the frozen member was elected again after waking")
	}
	s.finish()
}

// TestChaosWorkerKilledMidMigration: SIGKILL a worker while its vMotion
// runs, then restart it. Its leases are reconciled or expire, and the VM
// ends on exactly one host.
func TestChaosWorkerKilledMidMigration(t *testing.T) {
	s := startScenario(t, envConfig{hosts: 6, vms: 36, seed: 14, migrateTime: 4 * time.Second, leaseTTL: 3})
	var victim int = -1
	var vm string
	deadline := time.Now().Add(60 * time.Second)
	for victim < 0 && time.Now().Before(deadline) {
		ls, err := s.e.client.Leases(s.ctx, "vm/", false)
		if err == nil {
			for _, l := range ls {
				if l.State == "held" && strings.HasPrefix(l.Holder, "w") {
					for i := range s.e.workers {
						if l.Holder == "w"+itoa(i) {
							victim, vm = i, strings.TrimPrefix(l.Key, "vm/")
						}
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if victim < 0 {
		t.Fatal("no migration started")
	}
	s.e.workers[victim].kill(syscall.SIGKILL)
	time.Sleep(time.Second)
	s.e.workers[victim].restart()
	// the VM lease is released by the restarted worker's reconciliation,
	// or expires; either way it stops being held
	deadline = time.Now().Add(60 * time.Second)
	released := false
	for !released && time.Now().Before(deadline) {
		ls, err := s.e.client.Leases(s.ctx, "vm/"+vm, false)
		released = err == nil && (len(ls) == 0 || ls[0].State != "held" || ls[0].Holder != "w"+itoa(victim))
		time.Sleep(200 * time.Millisecond)
	}
	if !released {
		t.Errorf("the killed worker's lease on %s was neither reconciled nor expired within 60 s", vm)
	}
	time.Sleep(6 * time.Second) // let the interrupted vMotion land in vCenter
	p := s.e.placement()
	if p[vm] == "" {
		t.Errorf("VM %s is on no host after the worker was killed", vm)
	}
	js, _ := s.e.client.Journal(s.ctx, 0, 100000)
	reconciled := false
	for _, j := range js {
		if j.Kind == "reconcile" && j.VM == vm {
			reconciled = true
		}
	}
	t.Logf("killed w%d while it moved %s; reconciled by the restarted worker: %v", victim, vm, reconciled)
	s.finish()
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestChaosPolicyRollbackUnderLoad: push a new version, activate it, roll
// back, while negotiations run. Every interaction ran on one version, and
// every acknowledged version is in the history afterwards.
func TestChaosPolicyRollbackUnderLoad(t *testing.T) {
	s := startScenario(t, envConfig{hosts: 8, vms: 64, seed: 17, migrateTime: 700 * time.Millisecond})
	var acked []int
	for round := 0; round < 3; round++ {
		time.Sleep(2 * time.Second)
		text := s.e.policyText + "\n// round " + itoa(round) + "\n"
		res, err := s.e.client.Push(s.ctx, raftstore.PushRequest{Name: "balance", Text: text, Author: "chaos", NoActivate: true})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, res.Version)
		if _, err := s.e.client.Activate(s.ctx, "balance", res.Version, "chaos"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if _, err := s.e.client.Rollback(s.ctx, "balance", "chaos"); err != nil {
			t.Fatal(err)
		}
	}
	s.waitBalanced(45 * time.Second)
	by := s.e.interactionsFromLogs()
	versions := map[string]bool{}
	for iid, vs := range by {
		if len(vs) != 1 {
			t.Errorf("interaction %s ran on several versions: %v", iid, vs)
		}
		for v := range vs {
			versions[v] = true
		}
	}
	h, err := s.e.client.History(s.ctx, "balance")
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]bool{}
	for _, v := range h.Versions {
		have[v.Version] = true
	}
	for _, v := range acked {
		if !have[v] {
			t.Errorf("acknowledged version %d is missing from the history", v)
		}
	}
	if len(by) == 0 || len(s.e.relocations()) == 0 {
		t.Errorf("no negotiation ran under the policy changes: %d interactions, %d relocations", len(by), len(s.e.relocations()))
	}
	t.Logf("%d interactions in the workers' logs over versions %v; %d activations", len(by), versions, len(h.Activations))
	s.finish()
}

// TestChaosMinorityLoss: kill two of three store members. Writes fail with
// a clear no-quorum error, the workers hold off without crashing, and
// everything resumes when a member returns.
func TestChaosMinorityLoss(t *testing.T) {
	s := startScenario(t, envConfig{hosts: 6, vms: 36, seed: 16, migrateTime: 500 * time.Millisecond})
	time.Sleep(3 * time.Second)
	l := s.e.waitLeader(20 * time.Second)
	a, b := (l+1)%3, (l+2)%3
	s.e.killStore(a)
	s.e.killStore(b)
	lost := time.Now()
	short, _ := s.e.newClient(s.e.storeHTTP[l])
	short.Timeout = 3 * time.Second
	_, err := short.Push(context.Background(), raftstore.PushRequest{Name: "minority", Text: s.e.policyText, Author: "chaos"})
	if !isUnavailable(err) || !strings.Contains(err.Error(), "no store member could serve") {
		t.Errorf("write without quorum: want a no-quorum error, got %v", err)
	}
	time.Sleep(5 * time.Second)
	for i, w := range s.e.workers {
		select {
		case <-w.done:
			t.Errorf("worker w%d exited while the store had no quorum:\n%s", i, tail(w.log.String(), 20))
		default:
		}
	}
	for _, r := range s.e.relocations() {
		if r.Start.After(lost.Add(3 * time.Second)) {
			t.Errorf("a migration started without quorum: %+v", r)
		}
	}
	s.e.stores[a].restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.e.client.Push(s.ctx, raftstore.PushRequest{Name: "minority", Text: s.e.policyText, Author: "chaos"}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes did not resume after a member returned")
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.e.stores[b].restart()
	ws, err := s.e.client.Workers(s.ctx, false)
	deadline = time.Now().Add(20 * time.Second)
	for (err != nil || len(ws) < len(s.e.workers)) && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		ws, err = s.e.client.Workers(s.ctx, false)
	}
	if len(ws) != len(s.e.workers) {
		t.Errorf("%d workers live after recovery, want %d", len(ws), len(s.e.workers))
	}
	s.finish()
}

// TestChaosWorkerRestartsRepeated: a worker SIGKILLed in the middle of a
// vMotion, again and again (PARLEY_WORKER_KILLS times; 3 in CI, 100 for
// the long version). Each time the VM ends on exactly one host, the lease
// is released or reconciled, and the journal has exactly one entry for
// the outcome (the restarted worker's reconciliation).
func TestChaosWorkerRestartsRepeated(t *testing.T) {
	kills := 3
	if v, err := strconv.Atoi(os.Getenv("PARLEY_WORKER_KILLS")); err == nil && v > 0 {
		kills = v
	}
	s := startScenario(t, envConfig{hosts: 6, vms: 48, seed: 18, migrateTime: 2 * time.Second, leaseTTL: 3})
	heat := s.hotSpot(6, 48, 18)
	for k := 0; k < kills; k++ {
		victim, vm := -1, ""
		deadline := time.Now().Add(90 * time.Second)
		nextHeat := time.Now().Add(5 * time.Second)
		for victim < 0 {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no migration started", k+1)
			}
			if time.Now().After(nextHeat) { // a hot spot keeps migrations coming
				heat()
				nextHeat = time.Now().Add(10 * time.Second)
			}
			ls, err := s.e.client.Leases(s.ctx, "vm/", false)
			for _, l := range ls {
				if err == nil && l.State == "held" {
					for i := range s.e.workers {
						if l.Holder == "w"+itoa(i) {
							victim, vm = i, strings.TrimPrefix(l.Key, "vm/")
						}
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		killed := time.Now()
		s.e.workers[victim].kill(syscall.SIGKILL)
		s.e.workers[victim].restart()
		deadline = time.Now().Add(60 * time.Second)
		for {
			ls, err := s.e.client.Leases(s.ctx, "vm/"+vm, false)
			if err == nil && (len(ls) == 0 || ls[0].State != "held" || ls[0].Holder != "w"+itoa(victim)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the lease on %s was neither reconciled nor expired", k+1, vm)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(3 * time.Second) // the interrupted vMotion lands
		if p := s.e.placement(); p[vm] == "" {
			t.Errorf("kill %d: %s is on no host", k+1, vm)
		}
		js, _ := s.e.client.Journal(s.ctx, 0, 100000)
		outcomes := 0
		for _, j := range js {
			if j.VM == vm && j.Time >= killed.UnixNano() && (j.Kind == "reconcile" || (j.Kind == "migration" && j.Worker == "w"+itoa(victim))) {
				outcomes++
			}
		}
		if outcomes != 1 {
			t.Errorf("kill %d: %d journal entries for the outcome of %s's interrupted migration, want 1", k+1, outcomes, vm)
		}
	}
	t.Logf("%d workers killed mid-vMotion and restarted", kills)
	s.finish()
}
