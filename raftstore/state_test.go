package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"
)

// fsmLog feeds commands to an FSM as raft would, with increasing indexes
// and a clock the test controls.
type fsmLog struct {
	t     *testing.T
	fsm   *FSM
	index uint64
	now   time.Time
	cmds  [][]byte
}

func newFSMLog(t *testing.T) *fsmLog {
	return &fsmLog{t: t, fsm: NewFSM(zerolog.Nop()), now: time.Unix(1_700_000_000, 0)}
}

func (l *fsmLog) apply(typ, reqID string, body any) *Result {
	l.t.Helper()
	data, err := encodeCommand(typ, reqID, "", l.now.UnixNano(), body)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.raw(data)
}

func (l *fsmLog) raw(data []byte) *Result {
	l.index++
	l.cmds = append(l.cmds, data)
	r, _ := l.fsm.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: data}).(*Result)
	return r
}

func mustOK[T any](t *testing.T, r *Result) T {
	t.Helper()
	if r == nil || r.Error != nil {
		t.Fatalf("want success, got %+v", r.Error)
	}
	var v T
	if err := json.Unmarshal(r.Data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustErr(t *testing.T, r *Result, sentinel *Error) *Error {
	t.Helper()
	if r == nil || r.Error == nil {
		t.Fatalf("want error %s, got success", sentinel.Code)
	}
	if !errors.Is(r.Error, sentinel) {
		t.Fatalf("want error %s, got %v", sentinel.Code, r.Error)
	}
	return r.Error
}

const okPolicy = "r(x, initial)\na(x, X) :: null.\n"

func TestFSMPolicies(t *testing.T) {
	l := newFSMLog(t)
	p1 := mustOK[PushResult](t, l.apply(cmdPush, "", PushRequest{Name: "balance", Text: okPolicy, Author: "ann", Message: "first"}))
	if p1.Version != 1 || p1.Active != 1 {
		t.Fatalf("push 1: %+v", p1)
	}
	same := mustOK[PushResult](t, l.apply(cmdPush, "", PushRequest{Name: "balance", Text: okPolicy, Author: "ann"}))
	if !same.Unchanged || same.Version != 1 {
		t.Fatalf("identical push: %+v", same)
	}
	p2 := mustOK[PushResult](t, l.apply(cmdPush, "", PushRequest{Name: "balance", Text: okPolicy + "// v2\n", Author: "bob", NoActivate: true}))
	if p2.Version != 2 || p2.Active != 1 {
		t.Fatalf("push 2 without activation: %+v", p2)
	}
	one := 1
	e := mustErr(t, l.apply(cmdPush, "", PushRequest{Name: "balance", Text: okPolicy + "// v3\n", ExpectVersion: &one}), ErrVersionConflict)
	if d, _ := json.Marshal(e.Details); !strings.Contains(string(d), `"latest":2`) {
		t.Errorf("conflict does not give the current version: %s", d)
	}
	two := 2
	mustOK[PushResult](t, l.apply(cmdPush, "", PushRequest{Name: "balance", Text: okPolicy + "// v3\n", ExpectVersion: &two}))
	a := mustOK[ActivateResult](t, l.apply(cmdActivate, "", ActivateRequest{Name: "balance", Version: 2, Who: "carl"}))
	if a.From != 3 || a.Active != 2 {
		t.Fatalf("activate: %+v", a)
	}
	rb := mustOK[ActivateResult](t, l.apply(cmdActivate, "", ActivateRequest{Name: "balance", Rollback: true, Who: "dora"}))
	if rb.Active != 3 {
		t.Fatalf("rollback went to %d, want 3", rb.Active)
	}
	mustErr(t, l.apply(cmdActivate, "", ActivateRequest{Name: "balance", Version: 9}), ErrNotFound)
	mustErr(t, l.apply(cmdActivate, "", ActivateRequest{Name: "nope", Version: 1}), ErrNotFound)
	mustErr(t, l.apply(cmdPush, "", PushRequest{Name: "Bad Name", Text: okPolicy}), ErrBadRequest)
	mustErr(t, l.apply(cmdPush, "", PushRequest{Name: "big", Text: strings.Repeat("x", MaxPolicyBytes+1)}), ErrTooLarge)
	mustErr(t, l.apply(cmdPush, "", PushRequest{Name: "empty", Text: "  "}), ErrBadRequest)

	l.fsm.read(func(s *State) {
		p := s.Policies["balance"]
		if len(p.Versions) != 3 || p.Active != 3 {
			t.Fatalf("versions %d active %d", len(p.Versions), p.Active)
		}
		want := []Activation{{"ann", 0, 0, 1, "push", ""}, {"", 0, 1, 3, "push", ""}, {"carl", 0, 3, 2, "activate", ""}, {"dora", 0, 2, 3, "rollback", ""}}
		if len(p.Activations) != len(want) {
			t.Fatalf("activations: %+v", p.Activations)
		}
		for i, w := range want {
			got := p.Activations[i]
			got.Time = 0
			if got != w {
				t.Errorf("activation %d = %+v, want %+v", i, got, w)
			}
		}
		if p.Versions[0].Author != "ann" || p.Versions[0].Message != "first" || p.Versions[0].Time != l.now.UnixNano() || len(p.Versions[0].SHA256) != 64 {
			t.Errorf("version record: %+v", p.Versions[0])
		}
	})
}

func TestFSMLeases(t *testing.T) {
	l := newFSMLog(t)
	g := mustOK[Grant](t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w1", TTLMillis: 10000, Items: []AcquireItem{
		{Key: "vm/vm-1"}, {Key: "host/h1/slot/", AnyOf: 2}, {Key: "host/h2/slot/", AnyOf: 2}, {Key: "reserve/h2/vm-1", Attrs: map[string]string{"cpu_mhz": "2000"}}}}))
	if g.Token != l.index || len(g.Keys) != 4 || g.Keys[1] != "host/h1/slot/0" {
		t.Fatalf("grant: %+v", g)
	}
	// all or nothing: vm-2 is free but vm-1 is held, so nothing is taken
	e := mustErr(t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w2", TTLMillis: 10000, Items: []AcquireItem{{Key: "vm/vm-2"}, {Key: "vm/vm-1"}}}), ErrLeaseHeld)
	if d := e.Details.(LeaseHeldDetails); d.Holder != "w1" || d.Key != "vm/vm-1" {
		t.Errorf("conflict names %+v, want holder w1 of vm/vm-1", d)
	}
	l.fsm.read(func(s *State) {
		if s.Leases["vm/vm-2"] != nil {
			t.Fatal("partial acquire left vm/vm-2 held")
		}
	})
	// slots: the second acquire takes slot 1, the third finds both held
	g2 := mustOK[Grant](t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w2", TTLMillis: 10000, Items: []AcquireItem{{Key: "vm/vm-2"}, {Key: "host/h1/slot/", AnyOf: 2}}}))
	if g2.Keys[1] != "host/h1/slot/1" || g2.Token <= g.Token {
		t.Fatalf("second grant: %+v", g2)
	}
	mustErr(t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w3", TTLMillis: 10000, Items: []AcquireItem{{Key: "vm/vm-3"}, {Key: "host/h1/slot/", AnyOf: 2}}}), ErrLeaseHeld)

	// renew and release need the holder and token
	mustErr(t, l.apply(cmdRenew, "", RenewRequest{Keys: []string{"vm/vm-1"}, Holder: "w1", Token: g.Token - 1, TTLMillis: 1000}), ErrStaleToken)
	mustErr(t, l.apply(cmdRenew, "", RenewRequest{Keys: []string{"vm/vm-1"}, Holder: "w2", Token: g.Token, TTLMillis: 1000}), ErrStaleToken)
	l.now = l.now.Add(5 * time.Second)
	r := mustOK[Grant](t, l.apply(cmdRenew, "", RenewRequest{Keys: g.Keys, Holder: "w1", Token: g.Token, TTLMillis: 10000}))
	if r.Expiry != l.now.Add(10*time.Second).UnixNano() {
		t.Errorf("renewed expiry %d", r.Expiry)
	}
	mustErr(t, l.apply(cmdRelease, "", RenewRequest{Keys: []string{"vm/vm-1"}, Holder: "w1", Token: g2.Token}), ErrStaleToken)
	mustOK[map[string]any](t, l.apply(cmdRelease, "", RenewRequest{Keys: g.Keys, Holder: "w1", Token: g.Token}))
	g3 := mustOK[Grant](t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w3", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/vm-1"}}}))
	if len(g3.NeedsReconcile) != 0 {
		t.Error("a released VM lease asks for reconciliation")
	}

	// expiry of a VM lease: lock-delay, then needs-reconcile
	l.now = l.now.Add(2 * time.Second)
	mustErr(t, l.apply(cmdRenew, "", RenewRequest{Keys: []string{"vm/vm-1"}, Holder: "w3", Token: g3.Token, TTLMillis: 1000}), ErrStaleToken)
	mustErr(t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w4", TTLMillis: 1000, LockDelayMillis: 5000, Items: []AcquireItem{{Key: "vm/vm-1"}}}), ErrLockDelay)
	l.fsm.read(func(s *State) {
		ls := s.listLeases("vm/vm-1", l.now.UnixNano())
		if len(ls) != 1 || ls[0].State != "needs-reconcile" {
			t.Errorf("expired VM lease listed as %+v", ls)
		}
	})
	l.now = l.now.Add(5 * time.Second)
	g4 := mustOK[Grant](t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w4", TTLMillis: 1000, LockDelayMillis: 5000, Items: []AcquireItem{{Key: "vm/vm-1"}}}))
	if len(g4.NeedsReconcile) != 1 || g4.Token <= g3.Token {
		t.Errorf("grant after lock-delay: %+v", g4)
	}
	// an expired slot is simply free again
	l.now = l.now.Add(time.Minute)
	mustOK[Grant](t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w5", TTLMillis: 1000, Items: []AcquireItem{{Key: "host/h1/slot/", AnyOf: 1}}}))

	// bad input names the field
	for _, bad := range []AcquireRequest{
		{Holder: "", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/x"}}},
		{Holder: "w", TTLMillis: 0, Items: []AcquireItem{{Key: "vm/x"}}},
		{Holder: "w", TTLMillis: 1000},
		{Holder: "w", TTLMillis: 1000, Items: []AcquireItem{{Key: "nonsense"}}},
		{Holder: "w", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/x"}, {Key: "vm/x"}}},
	} {
		mustErr(t, l.apply(cmdAcquire, "", bad), ErrBadRequest)
	}
}

func TestFSMLeaderExtendKeepsRemainingTime(t *testing.T) {
	l := newFSMLog(t)
	g := mustOK[Grant](t, l.apply(cmdAcquire, "", AcquireRequest{Holder: "w", TTLMillis: 10000, Items: []AcquireItem{{Key: "vm/a"}}}))
	l.now = l.now.Add(4 * time.Second)
	l.apply(cmdSweep, "", nil) // the old leader's last command: 6s left
	l.now = l.now.Add(30 * time.Second)
	l.apply(cmdLeaderExtend, "", nil) // a new leader, 30s later
	l.fsm.read(func(s *State) {
		if got, want := s.Leases["vm/a"].Expiry, l.now.Add(6*time.Second).UnixNano(); got != want {
			t.Errorf("expiry after election = now%+v, want now+6s", time.Duration(got-l.now.UnixNano()))
		}
	})
	mustOK[Grant](t, l.apply(cmdRenew, "", RenewRequest{Keys: []string{"vm/a"}, Holder: "w", Token: g.Token, TTLMillis: 1000}))
}

func TestFSMDeduplicatesRequests(t *testing.T) {
	l := newFSMLog(t)
	req := AcquireRequest{Holder: "w", TTLMillis: 10000, Items: []AcquireItem{{Key: "vm/a"}}}
	g1 := mustOK[Grant](t, l.apply(cmdAcquire, "req-1", req))
	g2 := mustOK[Grant](t, l.apply(cmdAcquire, "req-1", req)) // a retry of an unknown outcome
	if g1.Token != g2.Token {
		t.Fatalf("retry acquired again: tokens %d and %d", g1.Token, g2.Token)
	}
	mustErr(t, l.apply(cmdAcquire, "req-2", req), ErrLeaseHeld)
}

func TestFSMWorkersAndJournal(t *testing.T) {
	l := newFSMLog(t)
	mustOK[Worker](t, l.apply(cmdHeartbeat, "", HeartbeatRequest{ID: "w1", Host: "h1", Addr: "127.0.0.1:1"}))
	l.now = l.now.Add(20 * time.Second)
	mustOK[Worker](t, l.apply(cmdHeartbeat, "", HeartbeatRequest{ID: "w2", Host: "h2", Addr: "127.0.0.1:2"}))
	l.fsm.read(func(s *State) {
		live := s.liveWorkers(l.now.UnixNano(), 10*time.Second)
		if len(live) != 1 || live[0].ID != "w2" {
			t.Errorf("live workers: %+v", live)
		}
	})
	mustErr(t, l.apply(cmdHeartbeat, "", HeartbeatRequest{}), ErrBadRequest)
	for i := 0; i < 5; i++ {
		mustOK[map[string]uint64](t, l.apply(cmdJournal, "", JournalRequest{Limit: 3, Entries: []JournalEntry{{Kind: "migration", VM: "vm", Interaction: "i"}, {Kind: "negotiation"}}}))
	}
	l.fsm.read(func(s *State) {
		if len(s.Journal) != 3 || s.Journal[0].Index != 8 || s.Journal[2].Index != 10 {
			t.Errorf("journal bounded to 3 should hold 8..10: %+v", s.Journal)
		}
		if got := s.journalSince(9, 0); len(got) != 1 || got[0].Index != 10 {
			t.Errorf("since 9: %+v", got)
		}
	})
}

func TestFSMRefusesGarbage(t *testing.T) {
	l := newFSMLog(t)
	for _, data := range [][]byte{nil, []byte("{"), []byte(`{"v":99,"type":"policy.push"}`), []byte(`{"v":1,"type":"policy.push","body":"x"}`), []byte(`{"v":1,"type":"what"}`)} {
		r := l.raw(data)
		if r == nil || r.Error == nil {
			t.Errorf("%q: accepted", data)
		}
	}
	r := l.raw([]byte(`{"v":1,"type":"future.thing","flags":1}`))
	if r == nil || r.Error != nil {
		t.Errorf("an unknown command with the ignore flag was refused: %+v", r)
	}
}

// TestFSMSnapshotRoundTripAndDeterminism: the same log applied to two FSMs
// gives byte-identical snapshots, and restoring a snapshot gives the same
// state back.
func TestFSMSnapshotRoundTripAndDeterminism(t *testing.T) {
	a := newFSMLog(t)
	a.apply(cmdPush, "r1", PushRequest{Name: "balance", Text: okPolicy, Author: "ann"})
	a.apply(cmdPush, "r2", PushRequest{Name: "other", Text: okPolicy + "//x\n", Author: "ann"})
	for i := 0; i < 20; i++ {
		a.apply(cmdAcquire, "", AcquireRequest{Holder: "w", TTLMillis: 5000, Items: []AcquireItem{{Key: "vm/v" + string(rune('a'+i))}, {Key: "host/h/slot/", AnyOf: 30}}})
		a.now = a.now.Add(time.Second)
	}
	a.apply(cmdHeartbeat, "", HeartbeatRequest{ID: "w1", Host: "h1", Addr: "x:1"})
	a.apply(cmdJournal, "", JournalRequest{Entries: []JournalEntry{{Kind: "migration"}}})
	a.apply(cmdMember, "", MemberRequest{ID: "s1", HTTPAddr: "x:2"})
	a.apply(cmdSweep, "", nil)

	b := newFSMLog(t)
	for _, c := range a.cmds {
		b.raw(c)
	}
	snapA, snapB := persist(t, a.fsm), persist(t, b.fsm)
	if !bytes.Equal(snapA, snapB) {
		t.Fatal("the same log gave different snapshots")
	}
	c := NewFSM(zerolog.Nop())
	if err := c.Restore(nopCloser{bytes.NewReader(snapA)}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(persist(t, c), snapA) {
		t.Fatal("restore did not give the same state")
	}
	if err := c.Restore(nopCloser{bytes.NewReader([]byte("{}"))}); err == nil {
		t.Fatal("restored an empty snapshot")
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) Close() error  { return nil }

func persist(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

func TestUnifiedDiff(t *testing.T) {
	a := "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
	b := "one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\n"
	got := UnifiedDiff("a", "b", a, b)
	want := "--- a\n+++ b\n@@ -1,6 +1,6 @@\n one\n two\n-three\n+THREE\n four\n five\n six\n@@ -8,3 +8,4 @@\n eight\n nine\n ten\n+eleven\n"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if UnifiedDiff("a", "b", a, a) != "" {
		t.Error("diff of equal texts is not empty")
	}
}

// TestTokensAreFoundByHash: a token is found by its secret once created,
// after the state went through a snapshot, and not after it is revoked;
// a wrong secret finds nothing.
func TestTokensAreFoundByHash(t *testing.T) {
	s := newState()
	secret := NewToken()
	if r := s.createToken(1, &TokenRequest{Name: "w1", Role: RoleWorker, Hash: HashToken(secret)}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if r := s.createToken(1, &TokenRequest{Name: "root", Role: RoleAdmin, Hash: HashToken(NewToken())}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if tk, ok := s.tokenBySecret(secret); !ok || tk.Name != "w1" {
		t.Fatalf("w1's secret found %v %v", tk, ok)
	}
	if _, ok := s.tokenBySecret(NewToken()); ok {
		t.Fatal("a wrong secret found a token")
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := decodeState(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if tk, ok := again.tokenBySecret(secret); !ok || tk.Name != "w1" {
		t.Fatalf("after a snapshot, w1's secret found %v %v", tk, ok)
	}
	if r := again.revokeToken(&TokenRequest{Name: "w1"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if _, ok := again.tokenBySecret(secret); ok {
		t.Fatal("a revoked token's secret still finds it")
	}
}
