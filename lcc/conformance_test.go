package lcc

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// conformanceCase is one file of ../shared/lcc-conformance, read from its
// header comments (see that folder's README).
type conformanceCase struct {
	agents    []AgentSpec
	knowledge map[string][]Term
	expect    string // "run ok", "run fail ID", "check error LINE"
	traces    []string
}

func readCase(t *testing.T, path string, src []byte) conformanceCase {
	t.Helper()
	c := conformanceCase{knowledge: map[string][]Term{}}
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "//") {
			continue
		}
		body := strings.TrimSpace(strings.TrimPrefix(line, "//"))
		switch {
		case strings.HasPrefix(body, "agents:"):
			for _, f := range strings.Fields(strings.TrimPrefix(body, "agents:")) {
				role, id, ok := strings.Cut(f, "=")
				if !ok {
					t.Fatalf("%s: bad agents entry %q", path, f)
				}
				rt, err := ParseTerm(role)
				if err != nil {
					t.Fatalf("%s: role %q: %v", path, role, err)
				}
				c.agents = append(c.agents, AgentSpec{Role: rt, ID: id})
			}
		case strings.HasPrefix(body, "knowledge "):
			rest := strings.TrimPrefix(body, "knowledge ")
			id, facts, ok := strings.Cut(rest, ":")
			if !ok {
				t.Fatalf("%s: bad knowledge line %q", path, body)
			}
			ts, err := ParseFacts(path+" knowledge", []byte(facts))
			if err != nil {
				t.Fatalf("%s: knowledge: %v", path, err)
			}
			c.knowledge[strings.TrimSpace(id)] = append(c.knowledge[strings.TrimSpace(id)], ts...)
		case strings.HasPrefix(body, "expect:"):
			c.expect = strings.Join(strings.Fields(strings.TrimPrefix(body, "expect:")), " ")
		case strings.HasPrefix(body, "trace:"):
			c.traces = append(c.traces, strings.TrimSpace(strings.TrimPrefix(body, "trace:")))
		}
	}
	for i := range c.agents {
		c.agents[i].Knowledge = c.knowledge[c.agents[i].ID]
	}
	if c.expect == "" {
		t.Fatalf("%s: no '// expect:' line", path)
	}
	return c
}

func runConformanceDir(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.lcc"))
	if len(files) == 0 {
		t.Fatalf("no .lcc cases in %s", dir)
	}
	sort.Strings(files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			runCase(t, path, src, readCase(t, path, src))
		})
	}
}

func runCase(t *testing.T, path string, src []byte, c conformanceCase) {
	m, perrs := Parse(path, src)
	if perrs.HasErrors() {
		t.Fatalf("parse: %v", perrs)
	}
	known := Known{}
	for _, facts := range c.knowledge {
		for _, f := range facts {
			name, arity, _ := Functor(f)
			known[keyOf(name, arity)] = ConstraintInfo{Name: name, Arity: arity}
		}
	}
	diags := Check(m, known)
	if strings.HasPrefix(c.expect, "check error ") {
		line, err := strconv.Atoi(strings.TrimPrefix(c.expect, "check error "))
		if err != nil {
			t.Fatalf("bad expect %q", c.expect)
		}
		for _, e := range diags.Errors() {
			if e.Pos.Line == line {
				return
			}
		}
		t.Fatalf("want a check error on line %d, got:\n%v", line, diags)
	}
	if diags.HasErrors() {
		t.Fatalf("check: %v", diags.Errors())
	}
	var mu sync.Mutex
	var sends []string
	tracer := TracerFunc(func(e TraceEvent) {
		if e.Kind == TraceSend {
			mu.Lock()
			sends = append(sends, e.Agent+" sends "+e.Term)
			mu.Unlock()
		}
	})
	prog := NewProgram(m, PolicyRef{Name: filepath.Base(path), Version: 1, Hash: HashSource(src)})
	outs, err := RunLocal(context.Background(), LocalConfig{Program: prog, Agents: c.agents, Tracer: tracer, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.expect == "run ok":
		for _, o := range outs {
			if o.Status != Closed {
				t.Errorf("agent %s (%s): %s: %s", o.Agent, o.Role, o.Status, o.Reason)
			}
		}
	case strings.HasPrefix(c.expect, "run fail "):
		id := strings.TrimPrefix(c.expect, "run fail ")
		found := false
		for _, o := range outs {
			if o.Agent == id {
				found = true
				if o.Status == Closed {
					t.Errorf("agent %s closed, want it to fail", id)
				}
			}
		}
		if !found {
			t.Errorf("no outcome for agent %s", id)
		}
	default:
		t.Fatalf("unknown expect %q", c.expect)
	}
	for _, want := range c.traces {
		id, msg, ok := strings.Cut(want, " sends ")
		if !ok {
			t.Fatalf("bad trace line %q", want)
		}
		mt, err := ParseTerm(msg)
		if err != nil {
			t.Fatalf("trace message %q: %v", msg, err)
		}
		line := id + " sends " + FormatTerm(mt)
		mu.Lock()
		got := strings.Join(sends, "\n")
		mu.Unlock()
		if !strings.Contains("\n"+got+"\n", "\n"+line+"\n") {
			t.Errorf("trace lacks %q; sends were:\n%s", line, got)
		}
	}
}

// TestConformance runs every case of ../shared/lcc-conformance (so that
// cases added there later are picked up).
func TestConformance(t *testing.T) {
	dir := os.Getenv("PARLEY_LCC_CONFORMANCE")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "lcc-conformance")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("conformance folder %s is absent (set PARLEY_LCC_CONFORMANCE to run it); the copy in testdata/conformance still runs in TestConformanceSnapshot", dir)
	}
	runConformanceDir(t, dir)
}

// TestConformanceSnapshot runs the copy of the cases kept in testdata, so
// that CI checks them even where the shared folder is absent.
func TestConformanceSnapshot(t *testing.T) {
	runConformanceDir(t, filepath.Join("testdata", "conformance"))
}
