package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestMemKeepsTheStoresLeaseRules: the in-memory store answers with the
// state machine's own rules (lock-delay and needs-reconcile after an
// unreleased expiry, key checks, renewal only by the holder under its
// token, fencing tokens that grow), not a copy of them.
func TestMemKeepsTheStoresLeaseRules(t *testing.T) {
	ctx := context.Background()
	m := NewMem(Config{LeaseLockDelay: 5 * time.Second})
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }

	if _, err := m.Acquire(ctx, AcquireRequest{Holder: "w1", TTLMillis: 1000, Items: []AcquireItem{{Key: "not-a-key"}}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad key: got %v, want bad_request", err)
	}
	g1, err := m.Acquire(ctx, AcquireRequest{Holder: "w1", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/a"}, {Key: "host/h1/slot/", AnyOf: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/a"}}}); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("held lease: got %v, want lease_held", err)
	}
	if _, err := m.Renew(ctx, RenewRequest{Keys: []string{"vm/a"}, Holder: "w1", Token: g1.Token + 1, TTLMillis: 1000}); !errors.Is(err, ErrStaleToken) {
		t.Fatalf("renew with a wrong token: got %v, want stale_token", err)
	}
	now = now.Add(800 * time.Millisecond)
	if _, err := m.Renew(ctx, RenewRequest{Keys: []string{"vm/a"}, Holder: "w1", Token: g1.Token, TTLMillis: 1000}); err != nil {
		t.Fatalf("renew by the holder: %v", err)
	}
	now = now.Add(700 * time.Millisecond) // past the first expiry, inside the renewed lease
	if _, err := m.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/a"}}}); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("renewed lease: got %v, want lease_held", err)
	}
	now = now.Add(2 * time.Second) // expired, unreleased: locked for the lock-delay
	if _, err := m.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/a"}}}); !errors.Is(err, ErrLockDelay) {
		t.Fatalf("inside the lock-delay: got %v, want lock_delay", err)
	}
	ls, err := m.Leases(ctx, "vm/", false)
	if err != nil || len(ls) != 1 || ls[0].State != "needs-reconcile" {
		t.Fatalf("expired VM lease should be listed as needs-reconcile: %+v %v", ls, err)
	}
	now = now.Add(5 * time.Second)
	g2, err := m.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if g2.Token <= g1.Token || len(g2.NeedsReconcile) != 1 || g2.NeedsReconcile[0] != "vm/a" {
		t.Fatalf("grant after the lock-delay: %+v (first token %d)", g2, g1.Token)
	}
	if err := m.Release(ctx, RenewRequest{Keys: []string{"vm/a"}, Holder: "w1", Token: g1.Token}); !errors.Is(err, ErrStaleToken) {
		t.Fatalf("release by the old holder: got %v, want stale_token", err)
	}
}

