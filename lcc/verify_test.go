package lcc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// verifyCase is a model of testdata/verify with its header:
//
//	// verify: --agent ROLE=ID ... [--timeouts any|quiescent] [--bound N]
//	// expect: ok | KIND[ PROPERTY] SEVERITY STEPS
type verifyCase struct {
	path     string
	cfg      VerifyConfig
	expect   string
	kind     string
	property string
	severity string
	steps    int
}

func loadVerifyCase(t *testing.T, path string) verifyCase {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := verifyCase{path: path, cfg: VerifyConfig{Symmetry: true}}
	for _, line := range strings.Split(string(src), "\n") {
		if v, ok := strings.CutPrefix(line, "// verify:"); ok {
			f := strings.Fields(v)
			for i := 0; i+1 < len(f); i += 2 {
				switch f[i] {
				case "--agent":
					role, id, _ := strings.Cut(f[i+1], "=")
					c.cfg.Agents = append(c.cfg.Agents, AgentSpec{Role: A(role), ID: id})
				case "--timeouts":
					c.cfg.Timeouts = f[i+1]
				case "--bound":
					c.cfg.Bound, _ = strconv.Atoi(f[i+1])
				default:
					t.Fatalf("%s: unknown verify option %s", path, f[i])
				}
			}
		}
		if v, ok := strings.CutPrefix(line, "// expect:"); ok {
			c.expect = strings.TrimSpace(v)
		}
	}
	if c.expect == "" || len(c.cfg.Agents) == 0 {
		t.Fatalf("%s: needs // verify: and // expect: lines", path)
	}
	if c.expect != "ok" {
		f := strings.Fields(c.expect)
		c.kind = f[0]
		if c.kind == "property" {
			c.property, f = f[1], f[1:]
		}
		c.severity = f[1]
		c.steps, _ = strconv.Atoi(f[2])
	}
	m, errs := Parse(path, src)
	if errs.HasErrors() {
		t.Fatalf("%s: %v", path, errs)
	}
	c.cfg.Program = NewProgram(m, PolicyRef{Name: filepath.Base(path)})
	dsrc, _ := os.ReadFile("testdata/verify/test.domain")
	if c.cfg.Domain, err = ParseDomain("test.domain", dsrc); err != nil {
		t.Fatal(err)
	}
	psrc, _ := os.ReadFile("testdata/verify/test.props")
	if c.cfg.Properties, err = ParseProperties("test.props", psrc); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVerifyModels runs the known-bad models, each of which must be caught
// with the right verdict and a shortest counterexample that replays
// through the machine to the same end, and the known-good ones, which
// must pass complete.
func TestVerifyModels(t *testing.T) {
	files, _ := filepath.Glob("testdata/verify/*.lcc")
	if len(files) < 16 {
		t.Fatalf("want the 16 verify models, found %d", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c := loadVerifyCase(t, path)
			r, err := Verify(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.expect == "ok" {
				if r.Errors() > 0 || !r.Complete {
					t.Fatalf("a known-good model fails (complete %v): %+v", r.Complete, r.Findings[0])
				}
				return
			}
			var f *Finding
			for _, x := range r.Findings {
				if x.Kind == c.kind && x.Property == c.property {
					f = x
				}
			}
			if f == nil {
				var got []string
				for _, x := range r.Findings {
					got = append(got, x.Kind+" "+x.Property+": "+x.Summary)
				}
				t.Fatalf("want a %s %s finding, got %q", c.kind, c.property, got)
			}
			if f.Severity != c.severity || len(f.Steps) != c.steps {
				t.Fatalf("%s: severity %s with %d steps, want %s with %d\n%s", f.Summary, f.Severity, len(f.Steps), c.severity, c.steps, stepsText(f.Steps))
			}
			if c.severity == "error" && r.Errors() == 0 {
				t.Fatal("an error finding is not counted as one")
			}
			if len(f.Steps) == 0 {
				return
			}
			res, err := Replay(c.cfg, f.Steps)
			if err != nil {
				t.Fatalf("the counterexample does not replay: %v", err)
			}
			switch c.kind {
			case "deadlock":
				if res.Deadlock == "" {
					t.Fatalf("the replay does not end in a deadlock: %+v", res.Outcomes)
				}
			case "lost_message", "late_message":
				if len(res.Leftover) == 0 {
					t.Fatal("the replay ends with no message left over")
				}
			case "error":
				broken := false
				for _, o := range res.Outcomes {
					broken = broken || o.Status == Failed && o.Reason != "still running"
				}
				if !broken {
					t.Fatalf("the replay ends with no agent failed: %+v", res.Outcomes)
				}
			}
		})
	}
}

func stepsText(steps []TraceStep) string {
	var b strings.Builder
	WriteSteps(&b, steps, "  ")
	return b.String()
}

// TestVerifyAgreesWithInterpreter runs each conformance case through the
// interpreter (RunLocal, real goroutines and clocks) and through the
// verifier's machine: how the interpreter's agents ended must be one of
// the ends the machine finds. The machine shares the interpreter's
// helpers but not its control flow, so this checks the two agree.
func TestVerifyAgreesWithInterpreter(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "conformance", "*.lcc"))
	checked := 0
	for _, path := range files {
		src, _ := os.ReadFile(path)
		c := readCase(t, path, src)
		if !strings.HasPrefix(c.expect, "run ") {
			continue
		}
		m, errs := Parse(path, src)
		if errs.HasErrors() {
			t.Fatal(errs)
		}
		prog := NewProgram(m, PolicyRef{Name: filepath.Base(path)})
		r, err := Verify(VerifyConfig{Program: prog, Agents: c.agents, Timeouts: "quiescent", Bound: 400, MaxStates: 200_000})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Complete {
			t.Logf("%s: bounded (%d states), not compared", path, r.States)
			continue
		}
		outs, err := RunLocal(context.Background(), LocalConfig{Program: prog, Agents: c.agents, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := range c.agents {
			st := map[Status]string{Closed: "closed", Failed: "failed", TimedOut: "timed_out"}[outs[i].Status]
			got = append(got, outs[i].Agent+":"+st)
		}
		if e := strings.Join(got, " "); !slices.Contains(r.Ends, e) {
			t.Errorf("%s: the interpreter ended %q; the machine's ends are %q", path, e, r.Ends)
		}
		checked++
	}
	if checked < 8 {
		t.Fatalf("compared only %d cases", checked)
	}
}

// TestCounterexamplesThroughInterpreter replays the counterexamples that
// need no deadline to pass through the interpreter itself (RunLocal: real
// goroutines and mailboxes), its constraints answering as the
// counterexample says, and checks the interpreter comes to the same end:
// the waiting agents of a deadlock time out, a model error fails the same
// agent for the same reason, a double award sends both awards.
func TestCounterexamplesThroughInterpreter(t *testing.T) {
	files, _ := filepath.Glob("testdata/verify/*.lcc")
	replayed := 0
	for _, path := range files {
		c := loadVerifyCase(t, path)
		if c.expect == "ok" {
			continue
		}
		r, err := Verify(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var f *Finding
		for _, x := range r.Findings {
			if x.Kind == c.kind && x.Property == c.property {
				f = x
			}
		}
		timed := false
		answers := map[string][]VerifyEvent{}
		for _, st := range f.Steps {
			for _, e := range st.Events {
				timed = timed || e.Kind == "expire"
				if e.Kind == "call" || e.Kind == "fail" {
					answers[e.Agent] = append(answers[e.Agent], e)
				}
			}
		}
		if timed || len(f.Steps) == 0 && c.kind != "deadlock" {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			reg := NewRegistry()
			var mu sync.Mutex
			for _, key := range c.cfg.Domain.Keys() {
				name, arity, _ := strings.Cut(key, "/")
				n, _ := strconv.Atoi(arity)
				reg.MustRegister(name, n, "as the counterexample says", func(_ context.Context, g *Goal) (bool, error) {
					mu.Lock()
					defer mu.Unlock()
					q := answers[g.Agent]
					for i, e := range q {
						if fn, _, _ := Functor(e.Term); fn != name {
							continue
						}
						answers[g.Agent] = append(q[:i:i], q[i+1:]...)
						if e.Kind == "fail" {
							return false, nil
						}
						if c, ok := e.Term.(*Compound); ok {
							for j := range g.Args {
								if !g.Unify(j, c.Args[j]) {
									return false, nil
								}
							}
						}
						return true, nil
					}
					return false, nil
				})
			}
			var sends []string
			tracer := TracerFunc(func(e TraceEvent) {
				if e.Kind == TraceSend {
					mu.Lock()
					sends = append(sends, e.Agent+">"+e.Peer+":"+e.Term)
					mu.Unlock()
				}
			})
			outs, err := RunLocal(context.Background(), LocalConfig{Program: c.cfg.Program, Agents: c.cfg.Agents, Registry: reg, Tracer: tracer, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			switch c.kind {
			case "deadlock":
				stuck := false
				for _, o := range outs {
					stuck = stuck || o.Status == TimedOut
				}
				if !stuck {
					t.Errorf("the interpreter did not wait for ever: %+v", outs)
				}
			case "error":
				failed := false
				for _, o := range outs {
					failed = failed || o.Status == Failed && (strings.Contains(o.Reason, "unbound variable") || strings.Contains(o.Reason, "unreachable"))
				}
				if !failed {
					t.Errorf("the interpreter did not fail the same way: %+v", outs)
				}
			case "property":
				if c.property == "double_award" {
					mu.Lock()
					n := strings.Count(strings.Join(sends, "\n"), ":award(")
					mu.Unlock()
					if n < 2 {
						t.Errorf("the interpreter did not award twice: %q", sends)
					}
				}
			}
			replayed++
		})
	}
	if replayed < 5 {
		t.Fatalf("only %d counterexamples went through the interpreter", replayed)
	}
}
