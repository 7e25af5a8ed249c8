package lcc

import (
	"math"
	"testing"
	"time"
)

// TestKnowledgeOfAnotherAgentFails: a constraint that only another agent's
// knowledge defines fails for this agent (no fact unifies), as LCC.md
// says; it is not an unknown constraint that fails the agent outright.
func TestKnowledgeOfAnotherAgentFails(t *testing.T) {
	src := `r(p, initial)
r(q, necessary)
a(p, P) :: null <- load(L) and L > 0.5 then go => a(q, q).
a(q, Q) :: go <= a(p, P) then ( null <- load(L) then null <- fail or null ).`
	outs, _ := runModel(t, src, "q=q p=p", nil, "p: load(0.9).")
	for _, id := range []string{"p", "q"} {
		if o := outs[id]; o.Status != Closed {
			t.Errorf("%s: %s (%s), want closed", id, o.Status, o.Reason)
		}
	}
}

// TestLongDeadlinesSaturate: within T waits for any T the dialect allows;
// one beyond what a duration holds saturates instead of having passed
// before it starts.
func TestLongDeadlinesSaturate(t *testing.T) {
	for _, within := range []string{"10000000000", "1.0e12", "ms(1.0e20)", "ms(9223372036854775807)"} {
		src := `r(p, initial)
r(q, necessary)
a(p, P) :: go => a(q, q).
a(q, Q) :: go <= a(p, P) within ` + within + `.`
		outs, _ := runModel(t, src, "q=q p=p", nil)
		if o := outs["q"]; o.Status != Closed {
			t.Errorf("within %s: %s (%s), want closed", within, o.Status, o.Reason)
		}
	}
	now := time.Now()
	if d := deadlineAfter(now, 1e30); d.Sub(now) < 200*365*24*time.Hour {
		t.Errorf("1e30 ns: deadline only %s away", d.Sub(now))
	}
	if d := deadlineAfter(now, -5); !d.Equal(now) {
		t.Errorf("a negative wait must have passed already: %s", d.Sub(now))
	}
	if d := deadlineAfter(now, math.Inf(1)); !d.After(now) {
		t.Error("+Inf must saturate")
	}
}
