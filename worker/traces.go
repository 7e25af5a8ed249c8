package worker

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore/pki"
)

// A worker keeps the traces of its last interactions (bounded: at most
// maxTraces interactions of at most maxTraceEvents steps each) and serves
// them to readers with a certificate of the cluster's CA, so that 'parley
// trace' can put one negotiation's pieces together from every worker that
// took part.
const (
	maxTraces      = 128
	maxTraceEvents = 512
)

// TraceStep is one step of an interaction as a worker saw it.
type TraceStep struct {
	Time        time.Time `json:"time"`
	Interaction string    `json:"interaction"`
	Policy      string    `json:"policy"`
	Agent       string    `json:"agent"`
	Role        string    `json:"role"`
	Kind        string    `json:"kind"`
	Peer        string    `json:"peer,omitempty"`
	Term        string    `json:"term,omitempty"`
}

type traceBook struct {
	mu    sync.Mutex
	order []string // interactions, oldest first
	steps map[string][]TraceStep
}

func newTraceBook() *traceBook { return &traceBook{steps: map[string][]TraceStep{}} }

func (b *traceBook) add(e lcc.TraceEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.steps[e.Interaction]
	if !ok {
		b.order = append(b.order, e.Interaction)
		for len(b.order) > maxTraces {
			delete(b.steps, b.order[0])
			b.order = b.order[1:]
		}
	}
	if len(s) >= maxTraceEvents {
		return
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.steps[e.Interaction] = append(s, TraceStep{Time: t, Interaction: e.Interaction, Policy: e.Policy.String(), Agent: e.Agent,
		Role: e.Role, Kind: string(e.Kind), Peer: e.Peer, Term: e.Term})
}

func (b *traceBook) get(id string) ([]TraceStep, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.steps[id]
	return append([]TraceStep(nil), s...), ok
}

func (b *traceBook) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]string(nil), b.order...)
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// handleTraces serves GET /v1/traces (the interactions kept) and GET
// /v1/traces/{interaction}. With TLS, the reader needs a certificate of
// the cluster's CA.
func (w *Worker) handleTraces(rw http.ResponseWriter, r *http.Request) {
	if w.traces == nil {
		httpError(rw, http.StatusNotFound, "no traces")
		return
	}
	if w.cfg.TLS != nil && pki.PeerName(r.TLS) == "" {
		httpError(rw, http.StatusUnauthorized, "traces are served to readers with a certificate of the cluster's CA")
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	id := r.PathValue("interaction")
	if id == "" {
		writeJSONTo(rw, w.traces.list())
		return
	}
	steps, ok := w.traces.get(id)
	if !ok {
		httpError(rw, http.StatusNotFound, "worker %s has no trace of interaction %s (it keeps its last %d)", w.cfg.ID, id, maxTraces)
		return
	}
	writeJSONTo(rw, steps)
}

func writeJSONTo(rw http.ResponseWriter, v any) {
	json.NewEncoder(rw).Encode(v) // a reader gone mid-answer is not the worker's error
}
