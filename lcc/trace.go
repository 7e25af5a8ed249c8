package lcc

import (
	"fmt"
	"time"
)

// TraceKind names what a TraceEvent records.
type TraceKind string

const (
	TraceSend       TraceKind = "send"
	TraceReceive    TraceKind = "receive"
	TraceConstraint TraceKind = "constraint"
	TraceRole       TraceKind = "role"
	TraceTimeout    TraceKind = "timeout"
	TraceDrop       TraceKind = "drop"
	TraceOutcome    TraceKind = "outcome"
)

// TraceEvent is one step an agent took.
type TraceEvent struct {
	Time        time.Time
	Interaction string
	Policy      PolicyRef
	Agent       string
	Role        string // the role being played, printed
	Kind        TraceKind
	Peer        string // the other agent of a send or receive
	Term        string // the message, the solved condition, or the role taken on
}

func (e TraceEvent) String() string {
	switch e.Kind {
	case TraceSend:
		return fmt.Sprintf("%s sends %s to %s", e.Agent, e.Term, e.Peer)
	case TraceReceive:
		return fmt.Sprintf("%s receives %s from %s", e.Agent, e.Term, e.Peer)
	case TraceConstraint:
		return fmt.Sprintf("%s solves %s", e.Agent, e.Term)
	case TraceRole:
		return fmt.Sprintf("%s takes on %s", e.Agent, e.Term)
	case TraceTimeout:
		return fmt.Sprintf("%s: deadline passed waiting for %s", e.Agent, e.Term)
	case TraceDrop:
		return fmt.Sprintf("%s drops %s from %s", e.Agent, e.Term, e.Peer)
	}
	return fmt.Sprintf("%s %s: %s", e.Agent, e.Kind, e.Term)
}

// Tracer sees every step. It is called from agent goroutines and must be
// safe for concurrent use.
type Tracer interface{ Trace(TraceEvent) }

// TracerFunc adapts a function to Tracer.
type TracerFunc func(TraceEvent)

// Trace implements Tracer.
func (f TracerFunc) Trace(e TraceEvent) { f(e) }
