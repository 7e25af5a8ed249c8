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
