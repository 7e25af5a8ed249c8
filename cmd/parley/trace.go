package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/worker"
)

func init() {
	topLevel["trace"] = command{"trace", "one negotiation as a message-sequence chart, from every worker that took part (--vm VM: the last interactions about a VM)", (*cli).trace}
	topLevel["explain"] = command{"explain", "say why a VM has or has not moved lately", (*cli).explain}
}

func (c *cli) trace(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("trace", "trace INTERACTION | trace --vm VM [--limit N] [-o table|json]")
	vm := fs.String("vm", "", "list the last interactions that concerned this VM")
	limit := fs.Int("limit", 20, "with --vm: at most this many")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 0, 1, func(pos []string) error {
		if (*vm == "") == (len(pos) == 0) {
			return fmt.Errorf("give one of an interaction id and --vm VM")
		}
		return nil
	})
	if !ok {
		return code
	}
	js, err := cl.Journal(ctx, 0, 100000)
	if err != nil {
		return c.storeErr("trace", err)
	}
	if *vm != "" {
		var mine []raftstore.JournalEntry
		for _, j := range js {
			if j.VM == *vm {
				mine = append(mine, j)
			}
		}
		if len(mine) > *limit {
			mine = mine[len(mine)-*limit:]
		}
		if *sf.output == "json" {
			writeJSON(c.stdout, mine)
			return exitOK
		}
		t := newTable(c.stdout, "TIME", "INTERACTION", "KIND", "POLICY", "FROM", "TO", "OUTCOME", "REASON")
		for _, j := range mine {
			t.row(fmtTime(j.Time), j.Interaction, j.Kind, fmt.Sprintf("%s@v%d", j.Policy, j.Version), j.From, j.To, j.Outcome, j.Reason)
		}
		t.flush()
		if len(mine) == 0 {
			fmt.Fprintf(c.stdout, "the journal has nothing about %s\n", *vm)
		}
		return exitOK
	}
	id := pos[0]
	steps, missing, err := c.gatherTrace(ctx, cl, sf, id)
	if err != nil {
		return c.storeErr("trace", err)
	}
	var journal []raftstore.JournalEntry
	for _, j := range js {
		if j.Interaction == id {
			journal = append(journal, j)
		}
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, map[string]any{"interaction": id, "steps": steps, "journal": journal, "unreachable": missing})
		return exitOK
	}
	if len(steps) == 0 && len(journal) == 0 {
		fmt.Fprintf(c.stderr, "parley trace: no worker has a trace of %s and the journal has nothing about it (workers keep their last %d interactions)\n", id, 128)
		return exitFailed
	}
	if len(steps) > 0 {
		fmt.Fprintf(c.stdout, "interaction %s, policy %s\n\n", id, steps[0].Policy)
		c.printChart(steps)
	}
	for _, j := range journal {
		fmt.Fprintf(c.stdout, "journal: %s %s %s -> %s %s %s (%d ms)\n", j.Kind, j.VM, j.From, j.To, j.Outcome, j.Reason, j.DurationMS)
	}
	for _, m := range missing {
		fmt.Fprintf(c.stdout, "note: %s\n", m)
	}
	return exitOK
}

// printChart prints steps as a message-sequence chart: milliseconds since
// the first step, the agent, its role, the step. 'parley trace' and
// 'parley lcc run --trace' print the same chart.
func (c *cli) printChart(steps []worker.TraceStep) {
	if len(steps) == 0 {
		return
	}
	t0 := steps[0].Time
	t := newTable(c.stdout, "+MS", "AGENT", "ROLE", "STEP")
	for _, s := range steps {
		t.row(fmt.Sprint(s.Time.Sub(t0).Milliseconds()), s.Agent, s.Role, describeStep(s))
	}
	t.flush()
}

func describeStep(s worker.TraceStep) string {
	switch s.Kind {
	case "send":
		return fmt.Sprintf("%s => %s", s.Term, s.Peer)
	case "receive":
		return fmt.Sprintf("%s <= %s", s.Term, s.Peer)
	case "constraint":
		return "solves " + s.Term
	case "role":
		return "takes the role " + s.Term
	case "timeout":
		return "times out waiting " + s.Term
	case "drop":
		return fmt.Sprintf("drops %s from %s", s.Term, s.Peer)
	case "outcome":
		return "ends: " + s.Term
	}
	return s.Kind + " " + s.Term
}

