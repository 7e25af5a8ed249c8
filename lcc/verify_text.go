package lcc

import (
	"fmt"
	"io"
	"strings"
)

// String describes one event of a run, as a counterexample prints it:
// h2 (underloaded) receives award(vm1, 2, 4) from h1 [balance.lcc:37:14].
func (e VerifyEvent) String() string {
	var what string
	switch e.Kind {
	case "send":
		what = fmt.Sprintf("sends %s to %s", e.Text, e.Peer)
	case "receive":
		what = fmt.Sprintf("receives %s from %s", e.Text, e.Peer)
	case "call":
		what = "solves " + e.Text
	case "fail":
		what = "finds " + e.Text + " false"
	case "role":
		what = "takes on " + e.Text
	case "expire":
		what = "stops waiting for " + e.Text + ": its deadline passed"
	case "end":
		what = "ends: " + e.Text
	default:
		what = e.Kind + " " + e.Text
	}
	s := fmt.Sprintf("%s (%s) %s", e.Agent, e.Role, what)
	if e.Where != "" {
		s += " [" + e.Where + "]"
	}
	return s
}

// WriteSteps prints a counterexample as numbered events, each
// transition's new bindings under its last event.
func WriteSteps(w io.Writer, steps []TraceStep, indent string) {
	n := 0
	for _, st := range steps {
		for _, e := range st.Events {
			n++
			fmt.Fprintf(w, "%s%3d. %s\n", indent, n, e)
		}
		if len(st.Bindings) > 0 {
			fmt.Fprintf(w, "%s       %s\n", indent, strings.Join(st.Bindings, ", "))
		}
	}
}

// WriteText prints a report for people.
func (r *VerifyReport) WriteText(w io.Writer, name string) {
	fmt.Fprintf(w, "verify %s: %s; timeouts %s", name, strings.Join(r.Agents, ", "), r.Timeouts)
	if len(r.Symmetry) > 0 {
		fmt.Fprintf(w, "; symmetry among %s", strings.Join(r.Symmetry, "; "))
	}
	fmt.Fprintln(w)
	kinds := map[string]bool{}
	for _, f := range r.Findings {
		kinds[f.Kind] = true
		fmt.Fprintf(w, "\n%s: %s\n", f.Severity, f.Summary)
		if len(f.Steps) > 0 {
			fmt.Fprintf(w, "  shortest counterexample, %d transitions:\n", len(f.Steps))
			WriteSteps(w, f.Steps, "  ")
		}
	}
	fmt.Fprintln(w)
	if !kinds["deadlock"] {
		fmt.Fprintln(w, "no deadlock")
	}
	if !kinds["lost_message"] && !kinds["late_message"] {
		fmt.Fprintln(w, "no unconsumed message")
	}
	if !kinds["error"] {
		fmt.Fprintln(w, "no model error (unknown constraint, unbound send, send to no agent)")
	}
	for _, p := range r.Properties {
		verdict := "holds"
		if !p.Holds {
			verdict = "VIOLATED"
		}
		fmt.Fprintf(w, "property %s (%s): %s\n", p.Name, p.Kind, verdict)
	}
	how := "complete"
	if !r.Complete {
		how = "bounded (not a proof)"
	}
	fmt.Fprintf(w, "%s: %d states, %d transitions, depth %d, %d end states, %.2f s, %.0f states/s\n",
		how, r.States, r.Transitions, r.Depth, r.EndStates, r.Seconds, r.StatesPerSec)
	if len(r.Unreached) > 0 {
		fmt.Fprintf(w, "never reached: %s\n", strings.Join(r.Unreached, ", "))
	}
}

// WriteMSC prints a counterexample as a message sequence chart: a lane
// per agent, an arrow per message, and local steps marked on their lane
// with what happened on the right.
func WriteMSC(w io.Writer, steps []TraceStep, lanes []string) {
	width := 12
	for _, l := range lanes {
		if len(l)+2 > width {
			width = len(l) + 2
		}
	}
	col := map[string]int{}
	var head strings.Builder
	for i, l := range lanes {
		col[l] = i*width + width/2
		pad := width/2 - len(l)/2
		head.WriteString(strings.Repeat(" ", pad) + l + strings.Repeat(" ", width-pad-len(l)))
	}
	fmt.Fprintln(w, strings.TrimRight(head.String(), " "))
	row := func() []byte {
		b := []byte(strings.Repeat(" ", width*len(lanes)))
		for _, c := range col {
			b[c] = '|'
		}
		return b
	}
	print := func(b []byte, note string) {
		fmt.Fprintf(w, "%s  %s\n", strings.TrimRight(string(b), " "), note)
	}
	for _, st := range steps {
		for _, e := range st.Events {
			b := row()
			a, ok := col[e.Agent]
			if !ok {
				continue
			}
			switch e.Kind {
			case "send":
				p, ok := col[e.Peer]
				if !ok {
					b[a] = '*'
					print(b, e.String())
					continue
				}
				lo, hi := a, p
				if lo > hi {
					lo, hi = hi, lo
				}
				for i := lo + 1; i < hi; i++ {
					b[i] = '-'
				}
				if p > a {
					b[p-1] = '>'
				} else {
					b[p+1] = '<'
				}
				print(b, e.Text)
			case "receive":
				b[a] = 'o'
				print(b, e.Agent+" takes "+e.Text)
			default:
				b[a] = '*'
				print(b, e.String())
			}
		}
	}
}
