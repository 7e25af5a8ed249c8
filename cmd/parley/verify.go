package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
)

func init() {
	register("lcc",
		command{"verify", "explore every run of a model among given agents: deadlocks, lost messages, properties", (*cli).lccVerify},
	)
}

const verifyUsage = `lcc verify MODEL.lcc [--agent ROLE=ID ...] [--knowledge ID=FILE ...] [--domain FILE]
       [--property FILE] [--bound N] [--timeouts any|quiescent] [--format text|msc|json]
       [--responders N] [--no-symmetry] [--replay-file FILE] [--max-states N] [--mailbox N]

Without --agent: one agent for each initial role and --responders (3) for every other role.
Without --domain or --property: the fleet's defaults (parley lcc verify --print-defaults).
Exit status: 0 when nothing of severity error was found, 1 when something was, 2 on bad usage.`

func (c *cli) lccVerify(ctx context.Context, args []string) int {
	fs := c.newFlags("lcc verify", verifyUsage)
	var agents, knowledge stringList
	fs.Var(&agents, "agent", "an agent ROLE=ID (repeatable)")
	fs.Var(&knowledge, "knowledge", "give agent ID the facts in FILE (repeatable)")
	domFile := fs.String("domain", "", "what the host's constraints may answer (default: the fleet's)")
	propFile := fs.String("property", "", "the properties to check (default: the fleet's)")
	bound := fs.Int("bound", 1000, "explore runs up to this many transitions")
	maxStates := fs.Int("max-states", 3_000_000, "stop past this many states")
	mailbox := fs.Int("mailbox", 16, "explore no further past this many messages waiting for one agent")
	timeouts := fs.String("timeouts", "any", "any: a deadline may pass at any moment; quiescent: only when nothing else can happen")
	format := fs.String("format", "text", "text, msc (message sequence charts) or json")
	noSym := fs.Bool("no-symmetry", false, "do not merge states that differ by renaming interchangeable agents")
	replayFile := fs.String("replay-file", "", "where to write the first error's counterexample (or, given this flag, the first warning's) for 'lcc run --replay' (default: MODEL.replay.json in this directory)")
	printDefaults := fs.Bool("print-defaults", false, "print the fleet's default domain and properties, then exit")
	responders := fs.Int("responders", policies.PushResponders, "without --agent: how many agents play each role that is not initial")
	pos, code, ok := c.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	if *printDefaults {
		d, p := policies.DefaultVerifyTexts()
		fmt.Fprintf(c.stdout, "%s\n%s", d, p)
		return exitOK
	}
	if len(pos) != 1 {
		fmt.Fprintln(c.stderr, "parley lcc verify: want one MODEL.lcc")
		fs.Usage()
		return exitUsage
	}
	if *timeouts != "any" && *timeouts != "quiescent" {
		fmt.Fprintf(c.stderr, "parley lcc verify: --timeouts must be any or quiescent, not %q\n", *timeouts)
		return exitUsage
	}
	if *format != "text" && *format != "msc" && *format != "json" {
		fmt.Fprintf(c.stderr, "parley lcc verify: --format must be text, msc or json, not %q\n", *format)
		return exitUsage
	}
	if *bound <= 0 || *maxStates <= 0 || *mailbox <= 0 {
		fmt.Fprintln(c.stderr, "parley lcc verify: --bound, --max-states and --mailbox must be positive")
		return exitUsage
	}
	if *responders < 1 {
		fmt.Fprintln(c.stderr, "parley lcc verify: --responders must be at least 1")
		return exitUsage
	}
	in, err := loadVerifyInput(pos[0], *domFile, *propFile, agents, knowledge, *responders)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc verify:", err)
		return exitUsage
	}
	if in.diags.HasErrors() {
		c.printDiags(in.diags)
		return exitFailed
	}
	rep, err := lcc.Verify(lcc.VerifyConfig{Program: in.prog, Agents: in.agents, Domain: in.domain, Properties: in.props,
		Bound: *bound, MaxStates: *maxStates, Mailbox: *mailbox, Timeouts: *timeouts, Symmetry: !*noSym, Context: ctx})
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc verify:", err)
		return exitUsage
	}
	// The first error's counterexample is written for 'lcc run --replay'
	// (findings are sorted errors first); a warning's only when asked.
	replayPath := ""
	for _, f := range rep.Findings {
		if len(f.Steps) == 0 || f.Kind == "bound" || f.Severity != "error" && *replayFile == "" {
			continue
		}
		replayPath = *replayFile
		if replayPath == "" {
			replayPath = strings.TrimSuffix(filepath.Base(pos[0]), filepath.Ext(pos[0])) + ".replay.json"
		}
		if err := writeReplay(replayPath, in, *timeouts, f); err != nil {
			fmt.Fprintln(c.stderr, "parley lcc verify:", err)
			return exitUsage
		}
		break
	}
	switch *format {
	case "json":
		writeJSON(c.stdout, struct {
			*lcc.VerifyReport
			Replay string `json:"replay_file,omitempty"`
		}{rep, replayPath})
	case "msc":
		var lanes []string
		for _, a := range in.agents {
			lanes = append(lanes, a.ID)
		}
		for _, f := range rep.Findings {
			fmt.Fprintf(c.stdout, "%s: %s\n", f.Severity, f.Summary)
			if len(f.Steps) > 0 {
				lcc.WriteMSC(c.stdout, f.Steps, lanes)
			}
			fmt.Fprintln(c.stdout)
		}
		c.verifySummary(rep, replayPath)
	default:
		rep.WriteText(c.stdout, pos[0])
		c.verifySummary(rep, replayPath)
	}
	for _, w := range in.diags.Warnings() {
		fmt.Fprintln(c.stderr, w.Error())
	}
	if rep.Errors() > 0 {
		return exitFailed
	}
	return exitOK
}

