package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// A vCenter that misbehaves, on demand (POST /faults on the control API,
// or parley sim's --fault-... flags): an outage (every SDK connection
// closed at once, as a vCenter whose service is down; or every call left
// unanswered, as a hung one), latency on every call, relocations that fail
// with a fault of vCenter's own type, relocations that stall at a fixed
// progress until cancelled, and every session expired (the next call of
// each client answered NotAuthenticated, as after vCenter restarts).

// Outage kinds.
const (
	OutageNone   = "none"
	OutageRefuse = "refuse" // each SDK connection is closed as soon as a request arrives
	OutageHang   = "hang"   // each SDK request waits, unanswered, until the outage ends or its client gives up
)

// Faults is what the simulator does wrong now. The zero value is a healthy
// vCenter.
type Faults struct {
	Outage            string  `json:"outage"`
	LatencyMS         int     `json:"latency_ms"`
	JitterMS          int     `json:"jitter_ms"`
	RelocateFailRate  float64 `json:"relocate_fail_rate"`
	RelocateFault     string  `json:"relocate_fault"` // the fault a failed relocation ends with
	RelocateStallRate float64 `json:"relocate_stall_rate"`
}

// FaultChange is a POST /faults body: any subset of the faults, and
// expire_sessions, which ends every session once.
type FaultChange struct {
	Outage            *string  `json:"outage,omitempty"`
	LatencyMS         *int     `json:"latency_ms,omitempty"`
	JitterMS          *int     `json:"jitter_ms,omitempty"`
	RelocateFailRate  *float64 `json:"relocate_fail_rate,omitempty"`
	RelocateFault     *string  `json:"relocate_fault,omitempty"`
	RelocateStallRate *float64 `json:"relocate_stall_rate,omitempty"`
	ExpireSessions    bool     `json:"expire_sessions,omitempty"`
}

// DefaultRelocateFault is the fault of a failed relocation when none is named.
const DefaultRelocateFault = "InsufficientResourcesFault"

// relocateFaults are the faults a relocation may be made to fail with: the
// ones vMotion ends with in practice.
var relocateFaults = map[string]func() types.BaseMethodFault{
	"InsufficientResourcesFault": func() types.BaseMethodFault { return &types.InsufficientResourcesFault{} },
	"MigrationFault":             func() types.BaseMethodFault { return &types.MigrationFault{} },
	"Timedout":                   func() types.BaseMethodFault { return &types.Timedout{} },
	"HostCommunication":          func() types.BaseMethodFault { return &types.HostCommunication{} },
	"NetworkDisruptedAndConfigRolledBack": func() types.BaseMethodFault {
		return &types.NetworkDisruptedAndConfigRolledBack{}
	},
	"GenericVmConfigFault": func() types.BaseMethodFault { return &types.GenericVmConfigFault{} },
}

