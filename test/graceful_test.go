package test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/raftstore"
)

// exitCode waits for p to end (up to d) and returns its exit code, -1 if
// it is still running.
func (p *proc) exitCode(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// TestGracefulWorkerStop: SIGTERM to a worker whose vMotion is under way.
// It offers and bids no more, lets the vMotion end (the journal says
// success, vCenter has the VM on one host), gives back every lease it
// held (bar the VM's cool-down, which is meant to outlive it) before it
// goes, and exits 0.
func TestGracefulWorkerStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	e := newEnv(t, envConfig{hosts: 6, vms: 36, seed: 14, migrateTime: 4 * time.Second})
	ctx := ctxFor(t, 3*time.Minute)
	victim, vm := -1, ""
	deadline := time.Now().Add(60 * time.Second)
	for victim < 0 && time.Now().Before(deadline) {
		ls, err := e.client.Leases(ctx, "vm/", false)
		for _, l := range ls {
			if err == nil && l.State == "held" {
				for i := range e.workers {
					if l.Holder == "w"+itoa(i) {
						victim, vm = i, strings.TrimPrefix(l.Key, "vm/")
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if victim < 0 {
		t.Fatal("no migration started within 60 s")
	}
	id := "w" + itoa(victim)
	w := e.workers[victim]
	sent := time.Now()
	w.cmd.Process.Signal(syscall.SIGTERM)
	code := w.exitCode(40 * time.Second)
	took := time.Since(sent)
	if code != 0 {
		t.Fatalf("%s exited with %d after SIGTERM, want 0", id, code)
	}
	log := w.log.String()
	for _, want := range []string{"stopping: no more offers, bids or reservations", `"message":"stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("%s's log lacks %q", id, want)
		}
	}
	ls, err := e.client.Leases(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.State == "held" && l.Holder == id && !strings.HasPrefix(l.Key, "cool/") {
			t.Errorf("%s still holds %s after it exited", id, l.Key)
		}
	}
	js, err := e.client.Journal(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	outcome := ""
	for _, j := range js {
		if j.Kind == "migration" && j.VM == vm && j.Worker == id {
			outcome = j.Outcome + " " + j.Reason
		}
	}
	if !strings.HasPrefix(outcome, "success") {
		t.Errorf("the vMotion of %s under way at SIGTERM was journaled %q, want success (let it end)", vm, outcome)
	}
	if p := e.placement(); p[vm] == "" {
		t.Errorf("VM %s is on no host", vm)
	}
	e.checkNoOverlap(4, 0.7)
	t.Logf("%s moved %s when SIGTERM came; it exited 0 after %v (%s)", id, vm, took.Round(time.Millisecond), outcome)
}

// TestGracefulLeaderStop: SIGTERM to the store's leader. It hands its
// leadership over before it exits (its log says to whom), exits 0, and
// the others take writes at once. How soon is measured, not asserted.
func TestGracefulLeaderStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	e := newEnv(t, envConfig{hosts: 2, vms: 4, seed: 3, noWorkers: true})
	ctx := ctxFor(t, 2*time.Minute)
	l := e.waitLeader(20 * time.Second)
	var others []string
	for i, a := range e.storeHTTP {
		if i != l {
			others = append(others, a)
		}
	}
	c, err := e.newClient(others...)
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = 10 * time.Second
	sent := time.Now()
	e.stores[l].cmd.Process.Signal(syscall.SIGTERM)
	if code := e.stores[l].exitCode(20 * time.Second); code != 0 {
		t.Fatalf("the leader exited with %d after SIGTERM, want 0", code)
	}
	if log := e.stores[l].log.String(); !strings.Contains(log, "stopping: handed over the leadership") {
		t.Errorf("the stopped leader's log does not say it handed over the leadership:\n%s", tail(log, 20))
	}
	if _, err := c.Acquire(ctx, raftstore.AcquireRequest{Holder: "after-stop", TTLMillis: 60000, Items: []raftstore.AcquireItem{{Key: "lock/after-stop"}}}); err != nil {
		t.Fatalf("a write after the leader stopped: %v", err)
	}
	t.Logf("first write acknowledged %v after SIGTERM to the leader s%d", time.Since(sent).Round(time.Millisecond), l+1)
}
