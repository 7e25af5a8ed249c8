package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/worker"
)

func init() {
	register("lcc",
		command{"check", "check LCC files and print errors, then warnings", (*cli).lccCheck},
		command{"fmt", "print LCC files in canonical form, or rewrite them (-w)", (*cli).lccFmt},
		command{"run", "run agents of an LCC model in this process", (*cli).lccRun},
	)
}

// knownConstraints is what a policy may call besides builtins and its own
// facts: the workers' vocabulary plus any --constraint name/arity.
func knownConstraints(extra []string) (lcc.Known, error) {
	known := vocabularyKnown()
	for _, s := range extra {
		info, err := lcc.ParseConstraintSpec(s)
		if err != nil {
			return nil, err
		}
		known[info.Key()] = info
	}
	return known, nil
}

func (c *cli) printDiags(diags lcc.ErrorList) {
	for _, e := range diags.Errors() {
		fmt.Fprintln(c.stdout, e.Error())
	}
	for _, e := range diags.Warnings() {
		fmt.Fprintln(c.stdout, e.Error())
	}
}

func (c *cli) lccCheck(ctx context.Context, args []string) int {
	fs := c.newFlags("lcc check", "lcc check FILE... [--constraint name/arity ...]")
	var extra stringList
	fs.Var(&extra, "constraint", "declare a constraint name/arity as known (repeatable)")
	files, code, ok := c.parse(fs, args, 1, -1)
	if !ok {
		return code
	}
	known, err := knownConstraints(extra)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc check:", err)
		return exitUsage
	}
	code = exitOK
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley lcc check:", err)
			return exitUsage
		}
		m, diags := lcc.Parse(f, src)
		if !diags.HasErrors() {
			diags = append(lcc.Check(m, known), policies.CheckParams(m)...)
			diags.Sort()
		}
		c.printDiags(diags)
		if diags.HasErrors() {
			code = exitFailed
		}
	}
	return code
}

func (c *cli) lccFmt(ctx context.Context, args []string) int {
	fs := c.newFlags("lcc fmt", "lcc fmt [-w] FILE...")
	write := fs.Bool("w", false, "rewrite the files in place instead of printing")
	files, code, ok := c.parse(fs, args, 1, -1)
	if !ok {
		return code
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley lcc fmt:", err)
			return exitUsage
		}
		m, errs := lcc.Parse(f, src)
		if errs.HasErrors() {
			c.printDiags(errs)
			return exitFailed
		}
		out := lcc.Format(m)
		if !*write {
			fmt.Fprint(c.stdout, out)
			continue
		}
		if out == string(src) {
			continue
		}
		if err := writeFileAtomic(f, []byte(out)); err != nil {
			fmt.Fprintln(c.stderr, "parley lcc fmt:", err)
			return exitUsage
		}
	}
	return exitOK
}

