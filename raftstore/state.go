package raftstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/raftstore/api"
)

// Limits on what a command may carry. The HTTP layer enforces them first;
// the state machine enforces them again so that no log entry can break it.
const (
	MaxPolicyBytes   = 256 << 10 // a policy is a few KB; a bound keeps validation cheap
	MaxLeaseItems    = 64
	MaxTTL           = time.Hour
	MaxJournalBatch  = 1000
	maxRequestMemory = 20000 // request ids remembered for deduplication
	maxAttrs         = 32
)

var (
	policyNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	keyRe        = regexp.MustCompile(`^(vm|host|reserve|cool|lock)/[A-Za-z0-9_.:@/-]{1,200}$`)
)

// State is everything the store keeps. It is changed only by applying
// commands, deterministically: the same commands give the same state and
// the same snapshot bytes.
type State struct {
	// V is the version of the state's encoding (snapshots, backups,
	// restores): stateVersion when written; absent (0) in those written
	// before it was versioned, which read as version 1. A member refuses
	// a state of a newer version rather than misread it.
	V            int                      `json:"v,omitempty"`
	Policies     map[string]*Policy       `json:"policies"`
	Leases       map[string]*Lease        `json:"leases"`
	Workers      map[string]*Worker       `json:"workers"`
	Journal      []JournalEntry           `json:"journal"`
	JournalNext  uint64                   `json:"journal_next"`
	Members      map[string]MemberRequest `json:"members"`
	Hosts        map[string]*HostState    `json:"hosts,omitempty"`
	Tokens       map[string]*Token        `json:"tokens,omitempty"` // bearer tokens by name; a restore keeps the cluster's own
	Requests     map[string]*Result       `json:"requests"`
	RequestOrder []string                 `json:"request_order"`
	LastTime     int64                    `json:"last_time"`
	LastIndex    uint64                   `json:"last_index"`
	// RosterIndex is the raft index of the last change to the workers (one
	// registered, moved, marked down, back, forgotten) or to a host's drain
	// request: a worker reads the roster again only when it moves.
	RosterIndex uint64 `json:"roster_index,omitempty"`

	tokensByHash map[string]*Token // Tokens by hash (tokens.go), never encoded
}

func newState() *State {
	return &State{V: stateVersion,
		Policies: map[string]*Policy{}, Leases: map[string]*Lease{}, Workers: map[string]*Worker{},
		Members: map[string]MemberRequest{}, Requests: map[string]*Result{}, Hosts: map[string]*HostState{}, JournalNext: 1,
	}
}

// apply runs one decoded command at a raft index. It never panics on the
// command's content: every refusal is a Result with an Error.
func (s *State) apply(index uint64, c *Command) *Result {
	now, prev := c.Time, s.LastTime
	if now < prev {
		now = prev // the leader's clock must not run backwards for the FSM
	}
	s.LastTime, s.LastIndex = now, index
	var fp string
	if c.RequestID != "" {
		if len(c.RequestID) > maxShortString {
			return refused(badRequest("request_id", "a request id is at most %d bytes", maxShortString))
		}
		fp = fingerprint(c)
		if cached, ok := s.Requests[c.RequestID]; ok {
			if cached.Fingerprint != "" && cached.Fingerprint != fp {
				return refused(errf(CodeIdempotencyConflict, "request_id", "request id %q was first used for another request; use a new id for a new request", c.RequestID))
			}
			return cached // results are never changed once made
		}
	}
	r := s.dispatch(applied{index: index, now: now, prev: prev}, c)
	if r.Error == nil && auditable(c) {
		s.audit(now, c, auditLine(c))
	}
	if c.RequestID != "" {
		r.Fingerprint = fp
		s.Requests[c.RequestID] = r
		s.RequestOrder = append(s.RequestOrder, c.RequestID)
		for len(s.RequestOrder) > maxRequestMemory {
			delete(s.Requests, s.RequestOrder[0])
			s.RequestOrder = s.RequestOrder[1:]
		}
	}
	return r
}

// ---- policies ----

