package worker

import (
	"fmt"
	"net/http"
	"sync"
)

// Bounds on what peers can make a worker hold: interactions running at
// once, responders started by one peer, messages waiting in one
// interaction, and the term nodes of all waiting messages. With messages
// of at most maxMessageBytes, what a flood can make a worker hold is
// bounded (TestFloodStaysWithinItsBound: under floodMemoryBound).
const (
	maxInteractions = 1024
	maxPerPeer      = 64 // a peer runs at most max_moves_per_cycle (at most 64) negotiations at once
	maxMailbox      = 256
	maxQueuedTerms  = 1 << 20
)

// counters counts events by label, for /metrics.
type counters struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *counters) add(label string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	c.m[label]++
}

func (c *counters) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// metrics writes the worker's counters in the Prometheus text format.
func (w *Worker) metrics(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(rw, "# HELP parley_worker_messages_refused_total LCC messages the worker refused, by reason.")
	fmt.Fprintln(rw, "# TYPE parley_worker_messages_refused_total counter")
	snap := w.refused.snapshot()
	// every reason handleMessage counts, listed even at zero
	for _, r := range []string{"bad_message", "forged", "misdirected", "overloaded", "policy_mismatch", "too_large", "unauthenticated", "unavailable", "unregistered"} {
		fmt.Fprintf(rw, "parley_worker_messages_refused_total{worker=%q,reason=%q} %d\n", w.cfg.ID, r, snap[r])
	}
	fmt.Fprintln(rw, "# HELP parley_worker_interactions Interactions this worker started that are running.")
	fmt.Fprintln(rw, "# TYPE parley_worker_interactions gauge")
	fmt.Fprintf(rw, "parley_worker_interactions{worker=%q} %d\n", w.cfg.ID, w.Initiated())
}
