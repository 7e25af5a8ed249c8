package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
)

// vCenter misbehaving under real processes: a 3-member store, the
// simulator as a process and six workers balancing with TLS and tokens.
// Before each fault a host is made hot, so that relocations are in
// flight when the fault starts; the fault lasts faultSeconds (5 s here,
// PARLEY_VCENTER_FAULT=60s for the minute; a hang and a refusal at least 20 s, so
// that views pass max_view_age); then, for each:
// balanced again within 60 s of its end, the journal naming it, every
// worker's log lines during it bounded; and at the end 0 VMs lost or
// duplicated, 0 overlapping relocations of one VM in vCenter's own record,
// no vMotion started from a view older than max_view_age (every "migration
// starting" line says its view's age), and vCenter's SDK calls per minute
// during an outage no higher than at steady state.

// maxViewAge is the policy's max_view_age in this test: short, so that a
// fault of 10 s makes every view too old to act on.
const maxViewAge = 15

func faultSeconds() time.Duration {
	if v := os.Getenv("PARLEY_VCENTER_FAULT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return 5 * time.Second
}

type faultPhase struct {
	name   string
	fault  map[string]any
	least  time.Duration                            // the fault lasts at least this
	expect func(js []raftstore.JournalEntry) string // "" when the journal names the fault
	// restart, when set, is the signal the simulator is stopped with; it
	// is started again on its --state after the fault's time
	restart syscall.Signal
}

func TestVCenterMisbehaves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	// Every fault takes about 3 minutes on 2 cores, more than CI's budget
	// allows beside the rest of test/: by default a vCenter that hangs and
	// one restarted on its state (SIGTERM, then kill -9), the two a
	// production vCenter does most; PARLEY_VCENTER_FAULTS=1 runs them all.
	// The other faults also run in process in vsphere's and the worker's
	// tests (TestSimulatorFaultsAsVCenterShowsThem,
	// TestVCenterOutageSaidOncePerChange, TestNoVMotionFromAnOldView,
	// TestRelocationBackoff).
	all := os.Getenv("PARLEY_VCENTER_FAULTS") != ""
	e := newEnv(t, envConfig{hosts: 6, vms: 36, seed: 21, migrateTime: 2 * time.Second, simState: true, policy: func(s string) string {
		return s + fmt.Sprintf("\nparam(max_view_age, %d).\nparam(stall_timeout, 5).\n", maxViewAge)
	}})
	ctx := ctxFor(t, 15*time.Minute)
	d := faultSeconds()
	journaled := func(kind, outcome, field string) func([]raftstore.JournalEntry) string {
		return func(js []raftstore.JournalEntry) string {
			for _, j := range js {
				if j.Kind == kind && j.Outcome == outcome && (field == "" || j.Fault == field) {
					return ""
				}
			}
			return fmt.Sprintf("no journal entry of kind %s, outcome %s%s", kind, outcome, map[bool]string{true: "", false: ", fault " + field}[field == ""])
		}
	}
	both := func(a, b func([]raftstore.JournalEntry) string) func([]raftstore.JournalEntry) string {
		return func(js []raftstore.JournalEntry) string {
			if m := a(js); m != "" {
				return m
			}
			return b(js)
		}
	}
	outage := both(journaled(api.KindVCenter, api.OutcomeVCenterDown, ""), journaled(api.KindVCenter, api.OutcomeVCenterUp, ""))
	phases := []faultPhase{
		{"hang", map[string]any{"outage": "hang"}, 20 * time.Second, outage, 0},
		{"refuse", map[string]any{"outage": "refuse"}, 20 * time.Second, outage, 0},
		// slow, with 30% of relocations failing; then 30% stalling: each
		// lasts until it has happened (a failed relocation leaves the host
		// hot, so the workers try again), at most 120 s (with 500 ms on every
		// call a relocation takes a while: 4 in 60 s once, none failing)
		{"slow and failing", map[string]any{"latency_ms": 500, "jitter_ms": 200, "relocate_fail_rate": 0.3, "relocate_fault": "InsufficientResourcesFault"},
			5 * time.Second, journaled(api.KindMigration, api.OutcomeFailed, "InsufficientResourcesFault"), 0},
		{"stalling", map[string]any{"relocate_stall_rate": 0.3}, 5 * time.Second, journaled(api.KindMigration, api.OutcomeStalled, ""), 0},
		{"sessions expired", map[string]any{"expire_sessions": true}, 0, nil, 0},
		// stopped with SIGTERM, started again on its --state; then killed
		// with SIGKILL (what it saved in its last 2 s lost) and started again
		{"restarted (SIGTERM, then kill -9)", nil, 0, outage, syscall.SIGTERM},
	}
	if !all {
		phases = slices.DeleteFunc(phases, func(ph faultPhase) bool { return ph.name != "hang" && ph.restart == 0 })
		t.Logf("faults: %s and %s (PARLEY_VCENTER_FAULTS=1 for all six)", phases[0].name, phases[1].name)
	}
	waitQuiet(t, e, ctx, 90*time.Second, "the first balancing")
	// steady state as each fault finds it: a host made hot, relocations in
	// flight (a quiet fleet's count, its watches' waits alone, was 48 to
	// 312 a minute from run to run: no baseline for a fault's count)
	restore := makeHot(t, e, ctx)
	poll(20*time.Second, func() bool {
		ls, err := e.client.Leases(ctx, api.PrefixVM, false)
		return err == nil && len(ls) > 0
	})
	steady := e.sdkCallsPerMinute(max(d, 20*time.Second))
	restore()
	waitQuiet(t, e, ctx, 60*time.Second, "the steady state's balancing")
	var report []string
	for _, ph := range phases {
		since := journalEnd(t, e, ctx)
		restore := makeHot(t, e, ctx)
		inFlight := poll(20*time.Second, func() bool {
			ls, err := e.client.Leases(ctx, api.PrefixVM, false)
			return err == nil && len(ls) > 0
		})
		marks := logMarks(e)
		calls0, t0 := e.apiCalls(), time.Now()
		switch {
		case ph.restart != 0:
			for _, sig := range []syscall.Signal{ph.restart, syscall.SIGKILL} {
				e.sim.kill(sig)
				time.Sleep(max(d, ph.least) / 2)
				e.sim.run() // the same command: the same --state, addresses and CA file
				if !poll(60*time.Second, func() bool { return e.simHealthy() }) {
					t.Fatalf("%s: the simulator did not come back", ph.name)
				}
			}
		default:
			postFaults(t, e, ph.fault)
		}
		if ph.fault != nil && ph.fault["expire_sessions"] == nil {
			time.Sleep(max(d, ph.least))
		}
		if ph.fault["relocate_fail_rate"] != nil || ph.fault["relocate_stall_rate"] != nil {
			// until it has happened: when the hot host is relieved first (the
			// simulator's faults are drawn from a seeded source, so the same
			// relocations succeed run after run), make another host hot
			poll(120*time.Second, func() bool {
				js, err := e.client.Journal(ctx, since, 100000)
				if err == nil && ph.expect(js) == "" {
					return true
				}
				if ls, err := e.client.Leases(ctx, api.PrefixVM, false); err == nil && len(ls) == 0 {
					restore()
					restore = makeHot(t, e, ctx)
				}
				return false
			})
		}
		perMin := -1.0 // a restarted simulator counts from 0
		if ph.restart == 0 {
			deleteFaults(t, e)
			calls1, t1 := e.apiCalls(), time.Now()
			perMin = float64(calls1-calls0) / t1.Sub(t0).Minutes()
		}
		lines, warns := linesSince(e, marks)
		ok := waitQuiet(t, e, ctx, 60*time.Second, ph.name)
		restore()
		if ph.expect != nil {
			msg := ""
			poll(30*time.Second, func() bool { // a worker says vCenter is back when it next reads it
				js, err := e.client.Journal(ctx, since, 100000)
				if err != nil {
					msg = err.Error()
					return false
				}
				msg = ph.expect(js)
				return msg == ""
			})
			if msg != "" {
				t.Errorf("%s: %s", ph.name, msg)
			}
		}
		if js, err := e.client.Journal(ctx, since, 100000); err == nil {
			outcomes := map[string]int{}
			for _, j := range js {
				if j.Kind == api.KindMigration || j.Kind == api.KindVCenter {
					outcomes[j.Kind+" "+j.Outcome]++
				}
			}
			t.Logf("%s: journal %v", ph.name, outcomes)
		}
		maxLines, maxWarns := 0, 0
		for w, n := range lines {
			maxLines, maxWarns = max(maxLines, n), max(maxWarns, warns[w])
		}
		// a worker says a fault's start and end once each; what else it warns
		// of in one fault is its in-flight relocation ending (its info lines
		// are the negotiations it goes on answering while its view is young)
		if maxWarns > 10 {
			t.Errorf("%s: a worker logged %d warnings during the fault: %v", ph.name, maxWarns, warns)
		}
		// no retry storm: no more calls than at steady state, but for the
		// two each worker's first failures cost (its watch's, its read's),
		// which a short outage cannot spread over a minute
		if outageFault(ph) {
			bound := steady + float64(2*len(e.workers))/max(d, ph.least).Minutes()
			if perMin > bound*1.2 {
				t.Errorf("%s: %.0f SDK calls a minute during the outage, %.0f at steady state (bound %.0f): a retry storm", ph.name, perMin, steady, bound)
			}
		}
		report = append(report, fmt.Sprintf("%s: relocations in flight at its start %v, balanced within 60 s after %v, SDK calls %.0f/min (steady %.0f/min), most log lines of one worker %d (warnings %d)",
			ph.name, inFlight, ok, perMin, steady, maxLines, maxWarns))
	}
	after := e.sdkCallsPerMinute(10 * time.Second)
	for _, r := range report {
		t.Log(r)
	}
	t.Logf("SDK calls a minute: %.0f before the faults, %.0f after", steady, after)
	e.checkNoOverlap(4, 0.7)
	e.checkPlacement(36)
	checkViewAgeAtStart(t, e)
}