func (s *State) push(now int64, req *PushRequest) *Result {
	if !policyNameRe.MatchString(req.Name) {
		return &Result{Error: badRequest("name", "policy name %q must match %s", req.Name, policyNameRe)}
	}
	if e := badText("text", req.Text, MaxPolicyBytes, true); e != nil {
		return refused(e)
	}
	if e := badText("author", req.Author, maxShortString, false); e != nil {
		return refused(e)
	}
	if e := badText("author", req.Note, maxLongString, false); e != nil {
		return refused(e)
	}
	if e := badText("message", req.Message, maxLongString, true); e != nil {
		return refused(e)
	}
	if strings.TrimSpace(req.Text) == "" {
		return &Result{Error: badRequest("text", "policy text is empty")}
	}
	sum := sha256.Sum256([]byte(req.Text))
	sha := hex.EncodeToString(sum[:])
	p := s.Policies[req.Name]
	latest := 0
	if p != nil {
		latest = len(p.Versions)
	}
	if req.ExpectVersion != nil && *req.ExpectVersion != latest {
		active := 0
		if p != nil {
			active = p.Active
		}
		return &Result{Error: &Error{Code: CodeVersionConflict, Field: "expect_version",
			Message: "expected version " + strconv.Itoa(*req.ExpectVersion) + ", the latest is " + strconv.Itoa(latest),
			Details: map[string]int{"latest": latest, "active": active}}}
	}
	if p != nil && p.Active > 0 && p.Versions[p.Active-1].SHA256 == sha {
		return okResult(PushResult{Name: req.Name, Version: p.Active, Active: p.Active, SHA256: sha, Unchanged: true})
	}
	if p == nil && len(s.Policies) >= maxPolicies {
		return refused(errf(CodeQuota, "name", "the store holds %d policies, its limit", maxPolicies))
	}
	if p != nil && len(p.Versions) >= maxVersions {
		return refused(errf(CodeQuota, "name", "policy %s has %d versions, its limit", req.Name, maxVersions))
	}
	if p == nil {
		p = &Policy{Name: req.Name}
		s.Policies[req.Name] = p
	}
	v := PolicyVersion{Version: latest + 1, Text: req.Text, SHA256: sha, Author: req.Author, Message: req.Message, Note: req.Note, Time: now}
	p.Versions = append(p.Versions, v)
	if !req.NoActivate {
		p.Activations = append(p.Activations, Activation{Who: req.Author, Time: now, From: p.Active, To: v.Version, Reason: "push"})
		p.Active = v.Version
	}
	return okResult(PushResult{Name: req.Name, Version: v.Version, Active: p.Active, SHA256: sha})
}

func (s *State) activate(now int64, req *ActivateRequest) *Result {
	p := s.Policies[req.Name]
	if p == nil {
		return &Result{Error: errf(CodeNotFound, "name", "no policy %q", req.Name)}
	}
	if e := badText("who", req.Who, maxShortString, false); e != nil {
		return refused(e)
	}
	if e := badText("who", req.Note, maxLongString, false); e != nil {
		return refused(e)
	}
	to, reason := req.Version, "activate"
	if req.Rollback {
		reason = "rollback"
		if len(p.Activations) == 0 || p.Activations[len(p.Activations)-1].From == 0 {
			return &Result{Error: errf(CodeNoPrevious, "name", "policy %q has no previously active version to roll back to", req.Name)}
		}
		to = p.Activations[len(p.Activations)-1].From
	}
	if to < 1 || to > len(p.Versions) {
		return &Result{Error: errf(CodeNotFound, "version", "policy %q has no version %d (latest is %d)", req.Name, to, len(p.Versions))}
	}
	if p.Active == to {
		return okResult(ActivateResult{Name: req.Name, From: to, Active: to, Unchanged: true})
	}
	from := p.Active
	p.Activations = append(p.Activations, Activation{Who: req.Who, Time: now, From: from, To: to, Reason: reason, Note: req.Note})
	p.Active = to
	return okResult(ActivateResult{Name: req.Name, From: from, Active: to})
}

// ---- workers and journal ----

func (s *State) heartbeat(now int64, req *HeartbeatRequest) *Result {
	if req.ID == "" {
		return refused(badRequest("id", "a worker id is required"))
	}
	for _, f := range []struct{ name, v string }{{"id", req.ID}, {"host", req.Host}, {"addr", req.Addr}, {"cluster", req.Cluster}} {
		if e := badText(f.name, f.v, maxShortString, false); e != nil {
			return refused(e)
		}
	}
	if _, known := s.Workers[req.ID]; !known && len(s.Workers) >= maxWorkers {
		return refused(errf(CodeQuota, "id", "the store holds %d workers, its limit", maxWorkers))
	}
	if old := s.Workers[req.ID]; old == nil || old.Down || old.Host != req.Host || old.Addr != req.Addr || old.Cluster != req.Cluster {
		s.RosterIndex = s.LastIndex
	}
	w := &Worker{ID: req.ID, Host: req.Host, Cluster: req.Cluster, Addr: req.Addr, LastSeen: now}
	s.Workers[req.ID] = w
	return okResult(w)
}

