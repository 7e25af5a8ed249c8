package test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/parleyhq/parley/raftstore"
)

// History records every client-visible store operation the test makes,
// with call and return times and outcomes (unknown ones included), and
// checks it for linearizability against a lease model with porcupine.

type leaseInput struct {
	Op     string // acquire, renew, release
	Key    string
	Holder string
	Token  uint64
}

type leaseOutput struct {
	OK      bool
	Held    bool // acquire refused: held; renew/release refused: stale
	Unknown bool
	Token   uint64
}

type history struct {
	mu        sync.Mutex
	ops       []porcupine.Operation
	start     time.Time
	pushed    []int // acknowledged policy versions
	policyOps []porcupine.Operation
	journal   int // acknowledged journal entries (with our marker)
	counts    map[string]int
}

func newHistory() *history { return &history{start: time.Now(), counts: map[string]int{}} }

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) record(client int, in leaseInput, call int64, out leaseOutput) {
	ret := h.now()
	if out.Unknown {
		ret = math.MaxInt64 // it may take effect at any time after the call
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	h.counts[in.Op]++
	h.mu.Unlock()
}

type leaseState struct {
	Holder string
	Token  uint64 // 0 with a holder: granted with an unknown outcome
	Max    uint64
}

var leaseModel = porcupine.NondeterministicModel{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range ops {
			k := op.Input.(leaseInput).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{leaseState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		s, in, out := state.(leaseState), input.(leaseInput), output.(leaseOutput)
		match := s.Holder == in.Holder && (s.Token == in.Token || s.Token == 0)
		switch in.Op {
		case "acquire":
			granted := leaseState{Holder: in.Holder, Token: out.Token, Max: max(s.Max, out.Token)}
			switch {
			case out.Unknown:
				if s.Holder == "" {
					return []interface{}{s, leaseState{Holder: in.Holder, Max: s.Max}}
				}
				return []interface{}{s}
			case out.OK:
				if s.Holder == "" && out.Token > s.Max {
					return []interface{}{granted}
				}
			case out.Held:
				if s.Holder != "" {
					return []interface{}{s}
				}
			}
		case "renew":
			switch {
			case out.Unknown:
				return []interface{}{s}
			case out.OK:
				if match {
					return []interface{}{s}
				}
			case out.Held:
				if !match {
					return []interface{}{s}
				}
			}
		case "release":
			free := leaseState{Max: s.Max}
			switch {
			case out.Unknown:
				if match {
					return []interface{}{s, free}
				}
				return []interface{}{s}
			case out.OK:
				if match {
					return []interface{}{free}
				}
			case out.Held:
				if !match {
					return []interface{}{s}
				}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(leaseInput), output.(leaseOutput)
		res := "ok"
		switch {
		case out.Unknown:
			res = "unknown"
		case out.Held:
			res = "refused"
		}
		return fmt.Sprintf("%s(%s, %s, %d) -> %s %d", in.Op, in.Key, in.Holder, in.Token, res, out.Token)
	},
	DescribeState: func(state interface{}) string {
		s := state.(leaseState)
		if s.Holder == "" {
			return fmt.Sprintf("free (max %d)", s.Max)
		}
		return fmt.Sprintf("%s@%d", s.Holder, s.Token)
	},
}

// check verifies linearizability; on failure it writes porcupine's HTML
// visualisation next to the logs and names the file.
func (h *history) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	model := leaseModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, ops, 60*time.Second)
	if res == porcupine.Illegal {
		path := filepath.Join(artifactDir(t), t.Name()+"-linearizability.html")
		if f, err := os.Create(path); err == nil {
			porcupine.Visualize(model, info, f)
			f.Close()
		}
		t.Errorf("the lease history of %d operations is not linearizable; visualisation: %s", len(ops), path)
		return
	}
	if res == porcupine.Unknown {
		t.Logf("linearizability check timed out on %d operations", len(ops))
		return
	}
	t.Logf("lease history linearizable: %d operations %v", len(ops), h.counts)
}

// leaseTraffic runs clients that take, renew and release a few keys until
// stop is closed, recording every operation.
func leaseTraffic(ctx context.Context, c *raftstore.Client, h *history, clients int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	keys := []string{"lock/chaos-a", "lock/chaos-b", "lock/chaos-c"}
	var n atomic.Int64
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("client-%d", i)
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				key := keys[(i+j)%len(keys)]
				in := leaseInput{Op: "acquire", Key: key, Holder: holder}
				call := h.now()
				g, err := c.Acquire(ctx, raftstore.AcquireRequest{Holder: holder, TTLMillis: 120000, Items: []raftstore.AcquireItem{{Key: key}}})
				out := outcome(err)
				if err == nil {
					out.Token = g.Token
				}
				h.record(i, in, call, out)
				n.Add(1)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				for _, op := range []string{"renew", "release"} {
					in := leaseInput{Op: op, Key: key, Holder: holder, Token: g.Token}
					call := h.now()
					req := raftstore.RenewRequest{Keys: []string{key}, Holder: holder, Token: g.Token, TTLMillis: 120000}
					if op == "renew" {
						_, err = c.Renew(ctx, req)
					} else {
						err = c.Release(ctx, req)
					}
					h.record(i, in, call, outcome(err))
				}
			}
		}()
	}
	return &wg
}

func outcome(err error) leaseOutput {
	switch {
	case err == nil:
		return leaseOutput{OK: true}
	case errors.Is(err, raftstore.ErrLeaseHeld), errors.Is(err, raftstore.ErrStaleToken):
		return leaseOutput{Held: true}
	}
	return leaseOutput{Unknown: true}
}