func outageFault(ph faultPhase) bool {
	o, _ := ph.fault["outage"].(string)
	return o == "hang" || o == "refuse"
}

// waitQuiet waits until no host is over the high threshold (0.7, with a
// little tolerance for demand the last move is still settling) and no
// VM's lease is held; false at the deadline.
func waitQuiet(t *testing.T, e *env, ctx context.Context, d time.Duration, what string) bool {
	t.Helper()
	ok := poll(d, func() bool {
		var loads map[string]float64
		getJSON(t, e.ctl, e.control+"/loads", &loads)
		for _, l := range loads {
			if l > 0.72 {
				return false
			}
		}
		ls, err := e.client.Leases(ctx, api.PrefixVM, false)
		return err == nil && len(ls) == 0
	})
	if !ok {
		var loads map[string]float64
		getJSON(t, e.ctl, e.control+"/loads", &loads)
		t.Errorf("%s: not balanced within %s: loads %v", what, d, loads)
	}
	return ok
}

// makeHot raises the demand of the VMs of the host with the most VMs to
// 0.85 of its capacity (its VMs stay small enough for the others to take);
// restore puts their demand back.
func makeHot(t *testing.T, e *env, ctx context.Context) (restore func()) {
	t.Helper()
	c, err := vsphere.Connect(ctx, vsphere.Config{URL: e.sdk, User: "u", Password: "p", CAFile: e.simCA}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hot *vsphere.Host
	for i := range inv.Hosts {
		h := &inv.Hosts[i]
		if hot == nil || len(inv.VMsOn(h.ID)) > len(inv.VMsOn(hot.ID)) {
			hot = h
		}
	}
	if hot == nil || len(inv.VMsOn(hot.ID)) < 3 {
		t.Fatal("no host with three VMs")
	}
	vms := inv.VMsOn(hot.ID)
	var used int64
	for _, v := range vms {
		used += v.CPUDemandMHz
	}
	k := 0.85 * float64(hot.CPUCapacityMHz) / float64(max(used, 1))
	for _, v := range vms {
		setDemand(t, e, v.Name, int64(float64(v.CPUDemandMHz)*k), v.MemMB)
	}
	return func() {
		for _, v := range vms {
			setDemand(t, e, v.Name, v.CPUDemandMHz, v.MemMB)
		}
	}
}

func setDemand(t *testing.T, e *env, vm string, cpu, mem int64) {
	t.Helper()
	post(t, e, http.MethodPost, "/vms/"+vm+"/demand", map[string]int64{"cpu_mhz": cpu, "mem_mb": mem})
}

func postFaults(t *testing.T, e *env, f map[string]any) {
	t.Helper()
	post(t, e, http.MethodPost, "/faults", f)
}
func deleteFaults(t *testing.T, e *env) { t.Helper(); post(t, e, http.MethodDelete, "/faults", nil) }

func post(t *testing.T, e *env, method, path string, body any) {
	t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, e.control+path, r)
	resp, err := e.ctl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var m map[string]string
		json.NewDecoder(resp.Body).Decode(&m)
		t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, m)
	}
}