func (c *cli) verifySummary(rep *lcc.VerifyReport, replayPath string) {
	if replayPath != "" {
		fmt.Fprintf(c.stdout, "replay: %s (parley lcc run --replay %s)\n", replayPath, replayPath)
	}
	if rep.Errors() == 0 {
		fmt.Fprintln(c.stdout, "ok: nothing of severity error")
	} else {
		fmt.Fprintf(c.stdout, "FAILED: %d findings of severity error\n", rep.Errors())
	}
}

// verifyInput is a model with what it is verified with.
type verifyInput struct {
	file    string
	src     []byte
	prog    *lcc.Program
	diags   lcc.ErrorList
	domain  *lcc.Domain
	domSrc  lcc.SourceText
	props   *lcc.Properties
	agents  []lcc.AgentSpec
	knowSrc map[string][]string
}

func loadVerifyInput(file, domFile, propFile string, agents, knowledge []string, responders int) (*verifyInput, error) {
	in := &verifyInput{file: file, knowSrc: map[string][]string{}}
	var err error
	if in.src, err = os.ReadFile(file); err != nil {
		return nil, err
	}
	dText, pText := policies.DefaultVerifyTexts()
	in.domSrc = lcc.SourceText{File: "verify.domain", Text: dText}
	if domFile != "" {
		b, err := os.ReadFile(domFile)
		if err != nil {
			return nil, err
		}
		in.domSrc = lcc.SourceText{File: domFile, Text: string(b)}
	}
	if in.domain, err = lcc.ParseDomain(in.domSrc.File, []byte(in.domSrc.Text)); err != nil {
		return nil, err
	}
	pSrc := lcc.SourceText{File: "verify.props", Text: pText}
	if propFile != "" {
		b, err := os.ReadFile(propFile)
		if err != nil {
			return nil, err
		}
		pSrc = lcc.SourceText{File: propFile, Text: string(b)}
	}
	if in.props, err = lcc.ParseProperties(pSrc.File, []byte(pSrc.Text)); err != nil {
		return nil, err
	}
	known := in.domain.Known()
	m, diags := lcc.Parse(file, in.src)
	if diags.HasErrors() {
		in.diags = diags
		return in, nil
	}
	if len(agents) == 0 {
		in.agents = policies.DefaultAgents(m, responders)
		if len(in.agents) == 0 {
			return nil, fmt.Errorf("%s declares no roles: give the agents with --agent ROLE=ID", file)
		}
		if len(knowledge) > 0 {
			return nil, fmt.Errorf("--knowledge needs the agents given with --agent")
		}
	} else if in.agents, err = agentSpecs(agents, knowledge, known); err != nil {
		return nil, err
	}
	for _, a := range in.agents {
		for _, k := range a.Knowledge {
			in.knowSrc[a.ID] = append(in.knowSrc[a.ID], lcc.FormatTerm(k))
		}
	}
	in.diags = lcc.Check(m, known)
	if in.diags.HasErrors() {
		return in, nil
	}
	for _, a := range in.agents {
		if m.Clause(lcc.RoleKey(a.Role)) == nil {
			return nil, fmt.Errorf("role %s has no clause in %s", lcc.FormatTerm(a.Role), file)
		}
	}
	in.prog = lcc.NewProgram(m, lcc.PolicyRef{Name: filepath.Base(file), Version: 1, Hash: lcc.HashSource(in.src)})
	return in, nil
}