// writeFileAtomic replaces a file through a temporary file and a rename,
// keeping its permissions, so that a crash never leaves half a file.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".parley-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (c *cli) lccRun(ctx context.Context, args []string) int {
	fs := c.newFlags("lcc run", "lcc run FILE --agent ROLE=ID ... [--knowledge ID=FACTSFILE ...] [--trace] [--timeout D]\n       lcc run --replay REPLAYFILE (a counterexample written by lcc verify)")
	replay := fs.String("replay", "", "follow, step by step, a counterexample written by 'parley lcc verify'")
	var agents, knowledge, extra stringList
	fs.Var(&agents, "agent", "start ROLE for agent ID (repeatable)")
	fs.Var(&knowledge, "knowledge", "give agent ID the facts in FACTSFILE (repeatable)")
	fs.Var(&extra, "constraint", "declare a constraint name/arity as known (repeatable)")
	trace := fs.Bool("trace", false, "print every send, receive, constraint and role change")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on the interaction after this long")
	files, code, ok := c.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	if *replay != "" {
		if len(files) > 0 || len(agents) > 0 {
			fmt.Fprintln(c.stderr, "parley lcc run: --replay takes the model and the agents from the replay file: give no FILE or --agent")
			return exitUsage
		}
		return c.lccReplay(*replay)
	}
	if len(files) != 1 {
		fmt.Fprintln(c.stderr, "parley lcc run: want one FILE")
		fs.Usage()
		return exitUsage
	}
	if len(agents) == 0 {
		fmt.Fprintln(c.stderr, "parley lcc run: at least one --agent ROLE=ID is needed")
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(c.stderr, "parley lcc run: --timeout must be positive")
		return exitUsage
	}
	known, err := knownConstraints(extra)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc run:", err)
		return exitUsage
	}
	specs, err := agentSpecs(agents, knowledge, known)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc run:", err)
		return exitUsage
	}
	src, err := os.ReadFile(files[0])
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc run:", err)
		return exitUsage
	}
	prog, diags, err := lcc.Compile(files[0], src, lcc.PolicyRef{Name: filepath.Base(files[0]), Version: 1}, known)
	if err != nil {
		c.printDiags(diags)
		return exitFailed
	}
	for _, w := range diags.Warnings() {
		fmt.Fprintln(c.stderr, w.Error())
	}
	for _, s := range specs {
		if prog.Model.Clause(lcc.RoleKey(s.Role)) == nil {
			fmt.Fprintf(c.stderr, "parley lcc run: role %s has no clause in %s\n", lcc.FormatTerm(s.Role), files[0])
			return exitUsage
		}
	}
	var tracer lcc.Tracer
	var steps []worker.TraceStep
	if *trace {
		tracer = &lockedTracer{t: lcc.TracerFunc(func(e lcc.TraceEvent) {
			steps = append(steps, worker.TraceStep{Time: e.Time, Interaction: e.Interaction, Policy: e.Policy.String(), Agent: e.Agent,
				Role: e.Role, Kind: string(e.Kind), Peer: e.Peer, Term: e.Term})
		})}
	}
	outs, err := lcc.RunLocal(ctx, lcc.LocalConfig{Program: prog, Agents: specs, Tracer: tracer, Timeout: *timeout})
	if *trace {
		sort.SliceStable(steps, func(i, j int) bool { return steps[i].Time.Before(steps[j].Time) })
		c.printChart(steps) // the chart of 'parley trace'
		fmt.Fprintln(c.stdout)
	}
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc run:", err)
		return exitFailed
	}
	code = exitOK
	tw := newTable(c.stdout, "AGENT", "ROLE", "OUTCOME", "REASON")
	for _, o := range outs {
		tw.row(o.Agent, o.Role, o.Status.String(), o.Reason)
		if o.Status != lcc.Closed {
			code = exitFailed
		}
	}
	tw.flush()
	return code
}

// agentSpecs reads --agent ROLE=ID and --knowledge ID=FACTSFILE flags; the
// knowledge's names are added to known.
func agentSpecs(agents, knowledge []string, known lcc.Known) ([]lcc.AgentSpec, error) {
	facts := map[string][]lcc.Term{}
	for _, k := range knowledge {
		id, path, ok := strings.Cut(k, "=")
		if !ok || id == "" || path == "" {
			return nil, fmt.Errorf("--knowledge %q: want ID=FACTSFILE", k)
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ts, err := lcc.ParseFacts(path, src)
		if err != nil {
			return nil, err
		}
		facts[id] = append(facts[id], ts...)
		for _, t := range ts {
			name, arity, _ := lcc.Functor(t)
			known[name+"/"+fmt.Sprint(arity)] = lcc.ConstraintInfo{Name: name, Arity: arity, Doc: "knowledge of " + id}
		}
	}
	var specs []lcc.AgentSpec
	ids := map[string]bool{}
	for _, a := range agents {
		role, id, ok := strings.Cut(a, "=")
		if !ok || role == "" || id == "" {
			return nil, fmt.Errorf("--agent %q: want ROLE=ID", a)
		}
		rt, err := lcc.ParseTerm(role)
		if err != nil {
			return nil, fmt.Errorf("--agent %q: %v", a, err)
		}
		ids[id] = true
		specs = append(specs, lcc.AgentSpec{Role: rt, ID: id, Knowledge: facts[id]})
	}
	for id := range facts {
		if !ids[id] {
			return nil, fmt.Errorf("--knowledge names %s, which no --agent plays", id)
		}
	}
	return specs, nil
}
