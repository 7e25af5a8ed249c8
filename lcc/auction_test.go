package lcc

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestAuctionTwentyResponders runs the auction of LCC.md with 1 initiator
// and 20 responders on the in-memory transport: responders start on the
// first message, two never answer (the deadline path), five refuse, and the
// best of the rest wins.
func TestAuctionTwentyResponders(t *testing.T) {
	src := readFile(t, "testdata/auction.lcc")
	host := &auctionHost{refuse: map[string]bool{}, scores: map[string]float64{}}
	ids := []string{"h0"}
	for i := 1; i <= 20; i++ {
		id := fmt.Sprintf("h%d", i)
		ids = append(ids, id)
		host.peers = append(host.peers, id)
		host.scores[id] = float64(i) / 100
	}
	// h20 has the best score but never answers; h19 refuses; h18 wins.
	silent := []string{"h20", "h3"}
	for _, id := range []string{"h19", "h1", "h2", "h4", "h5"} {
		host.refuse[id] = true
	}
	reg := host.registry()
	prog := mustProgram(t, "auction", src, reg.Known())
	rec := &recorder{}
	c := newCluster(t, ids, reg, prog, rec)
	for _, id := range silent {
		c.tr.Silence(id)
	}
	h, err := c.nodes["h0"].Start(context.Background(), prog, "auction-1", A("overloaded"))
	if err != nil {
		t.Fatal(err)
	}
	if o := h.Wait(); o.Status != Closed {
		t.Fatalf("initiator: %s: %s", o.Status, o.Reason)
	}
	// 1 initiator + 18 responders that received the call for proposals.
	outs := outcomeMap(c.waitOutcomes(t, 19, 20*time.Second))
	for id, o := range outs {
		if o.Status != Closed {
			t.Errorf("%s: %s: %s", id, o.Status, o.Reason)
		}
	}
	for _, id := range silent {
		if _, ok := outs[id]; ok {
			t.Errorf("silent peer %s has an outcome", id)
		}
	}
	if got := host.migrated.Load(); got != 1 {
		t.Errorf("migrations = %d, want 1", got)
	}
	if len(host.reserved) != 1 || host.reserved[0] != "h18" {
		t.Errorf("reserved by %v, want [h18]", host.reserved)
	}
	if !rec.has(TraceSend, "h0 sends award(vm1, 2048) to h18") {
		t.Errorf("no award to h18 in trace:\n%v", rec.lines(TraceSend))
	}
	// every bidder that lost was told so; refusers too are told nothing
	for i := 6; i <= 17; i++ {
		if i == 3 {
			continue
		}
		if !rec.has(TraceSend, fmt.Sprintf("h0 sends lost(vm1) to h%d", i)) {
			t.Errorf("h%d was not told it lost", i)
		}
	}
	if rec.has(TraceSend, "lost(vm1) to h19") {
		t.Errorf("refuser h19 was told it lost; it never bid")
	}
}

// TestAuctionNobodyBids: every peer refuses; the initiator closes through
// the Bids == [] alternative after the collection deadline.
func TestAuctionNobodyBids(t *testing.T) {
	src := readFile(t, "testdata/auction_counted.lcc")
	host := &auctionHost{peers: []string{"p1", "p2", "p3"}, refuse: map[string]bool{"p1": true, "p2": true, "p3": true}}
	reg := host.registry()
	prog := mustProgram(t, "auction", src, reg.Known())
	c := newCluster(t, []string{"o", "p1", "p2", "p3"}, reg, prog, nil)
	h, err := c.nodes["o"].Start(context.Background(), prog, "i", A("overloaded"))
	if err != nil {
		t.Fatal(err)
	}
	if o := h.Wait(); o.Status != Closed {
		t.Fatalf("initiator: %s: %s", o.Status, o.Reason)
	}
	if host.migrated.Load() != 0 {
		t.Fatal("migrated with no bids")
	}
	for id, o := range outcomeMap(c.waitOutcomes(t, 4, 10*time.Second)) {
		if o.Status != Closed {
			t.Errorf("%s: %s: %s", id, o.Status, o.Reason)
		}
	}
}