func writeReplay(path string, in *verifyInput, timeouts string, f *lcc.Finding) error {
	rf := lcc.ReplayFile{Version: 1, Finding: f.Kind, Summary: f.Summary, Timeouts: timeouts,
		Model: lcc.SourceText{File: in.file, Text: string(in.src)}, Domain: &in.domSrc, Steps: f.Steps}
	for _, a := range in.agents {
		rf.Agents = append(rf.Agents, lcc.ReplayAgent{Role: lcc.FormatTerm(a.Role), ID: a.ID, Knowledge: in.knowSrc[a.ID]})
	}
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// lccReplay follows a replay file written by lcc verify.
func (c *cli) lccReplay(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc run:", err)
		return exitUsage
	}
	var rf lcc.ReplayFile
	if err := json.Unmarshal(b, &rf); err != nil {
		fmt.Fprintf(c.stderr, "parley lcc run: %s is not a replay file: %v\n", path, err)
		return exitUsage
	}
	if rf.Version != 1 {
		fmt.Fprintf(c.stderr, "parley lcc run: %s: replay version %d is not supported (want 1)\n", path, rf.Version)
		return exitUsage
	}
	m, diags := lcc.Parse(rf.Model.File, []byte(rf.Model.Text))
	if diags.HasErrors() {
		c.printDiags(diags)
		return exitUsage
	}
	var dom *lcc.Domain
	if rf.Domain != nil {
		if dom, err = lcc.ParseDomain(rf.Domain.File, []byte(rf.Domain.Text)); err != nil {
			fmt.Fprintln(c.stderr, "parley lcc run:", err)
			return exitUsage
		}
	}
	var specs []lcc.AgentSpec
	for _, a := range rf.Agents {
		rt, err := lcc.ParseTerm(a.Role)
		if err != nil {
			fmt.Fprintf(c.stderr, "parley lcc run: %s: agent %s: %v\n", path, a.ID, err)
			return exitUsage
		}
		var facts []lcc.Term
		for _, k := range a.Knowledge {
			t, err := lcc.ParseTerm(k)
			if err != nil {
				fmt.Fprintf(c.stderr, "parley lcc run: %s: knowledge of %s: %v\n", path, a.ID, err)
				return exitUsage
			}
			facts = append(facts, t)
		}
		specs = append(specs, lcc.AgentSpec{Role: rt, ID: a.ID, Knowledge: facts})
	}
	prog := lcc.NewProgram(m, lcc.PolicyRef{Name: filepath.Base(rf.Model.File), Version: 1, Hash: lcc.HashSource([]byte(rf.Model.Text))})
	fmt.Fprintf(c.stdout, "replaying %s: %s\n", path, rf.Summary)
	res, err := lcc.Replay(lcc.VerifyConfig{Program: prog, Agents: specs, Domain: dom, Timeouts: rf.Timeouts}, rf.Steps)
	if res != nil {
		lcc.WriteSteps(c.stdout, res.Steps, "")
	}
	if err != nil {
		fmt.Fprintln(c.stderr, "parley lcc run --replay:", err)
		return exitFailed
	}
	fmt.Fprintln(c.stdout)
	tw := newTable(c.stdout, "AGENT", "ROLE", "OUTCOME", "REASON")
	for _, o := range res.Outcomes {
		status := o.Status.String()
		if o.Reason == "still running" {
			status, o.Reason = "waiting", ""
		}
		tw.row(o.Agent, o.Role, status, o.Reason)
	}
	tw.flush()
	if res.Deadlock != "" {
		fmt.Fprintln(c.stdout, res.Deadlock)
	}
	for _, l := range res.Leftover {
		fmt.Fprintln(c.stdout, "unconsumed: "+l)
	}
	fmt.Fprintf(c.stdout, "replayed %d steps\n", len(res.Steps))
	return exitOK
}
