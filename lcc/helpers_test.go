package lcc

import (
	"context"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stripPos returns a deep copy of v with every Pos zeroed and the File and
// Comments of a Model dropped, so that ASTs compare by structure.
func stripPos(v any) any {
	rv := reflect.ValueOf(v)
	out := reflect.New(rv.Type()).Elem()
	copyStrip(out, rv)
	return out.Interface()
}

var posType = reflect.TypeOf(Pos(0))

func copyStrip(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		if src.Type() == reflect.TypeOf(&File{}) {
			return
		}
		n := reflect.New(src.Elem().Type())
		copyStrip(n.Elem(), src.Elem())
		dst.Set(n)
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		e := src.Elem()
		n := reflect.New(e.Type()).Elem()
		copyStrip(n, e)
		dst.Set(n)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		if src.Type() == reflect.TypeOf([]Comment{}) {
			return
		}
		n := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			copyStrip(n.Index(i), src.Index(i))
		}
		dst.Set(n)
	case reflect.Struct:
		for i := 0; i < src.NumField(); i++ {
			if !dst.Field(i).CanSet() {
				continue
			}
			if src.Field(i).Type() == posType {
				continue
			}
			copyStrip(dst.Field(i), src.Field(i))
		}
	case reflect.Map:
		// no maps in the AST
	default:
		dst.Set(src)
	}
}

func mustParse(t testing.TB, name, src string) *Model {
	t.Helper()
	m, errs := Parse(name, []byte(src))
	if errs.HasErrors() {
		t.Fatalf("parse %s: %v", name, errs)
	}
	return m
}

func mustProgram(t testing.TB, name, src string, known Known) *Program {
	t.Helper()
	p, diags, err := Compile(name, []byte(src), PolicyRef{Name: name, Version: 1}, known)
	if err != nil {
		t.Fatalf("compile %s: %v", name, diags)
	}
	return p
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// auctionHost stands in for the worker's constraint library: small Go
// functions with the names the auction model calls.
type auctionHost struct {
	peers    []string
	refuse   map[string]bool // peers whose fits/1 fails
	scores   map[string]float64
	migrated atomic.Int64
	mu       sync.Mutex
	reserved []string
}

func (h *auctionHost) registry() *Registry {
	r := NewRegistry()
	r.MustRegister("pick_vm", 2, "VM to move and its demand", func(_ context.Context, g *Goal) (bool, error) {
		return g.Unify(0, A("vm1")) && g.Unify(1, I(2048)), nil
	})
	r.MustRegister("peers", 2, "live peers playing a role", func(_ context.Context, g *Goal) (bool, error) {
		ts := make([]Term, len(h.peers))
		for i, p := range h.peers {
			ts[i] = A(p)
		}
		return g.Unify(1, L(ts...)), nil
	})
	r.MustRegister("best", 3, "best bid and the losers", func(_ context.Context, g *Goal) (bool, error) {
		bids, ok := ListElems(g.Arg(0))
		if !ok || len(bids) == 0 {
			return false, nil
		}
		bestI, bestS := -1, -1.0
		for i, b := range bids {
			c := Deref(b).(*Compound)
			s, _ := number(c.Args[1])
			if s > bestS {
				bestI, bestS = i, s
			}
		}
		var losers []Term
		for i, b := range bids {
			if i != bestI {
				losers = append(losers, Deref(b).(*Compound).Args[0])
			}
		}
		return g.Unify(1, Deref(bids[bestI]).(*Compound).Args[0]) && g.Unify(2, L(losers...)), nil
	})
	r.MustRegister("migrate", 3, "move the VM", func(_ context.Context, g *Goal) (bool, error) {
		h.migrated.Add(1)
		return true, nil
	})
	r.MustRegister("fits", 1, "the VM fits here", func(_ context.Context, g *Goal) (bool, error) {
		return !h.refuse[g.Agent], nil
	})
	r.MustRegister("score", 2, "bid score from this host's load", func(_ context.Context, g *Goal) (bool, error) {
		return g.Unify(1, F(h.scores[g.Agent])), nil
	})
	r.MustRegister("reserve", 3, "reserve capacity", func(_ context.Context, g *Goal) (bool, error) {
		h.mu.Lock()
		h.reserved = append(h.reserved, g.Agent)
		h.mu.Unlock()
		return g.Unify(2, C("lease", A(g.Agent))), nil
	})
	return r
}

// cluster is a set of nodes on one MemTransport.
type cluster struct {
	tr    *MemTransport
	nodes map[string]*Node
	mu    sync.Mutex
	outs  []Outcome
}

func newCluster(t testing.TB, ids []string, reg *Registry, prog *Program, tracer Tracer) *cluster {
	c := &cluster{tr: NewMemTransport(), nodes: map[string]*Node{}}
	for _, id := range ids {
		n := NewNode(NodeConfig{ID: id, Transport: c.tr, Registry: reg, Tracer: tracer, ResponderTimeout: time.Minute,
			OnOutcome: func(o Outcome) { c.mu.Lock(); c.outs = append(c.outs, o); c.mu.Unlock() }})
		n.AddProgram(prog)
		c.nodes[id] = n
		c.tr.Add(n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Close()
		}
	})
	return c
}

// waitOutcomes waits until n outcomes are in, or fails the test.
func (c *cluster) waitOutcomes(t testing.TB, n int, timeout time.Duration) []Outcome {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		got := len(c.outs)
		c.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d outcomes after %v", got, n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]Outcome(nil), c.outs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out
}

func outcomeMap(outs []Outcome) map[string]Outcome {
	m := map[string]Outcome{}
	for _, o := range outs {
		m[o.Agent] = o
	}
	return m
}

// recorder keeps trace events for assertions.
type recorder struct {
	mu     sync.Mutex
	events []TraceEvent
}

func (r *recorder) Trace(e TraceEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) lines(kind TraceKind) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e.String())
		}
	}
	return out
}

func (r *recorder) has(kind TraceKind, substr string) bool {
	for _, l := range r.lines(kind) {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}