func (s *State) appendJournal(now int64, req *JournalRequest) *Result {
	if len(req.Entries) == 0 || len(req.Entries) > MaxJournalBatch {
		return &Result{Error: badRequest("entries", "between 1 and %d entries, got %d", MaxJournalBatch, len(req.Entries))}
	}
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultJournalLimit
	}
	for i, e := range req.Entries {
		if e.DurationMS < 0 || e.DurationMS > maxJournalDuration || e.Version < 0 {
			return refused(badRequest("entries", "entry %d: duration_ms must be 0 to %d and version 0 or more", i, maxJournalDuration))
		}
		for _, f := range []struct {
			name, v string
			max     int
		}{{"kind", e.Kind, 64}, {"interaction", e.Interaction, maxShortString}, {"policy", e.Policy, maxShortString}, {"vm", e.VM, maxShortString},
			{"from", e.From, maxShortString}, {"to", e.To, maxShortString}, {"outcome", e.Outcome, 64}, {"reason", e.Reason, maxLongString}, {"worker", e.Worker, maxShortString}, {"fault", e.Fault, 128}} {
			if err := badText(f.name, f.v, f.max, f.name == "reason"); err != nil {
				err.Message = fmt.Sprintf("entry %d: %s", i, err.Message)
				return refused(err)
			}
		}
	}
	first := s.JournalNext
	for _, e := range req.Entries {
		e.Index, e.Time = s.JournalNext, now
		s.JournalNext++
		s.Journal = append(s.Journal, e)
	}
	if over := len(s.Journal) - limit; over > 0 {
		s.Journal = append([]JournalEntry(nil), s.Journal[over:]...)
	}
	return okResult(map[string]uint64{"first": first, "last": s.JournalNext - 1})
}

// restore replaces the state with a backup, keeping the cluster's own
// member addresses and request memory, and the clocks monotonic. Fencing
// tokens stay safe: later grants use later raft indexes.
func (s *State) restore(index uint64, c *Command) *Result {
	b, err := decodeState(strings.NewReader(string(c.Body)))
	if err != nil {
		return &Result{Error: badRequest("body", "%v", err)}
	}
	// Fencing tokens must keep growing for every key: a restored lease
	// whose token is not below this index is re-fenced at it, so that no
	// later grant gets a smaller token than one already handed out.
	for _, l := range b.Leases {
		if l.Token >= index {
			l.Token = index
		}
	}
	s.Policies, s.Leases, s.Workers, s.Hosts = b.Policies, b.Leases, b.Workers, b.Hosts
	s.Journal, s.JournalNext = b.Journal, max(b.JournalNext, 1)
	s.RosterIndex = index
	n := 0
	for _, p := range s.Policies {
		n += len(p.Versions)
	}
	return okResult(map[string]int{"policies": len(s.Policies), "versions": n, "leases": len(s.Leases)})
}

// ---- hosts ----

func (s *State) host(name string) *HostState {
	if s.Hosts == nil {
		s.Hosts = map[string]*HostState{}
	}
	h := s.Hosts[name]
	if h == nil {
		h = &HostState{Name: name}
		s.Hosts[name] = h
	}
	return h
}

func (s *State) hostDrain(now int64, req *HostRequest) *Result {
	if !validHostName(req.Name) {
		return &Result{Error: badRequest("name", "host name %q is not valid", req.Name)}
	}
	if e := badText("who", req.Who, maxShortString, false); e != nil {
		return refused(e)
	}
	if _, known := s.Hosts[req.Name]; !known && len(s.Hosts) >= maxHosts {
		return refused(errf(CodeQuota, "name", "the store holds %d hosts, its limit", maxHosts))
	}
	h := s.host(req.Name)
	if h.Drain != req.Drain {
		s.RosterIndex = s.LastIndex
	}
	h.Drain, h.RequestedBy, h.RequestedAt, h.Updated = req.Drain, req.Who, now, now
	if req.Drain {
		h.State, h.Reason = api.HostDraining, "requested"
	} else {
		h.State, h.Reason = "", "drain withdrawn"
	}
	return okResult(h)
}

func (s *State) hostReport(now int64, req *HostReport) *Result {
	if !validHostName(req.Name) {
		return &Result{Error: badRequest("name", "host name %q is not valid", req.Name)}
	}
	if req.VMsLeft < 0 || req.VMsLeft > 1<<20 {
		return refused(badRequest("vms_left", "vms_left must be 0 to %d", 1<<20))
	}
	if e := badText("state", req.State, 64, false); e != nil {
		return refused(e)
	}
	if e := badText("reason", req.Reason, maxLongString, true); e != nil {
		return refused(e)
	}
	if _, known := s.Hosts[req.Name]; !known && len(s.Hosts) >= maxHosts {
		return refused(errf(CodeQuota, "name", "the store holds %d hosts, its limit", maxHosts))
	}
	h := s.host(req.Name)
	h.State, h.Reason, h.VMsLeft, h.Updated = req.State, req.Reason, req.VMsLeft, now
	return okResult(h)
}