// TestMemPoliciesWorkersAndJournal: the other calls a worker makes.
func TestMemPoliciesWorkersAndJournal(t *testing.T) {
	ctx := context.Background()
	m := NewMem(Config{JournalLimit: 2})
	if _, err := m.ActivePolicy(ctx, "balance", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no policy yet: got %v", err)
	}
	for _, text := range []string{"r(a, initial)\na(a, X) :: null.\n", "r(a, initial)\na(a, Y) :: null.\n"} {
		if _, err := m.Push(ctx, PushRequest{Name: "balance", Text: text, Author: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := m.ActivePolicy(ctx, "balance", false)
	if err != nil || v.Version != 2 || !strings.Contains(v.Text, "Y") {
		t.Fatalf("active: %+v %v", v, err)
	}
	if v1, err := m.PolicyVersion(ctx, "balance", 1); err != nil || !strings.Contains(v1.Text, "X") {
		t.Fatalf("version 1: %+v %v", v1, err)
	}
	if _, err := m.Heartbeat(ctx, HeartbeatRequest{ID: "w1", Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	if ws, err := m.Workers(ctx, true); err != nil || len(ws) != 1 || ws[0].Host != "h1" {
		t.Fatalf("workers: %+v %v", ws, err)
	}
	for _, vm := range []string{"a", "b", "c"} {
		if err := m.AppendJournal(ctx, JournalEntry{Kind: "migration", VM: vm}); err != nil {
			t.Fatal(err)
		}
	}
	js, err := m.Journal(ctx, 0, 10)
	if err != nil || len(js) != 2 || js[0].VM != "b" {
		t.Fatalf("journal bounded to 2: %+v %v", js, err)
	}
	if _, err := m.Drain(ctx, "h1", "op", true); err != nil {
		t.Fatal(err)
	}
	if err := m.ReportHost(ctx, HostReport{Name: "h1", State: "drained"}); err != nil {
		t.Fatal(err)
	}
	if hs, err := m.Hosts(ctx, true); err != nil || len(hs) != 1 || !hs[0].Drain || hs[0].State != "drained" {
		t.Fatalf("hosts: %+v %v", hs, err)
	}
}

// TestStateMachineKeepsNoHTTPStatus: a refusal remembered for
// deduplication carries a result code, not a transport status, so none is
// saved in a snapshot; a snapshot written when statuses were saved still
// restores, without them.
func TestStateMachineKeepsNoHTTPStatus(t *testing.T) {
	l := newFSMLog(t)
	l.apply(cmdActivate, "req-1", ActivateRequest{Name: "nope", Version: 1})
	snap := persist(t, l.fsm)
	if bytes.Contains(snap, []byte(`"status"`)) {
		t.Fatalf("snapshot holds an HTTP status: %s", snap)
	}
	old := `{"policies":{},"leases":{},"workers":{},"journal":[],"journal_next":1,"members":{},` +
		`"requests":{"req-9":{"error":{"status":404,"code":"not_found","message":"no policy \"x\"","field":"name"}}},"request_order":["req-9"],"last_time":1,"last_index":1}`
	f := NewFSM(l.fsm.log)
	if err := f.Restore(nopCloser{bytes.NewReader([]byte(old))}); err != nil {
		t.Fatalf("snapshot from before result codes: %v", err)
	}
	r := f.state.Requests["req-9"]
	if r == nil || r.Error == nil || r.Error.Code != CodeNotFound || r.Error.Status != 0 {
		t.Fatalf("restored refusal: %+v", r)
	}
	b, _ := json.Marshal(f.state)
	if bytes.Contains(b, []byte(`"status"`)) {
		t.Fatalf("restored state still holds an HTTP status: %s", b)
	}
}

// TestEveryCodeHasAStatus: each result code maps to its HTTP status.
func TestEveryCodeHasAStatus(t *testing.T) {
	for code, want := range map[string]int{CodeBadRequest: 400, CodeNotFound: 404, CodeInvalidPolicy: 422, CodeVersionConflict: 409,
		CodeNoPrevious: 409, CodeLeaseHeld: 409, CodeLockDelay: 409, CodeStaleToken: 409, CodeTooLarge: 413, CodeNoQuorum: 503,
		CodeUnknownOutcome: 503, CodeInternal: 500, "something_new": 500} {
		if got := httpStatus(code); got != want {
			t.Errorf("%s: status %d, want %d", code, got, want)
		}
	}
}

// TestMemDecidesAWorkersRulesInTheStateMachine: a Mem bound to a worker
// is refused what a member refuses that worker's token, because the rules
// are decided where the command applies, from the identity it carries:
// acting in another's name, giving back a reservation without holding the
// VM's lease (and, once the lease is gone, not even then), reporting on
// another's host. A command written before commands carried a role is
// applied as it was.
func TestMemDecidesAWorkersRulesInTheStateMachine(t *testing.T) {
	ctx := context.Background()
	m := NewMem(Config{})
	w1, w2 := m.AsWorker("w1"), m.AsWorker("w2")
	for _, w := range []struct {
		st   *Mem
		id   string
		host string
	}{{w1, "w1", "h1"}, {w2, "w2", "h2"}} {
		if _, err := w.st.Heartbeat(ctx, HeartbeatRequest{Host: w.host}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w1.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 60000, Items: []AcquireItem{{Key: "vm/x"}}}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("w1 acquiring as w2: %v, want forbidden", err)
	}
	res, err := w2.Acquire(ctx, AcquireRequest{TTLMillis: 60000, Items: []AcquireItem{{Key: "reserve/h2/a"}, {Key: "reserve/h2/b"}}})
	if err != nil || res.Holder != "w2" {
		t.Fatalf("w2's reservations: %+v %v", res, err)
	}
	lease, err := w1.Acquire(ctx, AcquireRequest{TTLMillis: 60000, Items: []AcquireItem{{Key: "vm/a"}}})
	if err != nil {
		t.Fatal(err)
	}
	// w1 migrates a, not b: it may give back reserve/h2/a only
	if err := w1.Release(ctx, RenewRequest{Keys: []string{"reserve/h2/b"}, Holder: "w2", Token: res.Token}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("w1 releasing the reservation of a VM it does not migrate: %v, want forbidden", err)
	}
	if err := w1.Release(ctx, RenewRequest{Keys: []string{"vm/a"}, Holder: "w1", Token: lease.Token}); err != nil {
		t.Fatal(err)
	}
	if err := w1.Release(ctx, RenewRequest{Keys: []string{"reserve/h2/a"}, Holder: "w2", Token: res.Token}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("w1 releasing a reservation after giving back the VM's lease: %v, want forbidden", err)
	}
	lease, _ = w1.Acquire(ctx, AcquireRequest{TTLMillis: 60000, Items: []AcquireItem{{Key: "vm/a"}}})
	if _, err := w1.Renew(ctx, RenewRequest{Keys: []string{"reserve/h2/a"}, Holder: "w2", Token: res.Token, TTLMillis: 60000}); err != nil {
		t.Fatalf("the migrator renewing its target's reservation: %v", err)
	}
	if err := w1.Release(ctx, RenewRequest{Keys: []string{"reserve/h2/a"}, Holder: "w2", Token: res.Token}); err != nil {
		t.Fatalf("the migrator giving back its target's reservation: %v", err)
	}
	// giving back a reservation already given back is stale, as for its
	// holder (the policy's release/1 after the worker's own), not forbidden
	if err := w1.Release(ctx, RenewRequest{Keys: []string{"reserve/h2/a"}, Holder: "w2", Token: res.Token}); !errors.Is(err, ErrStaleToken) {
		t.Fatalf("w1 releasing a reservation already given back: %v, want stale_token", err)
	}
	if err := w1.Release(ctx, RenewRequest{Keys: []string{"vm/a"}, Holder: "w2", Token: lease.Token}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("w1 releasing its own lease in w2's name: %v, want forbidden", err)
	}
	if err := w1.ReportHost(ctx, HostReport{Name: "h2", State: "draining"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("w1 reporting on h2: %v, want forbidden", err)
	}
	if err := w1.ReportHost(ctx, HostReport{Name: "h1", State: "draining"}); err != nil {
		t.Fatalf("w1 reporting on its own host: %v", err)
	}
	if err := w1.AppendJournal(ctx, JournalEntry{Kind: "migration", Worker: "w2"}); err != nil {
		t.Fatal(err)
	}
	js, _ := m.Journal(ctx, 0, 100)
	if last := js[len(js)-1]; last.Worker != "w1" {
		t.Fatalf("a journal entry claimed for w2 by w1 recorded as %q, want w1", last.Worker)
	}
	for _, j := range js {
		if j.Kind == "audit" {
			t.Fatalf("a worker giving back its target's reservation was audited as a forced release: %+v", j)
		}
	}

	// an entry from before commands carried a role applies as it did
	m.mu.Lock()
	r, err := m.applyLocked(cmdRelease, Identity{Name: "w1"}, RenewRequest{Keys: []string{"reserve/h2/b"}, Holder: "w2", Token: res.Token}, m.now())
	m.mu.Unlock()
	if err != nil || r.Error != nil {
		t.Fatalf("a roleless release (an older member's entry): %v %v", err, r.Error)
	}
}
