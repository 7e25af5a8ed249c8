package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/parleyhq/parley/lcc"
)

// table prints aligned columns for people.
type table struct{ w *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{w: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(headers...)
	return t
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() { t.w.Flush() }

// writeJSON prints v as indented JSON for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lockedTracer serialises trace output from concurrent agents.
type lockedTracer struct {
	mu sync.Mutex
	t  lcc.Tracer
}

func (l *lockedTracer) Trace(e lcc.TraceEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Trace(e)
}
