package lcc

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestNodeBounds: a node refuses, with ErrOverloaded, a message that would
// start more responders than one peer may start or than the node may run,
// or fill a mailbox past its bound; what it refused leaves nothing behind.
func TestNodeBounds(t *testing.T) {
	src := `r(asker, initial)
r(waiter, necessary)
a(asker, A) :: q => a(waiter, w).
a(waiter, W) :: never <= a(asker, A) within 30 or q <= a(asker, A) within 30.`
	prog := mustProgram(t, "b", src, nil)
	node := NewNode(NodeConfig{ID: "w", MaxPerPeer: 2, MaxInstances: 3, MaxMailbox: 2})
	defer node.Close()
	node.AddProgram(prog)
	ctx := context.Background()
	msg := func(iid, from string) Message {
		return Message{Interaction: iid, Policy: prog.Ref, FromID: from, FromRole: A("asker"), ToID: "w", ToRole: A("waiter"), Body: A("x")}
	}
	for i, c := range []struct {
		iid, from string
		ok        bool
	}{
		{"i1", "p", true}, {"i2", "p", true}, {"i3", "p", false}, // two responders per peer
		{"i3", "q", true}, {"i4", "r", false}, // three in all
		{"i1", "p", true}, {"i1", "p", false}, // the mailbox of i1 holds two: the first x, then this one
	} {
		err := node.Deliver(ctx, msg(c.iid, c.from))
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrOverloaded)) {
			t.Errorf("step %d (%s from %s): err %v, want ok=%v", i, c.iid, c.from, err, c.ok)
		}
	}
	node.mu.Lock()
	running, byP := len(node.inst), fmt.Sprint(node.byPeer)
	node.mu.Unlock()
	if running != 3 || byP != "map[p:2 q:1]" {
		t.Fatalf("running %d, by peer %s", running, byP)
	}
	// when responders end, their peer may start others
	node.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		node.mu.Lock()
		n := len(node.byPeer)
		node.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("ended responders are still counted against their peers")
}

// TestQueuedTermsBound: the term nodes of all waiting messages are bounded
// across the node, so a few huge messages cannot hold more memory than
// many small ones; taking a message frees its share.
func TestQueuedTermsBound(t *testing.T) {
	src := `r(asker, initial)
r(waiter, necessary)
a(asker, A) :: q(L) => a(waiter, w) <- L = [1].
a(waiter, W) :: q(L) <= a(asker, A) within 30 then q(M) <= a(asker, A) within 30.`
	prog := mustProgram(t, "q", src, nil)
	node := NewNode(NodeConfig{ID: "w", MaxQueuedTerms: 2000})
	defer node.Close()
	node.AddProgram(prog)
	big := make([]Term, 600)
	for i := range big {
		big[i] = I(int64(i))
	}
	msg := func(iid string, l Term) Message {
		return Message{Interaction: iid, Policy: prog.Ref, FromID: "p", FromRole: A("asker"), ToID: "w", ToRole: A("waiter"), Body: C("nope", l)}
	}
	ctx := context.Background()
	if err := node.Deliver(ctx, msg("i1", L(big...))); err != nil {
		t.Fatalf("first large message: %v", err)
	}
	if err := node.Deliver(ctx, msg("i2", L(big...))); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("a second large message must be refused: %v", err)
	}
	if err := node.Deliver(ctx, msg("i3", L(I(1)))); err != nil {
		t.Fatalf("a small message still fits: %v", err)
	}
	if q := node.queued.Load(); q < 1200 || q > 1300 {
		// 600 list cells, 600 integers, the nil, the compound, the roles
		t.Fatalf("queued %d term nodes, want about 1,210", q)
	}
	node.Close()
	deadline := time.Now().Add(5 * time.Second)
	for node.queued.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if q := node.queued.Load(); q != 0 {
		t.Fatalf("after every agent ended, %d term nodes are still counted", q)
	}
}