// simHealthy: the simulator's control API answers.
func (e *env) simHealthy() bool {
	resp, err := e.ctl.Get(e.control + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (e *env) apiCalls() int64 {
	var st sim.APIStats
	getJSON(e.t, e.ctl, e.control+"/api-stats", &st)
	return st.Calls
}

// sdkCallsPerMinute measures vCenter's SDK calls a minute over d.
func (e *env) sdkCallsPerMinute(d time.Duration) float64 {
	a, t0 := e.apiCalls(), time.Now()
	time.Sleep(d)
	return float64(e.apiCalls()-a) / time.Since(t0).Minutes()
}

func journalEnd(t *testing.T, e *env, ctx context.Context) uint64 {
	t.Helper()
	js, err := e.client.Journal(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) == 0 {
		return 0
	}
	return js[len(js)-1].Index
}

// logMarks and linesSince count each worker's log lines in a window.
func logMarks(e *env) []int {
	m := make([]int, len(e.workers))
	for i, w := range e.workers {
		m[i] = len(w.log.String())
	}
	return m
}

func linesSince(e *env, marks []int) (lines, warnings map[string]int) {
	lines, warnings = map[string]int{}, map[string]int{}
	for i, w := range e.workers {
		s := w.log.String()
		if marks[i] <= len(s) {
			lines[w.name] = strings.Count(s[marks[i]:], "\n")
			warnings[w.name] = strings.Count(s[marks[i]:], `"level":"warn"`) + strings.Count(s[marks[i]:], `"level":"error"`)
		}
	}
	return lines, warnings
}

// checkViewAgeAtStart: every relocation a worker started, it started from
// a view younger than max_view_age (the worker's "migration starting" line
// carries the age).
func checkViewAgeAtStart(t *testing.T, e *env) {
	t.Helper()
	n := 0
	for _, w := range e.workers {
		for _, line := range strings.Split(w.log.String(), "\n") {
			if !strings.Contains(line, `"migration starting"`) {
				continue
			}
			var l struct {
				Age *float64 `json:"view_age_s"`
				VM  string   `json:"vm"`
			}
			if err := json.Unmarshal([]byte(line), &l); err != nil || l.Age == nil {
				t.Errorf("%s: a migration start without its view's age: %s", w.name, line)
				continue
			}
			n++
			if *l.Age > maxViewAge {
				t.Errorf("%s: relocation of %s started from a view %.1f s old (max_view_age %d)", w.name, l.VM, *l.Age, maxViewAge)
			}
		}
	}
	if n == 0 {
		t.Error("no worker started a relocation")
	}
	t.Logf("%d relocations started, each from a view younger than %d s", n, maxViewAge)
}

// poll waits until cond holds (true) or d passes (false).
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
	return true
}
