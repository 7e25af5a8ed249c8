package raftstore

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"
)

// TestBlockingQueryOnTheActivePolicy: a blocking query answers at once
// when the caller's version is not the active one, waits while it is,
// answers as soon as a push changes it (on a follower too, from its own
// state), and answers with the same version when the wait is over.
func TestBlockingQueryOnTheActivePolicy(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t)
	lead := c.waitLeader()
	if _, err := c.client.Push(ctx, PushRequest{Name: "p", Text: okPolicy}); err != nil {
		t.Fatal(err)
	}
	v1, err := c.client.ActivePolicy(ctx, "p", false)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.client.WaitActivePolicy(ctx, "p", "", 5*time.Second); err != nil || v.SHA256 != v1.SHA256 {
		t.Fatalf("a caller without the version waited or got %v, %v", v, err)
	}
	start := time.Now()
	if v, err := c.client.WaitActivePolicy(ctx, "p", v1.SHA256, 300*time.Millisecond); err != nil || v.SHA256 != v1.SHA256 || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("an unchanged policy: %v %v after %v, want v1 after the wait", v, err, time.Since(start))
	}
	follower := (lead + 1) % 3
	fc, err := testClient(t, []string{c.cfgs[follower].HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		v       *PolicyVersion
		err     error
		elapsed time.Duration
	}
	got := make(chan answer, 1)
	start = time.Now()
	go func() {
		v, err := fc.WaitActivePolicy(context.Background(), "p", v1.SHA256, 8*time.Second)
		got <- answer{v, err, time.Since(start)}
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case a := <-got:
		t.Fatalf("the query answered before any change: %+v", a)
	default:
	}
	if _, err := c.client.Push(ctx, PushRequest{Name: "p", Text: okPolicy + "// v2\n"}); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil || a.v.Version != 2 || a.elapsed > 4*time.Second {
		t.Fatalf("after a push the follower answered %+v after %v, want v2 at once", a.v, a.elapsed)
	}
	for _, bad := range []string{"forever", "2h", "-1s"} {
		resp, err := testHTTP(t).Get("https://" + c.cfgs[lead].HTTPAddr + "/v1/policies/p?wait=" + bad)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("wait=%s: %v %v, want 400", bad, resp, err)
		}
		resp.Body.Close()
	}
}

// TestOnlyPolicyWritesWakeBlockingQueries: the channel blocking queries
// wait on is closed by a push (and an activation, a restore), not by the
// lease, heartbeat and journal writes that make up nearly all applies.
func TestOnlyPolicyWritesWakeBlockingQueries(t *testing.T) {
	f := NewFSM(zerolog.Nop())
	index := uint64(0)
	apply := func(typ string, body any) {
		t.Helper()
		data, err := encodeCommand(typ, "", "", time.Now().UnixNano(), body)
		if err != nil {
			t.Fatal(err)
		}
		index++
		if r, ok := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(*Result); !ok || r.Error != nil {
			t.Fatalf("%s: %+v", typ, r)
		}
	}
	woken := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := f.changes()
	apply(cmdAcquire, AcquireRequest{Holder: "w", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/a"}}})
	apply(cmdHeartbeat, HeartbeatRequest{ID: "w", Host: "h", Addr: "127.0.0.1:1"})
	apply(cmdJournal, JournalRequest{Entries: []JournalEntry{{Kind: "negotiation"}}})
	if woken(ch) {
		t.Fatal("a lease, a heartbeat or a journal write woke the blocking queries")
	}
	apply(cmdPush, PushRequest{Name: "p", Text: okPolicy})
	if !woken(ch) {
		t.Fatal("a push did not wake the blocking queries")
	}
	ch = f.changes()
	apply(cmdActivate, ActivateRequest{Name: "p", Version: 1})
	if !woken(ch) {
		t.Fatal("an activation did not wake the blocking queries")
	}
}