// gatherTrace asks every live worker for its piece of the interaction.
func (c *cli) gatherTrace(ctx context.Context, cl *raftstore.Client, sf storeFlags, id string) ([]worker.TraceStep, []string, error) {
	ws, err := cl.Workers(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	tlsFiles, err := sf.tls.client()
	if err != nil {
		return nil, nil, err
	}
	tr, scheme := &http.Transport{}, "http://"
	if tlsFiles != nil {
		tr.DialTLSContext, scheme = tlsFiles.Dial, "https://"
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	var steps []worker.TraceStep
	var missing []string
	for _, w := range ws {
		resp, err := hc.Get(scheme + w.Addr + "/v1/traces/" + url.PathEscape(id))
		if err != nil {
			missing = append(missing, fmt.Sprintf("worker %s at %s: %v", w.ID, w.Addr, err))
			continue
		}
		var mine []worker.TraceStep
		switch resp.StatusCode {
		case http.StatusOK:
			if err := json.NewDecoder(resp.Body).Decode(&mine); err != nil {
				missing = append(missing, fmt.Sprintf("worker %s: %v", w.ID, err))
			}
		case http.StatusNotFound:
		default:
			missing = append(missing, fmt.Sprintf("worker %s answered %s (traces need a certificate of the cluster's CA: --tls-cert and --tls-key)", w.ID, resp.Status))
		}
		resp.Body.Close()
		steps = append(steps, mine...)
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].Time.Before(steps[j].Time) })
	return steps, missing, nil
}

// explain says, in a line or two, why a VM has or has not moved lately.
func (c *cli) explain(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("explain", "explain VM")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, nil)
	if !ok {
		return code
	}
	vm := pos[0]
	var lines []string
	ls, err := cl.Leases(ctx, "", false)
	if err != nil {
		return c.storeErr("explain", err)
	}
	for _, l := range ls {
		switch {
		case l.Key == api.VMKey(vm) && l.State == api.LeaseHeld:
			lines = append(lines, fmt.Sprintf("%s is moving now: worker %s holds its lease (token %d)", vm, l.Holder, l.Token))
		case l.Key == api.VMKey(vm):
			lines = append(lines, fmt.Sprintf("%s's last move ended without releasing its lease: it is locked until checked (%s)", vm, l.State))
		case l.Key == api.CoolKey(vm):
			lines = append(lines, fmt.Sprintf("%s is cooling down after a move: it may move again after %s", vm, fmtTime(l.Expiry)))
		}
	}
	js, err := cl.Journal(ctx, 0, 100000)
	if err != nil {
		return c.storeErr("explain", err)
	}
	var last, lastMove *raftstore.JournalEntry
	for i := range js {
		if js[i].VM != vm {
			continue
		}
		last = &js[i]
		if js[i].Kind == api.KindMigration && js[i].Outcome == api.OutcomeSuccess {
			lastMove = &js[i]
		}
	}
	if lastMove != nil {
		lines = append(lines, fmt.Sprintf("moved from %s to %s at %s (policy %s@v%d, interaction %s)", lastMove.From, lastMove.To, fmtTime(lastMove.Time), lastMove.Policy, lastMove.Version, lastMove.Interaction))
	}
	if last != nil && last != lastMove {
		lines = append(lines, "since then: "+whyNot(*last))
	}
	if hs, err := cl.Hosts(ctx, false); err == nil && last != nil {
		for _, h := range hs {
			if h.Name == last.From && h.State == api.HostDRS {
				lines = append(lines, "its host "+h.Name+" is left to DRS: "+h.Reason)
			}
		}
	}
	if len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("parley has not negotiated about %s lately: its host has not been overloaded, nearly empty or drained long enough to start a negotiation, or another VM was the one offered", vm))
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, map[string]any{"vm": vm, "explanation": lines})
		return exitOK
	}
	fmt.Fprintln(c.stdout, strings.Join(lines, "\n"))
	return exitOK
}

// whyNot turns a journal entry about a VM into a reason.
func whyNot(j raftstore.JournalEntry) string {
	at := fmtTime(j.Time)
	switch {
	case j.Kind == api.KindNegotiation && j.Reason == "no_bids":
		return "at " + at + " it was offered and no host bid: none had room under the policy's thresholds and rules (" + j.Policy + ")"
	case j.Kind == api.KindNegotiation && j.Reason == "no_taker":
		return "at " + at + " it was offered and no host would take it (" + j.Policy + ")"
	case j.Kind == api.KindNegotiation && j.Reason == "no_room":
		return "at " + at + " its host was being drained and no host had room for it"
	case j.Kind == api.KindNegotiation && j.Reason == "refused":
		return "at " + at + " the winning bidder refused it when reserving (its room had gone, or vCenter said it cannot run there)"
	case j.Kind == api.KindMigration && j.Outcome != api.OutcomeSuccess:
		return fmt.Sprintf("at %s a migration to %s ended %s: %s", at, j.To, j.Outcome, j.Reason)
	case j.Kind == api.KindReconcile:
		return "at " + at + " a worker checked it after a lease expired unreleased: " + j.Reason
	}
	return fmt.Sprintf("at %s: %s %s %s", at, j.Kind, j.Outcome, j.Reason)
}