// policyTraffic pushes versions from two clients at once, activates older
// versions now and then, and appends journal entries, until stop. Every
// push and activation goes into the policy history with its call and
// return times; acknowledged versions and journal entries are kept for
// the no-lost-data check.
func policyTraffic(ctx context.Context, c *raftstore.Client, h *history, text string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for client := 0; client < 2; client++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
				}
				call := h.now()
				res, err := c.Push(ctx, raftstore.PushRequest{Name: "chaos-check", Text: fmt.Sprintf("%s\n// %d-%d\n", text, client, i), Author: "chaos"})
				out := policyOutput{Unknown: err != nil && isUnavailable(err), Refused: err != nil && !isUnavailable(err)}
				if err == nil {
					out.Version, out.Active = res.Version, res.Active
					h.mu.Lock()
					h.pushed = append(h.pushed, res.Version)
					h.mu.Unlock()
				}
				h.recordPolicy(client, policyInput{Op: "push"}, call, out)
				if err == nil && i%3 == 2 && res.Version > 1 {
					v := 1 + i%(res.Version-1)
					call := h.now()
					ar, err := c.Activate(ctx, "chaos-check", v, "chaos")
					out := policyOutput{Unknown: err != nil && isUnavailable(err), Refused: err != nil && !isUnavailable(err)}
					if err == nil {
						out.Active, out.From = ar.Active, ar.From
					}
					h.recordPolicy(client, policyInput{Op: "activate", Version: v}, call, out)
				}
				if client == 0 {
					if err := c.AppendJournal(ctx, raftstore.JournalEntry{Kind: "chaos-marker", Reason: fmt.Sprint(i)}); err == nil {
						h.mu.Lock()
						h.journal++
						h.mu.Unlock()
					}
				}
			}
		}()
	}
	return &wg
}

type policyInput struct {
	Op      string // push, activate
	Version int    // for activate
}

type policyOutput struct {
	Unknown, Refused bool
	Version, Active  int // push: the new version and the active one
	From             int // activate: the version that was active
}

type policyState struct{ Latest, Active int }

func (h *history) recordPolicy(client int, in policyInput, call int64, out policyOutput) {
	ret := h.now()
	if out.Unknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	h.policyOps = append(h.policyOps, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	h.mu.Unlock()
}

// policyModel: versions are numbered 1, 2, ... with no gap or repeat, a
// push makes its version active, and an activation reports the version
// that was active.
var policyModel = porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{policyState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		s, in, out := state.(policyState), input.(policyInput), output.(policyOutput)
		switch in.Op {
		case "push":
			next := policyState{Latest: s.Latest + 1, Active: s.Latest + 1}
			switch {
			case out.Unknown:
				return []interface{}{s, next}
			case out.Refused:
				return []interface{}{s}
			case out.Version == next.Latest && out.Active == next.Active:
				return []interface{}{next}
			}
		case "activate":
			next := policyState{Latest: s.Latest, Active: in.Version}
			switch {
			case out.Unknown:
				if in.Version <= s.Latest {
					return []interface{}{s, next}
				}
				return []interface{}{s}
			case out.Refused:
				if in.Version > s.Latest {
					return []interface{}{s}
				}
			case in.Version <= s.Latest && out.Active == in.Version && out.From == s.Active:
				return []interface{}{next}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output interface{}) string {
		return fmt.Sprintf("%+v -> %+v", input, output)
	},
	DescribeState: func(state interface{}) string { return fmt.Sprintf("%+v", state) },
}

// checkPolicies verifies the policy history for linearizability.
func (h *history) checkPolicies(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.policyOps...)
	h.mu.Unlock()
	model := policyModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, ops, 60*time.Second)
	if res == porcupine.Illegal {
		path := filepath.Join(artifactDir(t), t.Name()+"-policies.html")
		if f, err := os.Create(path); err == nil {
			porcupine.Visualize(model, info, f)
			f.Close()
		}
		t.Errorf("the policy history of %d operations is not linearizable; visualisation: %s", len(ops), path)
		return
	}
	t.Logf("policy history linearizable: %d pushes and activations", len(ops))
}

func artifactDir(t *testing.T) string {
	dir := os.Getenv("PARLEY_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	os.MkdirAll(dir, 0o755)
	return dir
}

// checkNoLostData: every acknowledged policy version and journal entry is
// still there.
func (h *history) checkNoLostData(t *testing.T, c *raftstore.Client) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	h.mu.Lock()
	pushed, journal := append([]int(nil), h.pushed...), h.journal
	h.mu.Unlock()
	if len(pushed) > 0 {
		hist, err := c.History(ctx, "chaos-check")
		if err != nil {
			t.Fatalf("policy history: %v", err)
		}
		have := map[int]bool{}
		for _, v := range hist.Versions {
			have[v.Version] = true
		}
		for _, v := range pushed {
			if !have[v] {
				t.Errorf("acknowledged policy version %d is missing", v)
			}
		}
	}
	js, err := c.Journal(ctx, 0, 100000)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	markers := 0
	for _, j := range js {
		if j.Kind == "chaos-marker" {
			markers++
		}
	}
	if markers < journal {
		t.Errorf("%d acknowledged journal entries, %d present", journal, markers)
	}
	t.Logf("no lost data: %d policy versions and %d journal entries acknowledged, all present", len(pushed), journal)
}
