package lcc

import (
	"fmt"
	"slices"
	"strings"
)

// ReplayFile is what 'parley lcc verify' writes for a counterexample, and
// what 'parley lcc run --replay' follows step by step. It carries the
// texts it was found with, so it replays the same run anywhere.
type ReplayFile struct {
	Version  int           `json:"version"`
	Finding  string        `json:"finding"` // the finding's kind
	Summary  string        `json:"summary"`
	Model    SourceText    `json:"model"`
	Domain   *SourceText   `json:"domain,omitempty"`
	Agents   []ReplayAgent `json:"agents"`
	Timeouts string        `json:"timeouts"`
	Steps    []TraceStep   `json:"steps"`
}

// SourceText is a file's name and text.
type SourceText struct {
	File string `json:"file"`
	Text string `json:"text"`
}

// ReplayAgent is one agent of a replay: its role, id and knowledge facts.
type ReplayAgent struct {
	Role      string   `json:"role"`
	ID        string   `json:"id"`
	Knowledge []string `json:"knowledge,omitempty"`
}

// ReplayResult is where a replay ended.
type ReplayResult struct {
	Steps    []TraceStep
	Outcomes []Outcome // every agent: closed, failed or timed out; running ones have Reason "still running"
	Deadlock string    // non-empty when nothing can happen and an agent waits
	Leftover []string  // messages never taken
}

// Replay follows a run step by step through the same machine the
// verifier explores with: each step must be one the state allows, and the
// domain's outcomes must be the ones recorded.
func Replay(cfg VerifyConfig, steps []TraceStep) (*ReplayResult, error) {
	m, s, err := newMachine(cfg.Program, cfg.Agents, cfg.Domain)
	if err != nil {
		return nil, err
	}
	return replayFrom(m, s, steps)
}

func replayFrom(m *machine, s *mState, steps []TraceStep) (*ReplayResult, error) {
	res := &ReplayResult{}
	for i, st := range steps {
		idx, ok := m.byID[st.Agent]
		if !ok {
			return res, fmt.Errorf("step %d: no agent %s", i+1, st.Agent)
		}
		a, e := m.enabled(s)
		var t *trans
		for _, c := range append(a, e...) {
			if c.agent == idx && c.kind.String() == st.Kind && slices.Equal(c.path, st.Path) {
				t = &c
				break
			}
		}
		if t == nil {
			return res, fmt.Errorf("step %d: %s cannot %s now: the model or the domain is not the one this replay was written for", i+1, st.Agent, st.Kind)
		}
		before := bindings(s.agents[idx])
		role := ""
		if th := s.agents[idx].root; th != nil {
			role = roleLabel(th.role)
		}
		ns, evs, ch := m.apply(s, *t, st.Choices)
		if !slices.Equal(ch.took, st.Choices) && !(len(ch.took) == 0 && len(st.Choices) == 0) {
			return res, fmt.Errorf("step %d: %s's constraints answered differently than recorded (choices %v, recorded %v)", i+1, st.Agent, ch.took, st.Choices)
		}
		for j := range evs {
			if evs[j].Pos.IsValid() {
				evs[j].Where = m.prog.Model.File.Position(evs[j].Pos).String()
			}
		}
		res.Steps = append(res.Steps, TraceStep{N: i + 1, Agent: st.Agent, Role: role, Kind: st.Kind, Path: st.Path,
			Choices: ch.took, Events: evs, Bindings: changedBindings(before, bindings(ns.agents[idx]))})
		s = ns
	}
	a, e := m.enabled(s)
	var waiting []string
	for _, ag := range s.agents {
		sp := m.specs[ag.idx]
		o := Outcome{Agent: sp.id, Role: FormatTerm(sp.entry), Reason: ag.reason}
		switch ag.status {
		case closed:
			o.Status = Closed
		case failedStatus:
			o.Status = Failed
		case timedOut:
			o.Status = TimedOut
		default:
			o.Status, o.Reason = Failed, "still running"
			if len(a)+len(e) == 0 && !m.dormant(ag) {
				waiting = append(waiting, m.describeWait(ag))
			}
		}
		res.Outcomes = append(res.Outcomes, o)
		for _, msg := range ag.mbox {
			res.Leftover = append(res.Leftover, fmt.Sprintf("%s sent %s to %s, who never took it", msg.FromID, FormatTerm(msg.Body), msg.ToID))
		}
	}
	if len(waiting) > 0 {
		res.Deadlock = "deadlock: " + strings.Join(waiting, "; ")
	}
	return res, nil
}

func changedBindings(before, after map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(after) {
		if before[k] != after[k] {
			out = append(out, k+" = "+after[k])
		}
	}
	return out
}
