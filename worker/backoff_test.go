package worker

import (
	"testing"
	"time"
)

// TestRelocationBackoff: a failed pair waits, longer after each failure in
// a row and never past the cap; a target rests after targetFailures
// failures in a row; a success clears both.
func TestRelocationBackoff(t *testing.T) {
	var b relocBackoff
	now := time.Unix(1_800_000_000, 0)
	d1 := b.failed("vm1", "h2", now)
	if d1 < relocBackoffBase*8/10 || d1 > relocBackoffBase*12/10 {
		t.Fatalf("first backoff %v, want about %v", d1, relocBackoffBase)
	}
	if w := b.waiting("vm1", "h2", now.Add(time.Second)); w.IsZero() {
		t.Fatal("a pair that just failed is not waiting")
	}
	if w := b.waiting("vm2", "h2", now); !w.IsZero() {
		t.Fatal("another VM waits for the same target after one failure")
	}
	d2 := b.failed("vm1", "h2", now)
	if d2 <= d1*12/10*8/10/2 || d2 < relocBackoffBase*2*8/10 {
		t.Fatalf("second backoff %v after %v: it should double", d2, d1)
	}
	if b.targetResting("h2", now) {
		t.Fatal("a target rests after 2 failures")
	}
	b.failed("vm3", "h2", now)
	if !b.targetResting("h2", now.Add(time.Second)) {
		t.Fatalf("a target does not rest after %d failures in a row", targetFailures)
	}
	for i := 0; i < 40; i++ {
		if d := b.failed("vm1", "h2", now); d > relocBackoffMax*12/10 {
			t.Fatalf("backoff %v past its cap %v", d, relocBackoffMax)
		}
	}
	b.succeeded("vm1", "h2")
	if !b.waiting("vm1", "h2", now).IsZero() || b.targetResting("h2", now) {
		t.Fatal("a success did not clear the backoff")
	}
}