func relocateFaultNames() string {
	var n []string
	for k := range relocateFaults {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// faultState is the simulator's faults and what waits on them.
type faultState struct {
	mu      sync.Mutex
	f       Faults
	changed chan struct{} // closed and replaced at each change: hung calls look again
	rng     *rand.Rand
}

func (fs *faultState) get() (Faults, <-chan struct{}) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.changed == nil {
		fs.changed = make(chan struct{})
	}
	return fs.f, fs.changed
}

// Faults returns the faults in force.
func (s *Sim) Faults() Faults {
	f, _ := s.faults.get()
	if f.Outage == "" {
		f.Outage = OutageNone
	}
	return f
}

// SetFaults applies a change: the fields it gives replace the current
// ones, and expire_sessions ends every session. A change with a bad field
// changes nothing.
func (s *Sim) SetFaults(c FaultChange) (Faults, error) {
	fs := &s.faults
	fs.mu.Lock()
	next := fs.f
	if c.Outage != nil {
		next.Outage = *c.Outage
	}
	if c.LatencyMS != nil {
		next.LatencyMS = *c.LatencyMS
	}
	if c.JitterMS != nil {
		next.JitterMS = *c.JitterMS
	}
	if c.RelocateFailRate != nil {
		next.RelocateFailRate = *c.RelocateFailRate
	}
	if c.RelocateFault != nil {
		next.RelocateFault = *c.RelocateFault
	}
	if c.RelocateStallRate != nil {
		next.RelocateStallRate = *c.RelocateStallRate
	}
	if err := next.check(); err != nil {
		fs.mu.Unlock()
		return fs.f, err
	}
	if next.Outage == OutageNone {
		next.Outage = ""
	}
	fs.f = next
	if fs.changed != nil {
		close(fs.changed)
	}
	fs.changed = make(chan struct{})
	fs.mu.Unlock()
	if c.ExpireSessions {
		s.expireSessions()
	}
	return s.Faults(), nil
}

// ClearFaults makes the simulator healthy again.
func (s *Sim) ClearFaults() Faults {
	none, zero, zf, empty := OutageNone, 0, 0.0, ""
	f, _ := s.SetFaults(FaultChange{Outage: &none, LatencyMS: &zero, JitterMS: &zero, RelocateFailRate: &zf, RelocateFault: &empty, RelocateStallRate: &zf})
	return f
}

func (f Faults) check() error {
	switch f.Outage {
	case "", OutageNone, OutageRefuse, OutageHang:
	default:
		return fmt.Errorf("sim: outage %q: want refuse, hang or none", f.Outage)
	}
	if f.LatencyMS < 0 || f.LatencyMS > 600_000 || f.JitterMS < 0 || f.JitterMS > 600_000 {
		return fmt.Errorf("sim: latency_ms and jitter_ms must be 0 to 600000 (got %d, %d)", f.LatencyMS, f.JitterMS)
	}
	if f.JitterMS > f.LatencyMS {
		return fmt.Errorf("sim: jitter_ms (%d) may not exceed latency_ms (%d)", f.JitterMS, f.LatencyMS)
	}
	for name, r := range map[string]float64{"relocate_fail_rate": f.RelocateFailRate, "relocate_stall_rate": f.RelocateStallRate} {
		if r < 0 || r > 1 || r != r {
			return fmt.Errorf("sim: %s must be 0 to 1, got %g", name, r)
		}
	}
	if f.RelocateFailRate+f.RelocateStallRate > 1 {
		return fmt.Errorf("sim: relocate_fail_rate + relocate_stall_rate must not exceed 1 (got %g)", f.RelocateFailRate+f.RelocateStallRate)
	}
	if _, ok := relocateFaults[f.RelocateFault]; f.RelocateFault != "" && !ok {
		return fmt.Errorf("sim: relocate_fault %q: want one of %s", f.RelocateFault, relocateFaultNames())
	}
	return nil
}

// serveFaulty applies the faults to one SDK request, before it is served;
// false means the request was answered (or dropped) here.
func (s *Sim) serveFaulty(w http.ResponseWriter, r *http.Request) bool {
	for {
		f, changed := s.faults.get()
		switch f.Outage {
		case OutageRefuse:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close() // the client sees its connection dropped
					return false
				}
			}
			http.Error(w, "vCenter is not running", http.StatusServiceUnavailable)
			return false
		case OutageHang:
			select {
			case <-changed:
				continue // look again: the outage may have ended, or changed
			case <-r.Context().Done():
				return false
			case <-s.stop:
				return false
			}
		}
		if f.LatencyMS > 0 {
			d := time.Duration(f.LatencyMS) * time.Millisecond
			if f.JitterMS > 0 {
				s.faults.mu.Lock()
				j := s.faultRand().IntN(2*f.JitterMS+1) - f.JitterMS
				s.faults.mu.Unlock()
				d += time.Duration(j) * time.Millisecond
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return false
			case <-s.stop:
				return false
			}
		}
		return true
	}
}

// faultRand is the faults' random source (seeded from the layout's seed);
// under faults.mu.
func (s *Sim) faultRand() *rand.Rand {
	if s.faults.rng == nil {
		s.faults.rng = rand.New(rand.NewPCG(uint64(s.cfg.Seed), 11))
	}
	return s.faults.rng
}

// relocationFate decides, as a relocation starts, whether the faults make
// it fail (with which fault) or stall.
func (s *Sim) relocationFate() (fail types.BaseMethodFault, name string, stall bool) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	f := s.faults.f
	if f.RelocateFailRate == 0 && f.RelocateStallRate == 0 {
		return nil, "", false
	}
	x := s.faultRand().Float64()
	switch {
	case x < f.RelocateFailRate:
		name = f.RelocateFault
		if name == "" {
			name = DefaultRelocateFault
		}
		return relocateFaults[name](), name, false
	case x < f.RelocateFailRate+f.RelocateStallRate:
		return nil, "", true
	}
	return nil, "", false
}

// sessionCookie remembers the session cookies clients send, so that
// expire_sessions can end them all.
func (s *Sim) sessionCookie(r *http.Request) {
	c, err := r.Cookie(soap.SessionCookieName)
	if err != nil || c.Value == "" {
		return
	}
	s.faults.mu.Lock()
	if s.sessions == nil {
		s.sessions = map[string]bool{}
	}
	if len(s.sessions) < 100_000 {
		s.sessions[c.Value] = true
	}
	s.faults.mu.Unlock()
}

// expireSessions ends every session a client has used: each client's next
// call is answered NotAuthenticated, as after vCenter restarts.
func (s *Sim) expireSessions() {
	s.faults.mu.Lock()
	keys := make([]string, 0, len(s.sessions))
	for k := range s.sessions {
		keys = append(keys, k)
	}
	s.sessions = nil
	s.faults.mu.Unlock()
	ctx := s.ctx()
	ctx.Session = &simulator.Session{} // the simulator's own: none of the ended ones
	sm := ctx.Map.SessionManager()
	for _, k := range keys {
		sm.TerminateSession(ctx, &types.TerminateSession{SessionId: []string{k}}) // NotFound for one already gone: nothing to do
	}
}

// faultRoutes serves GET, POST and DELETE /faults.
func (s *Sim) faultRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) { reply(w, s.Faults(), nil) })
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) { reply(w, s.ClearFaults(), nil) })
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var c FaultChange
		if !decode(w, r, &c) {
			return
		}
		f, err := s.SetFaults(c)
		reply(w, f, err)
	})
}

// MarshalJSON keeps "outage" spelled out when healthy.
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults
	if f.Outage == "" {
		f.Outage = OutageNone
	}
	return json.Marshal(plain(f))
}
