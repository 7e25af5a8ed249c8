package raftstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits on what a command may carry. The HTTP layer enforces them first;
// the state machine enforces them again so that no log entry can break it.
const (
	MaxPolicyBytes   = 1 << 20
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
	Policies     map[string]*Policy       `json:"policies"`
	Leases       map[string]*Lease        `json:"leases"`
	Workers      map[string]*Worker       `json:"workers"`
	Journal      []JournalEntry           `json:"journal"`
	JournalNext  uint64                   `json:"journal_next"`
	Members      map[string]MemberRequest `json:"members"`
	Hosts        map[string]*HostState    `json:"hosts,omitempty"`
	Requests     map[string]*Result       `json:"requests"`
	RequestOrder []string                 `json:"request_order"`
	LastTime     int64                    `json:"last_time"`
	LastIndex    uint64                   `json:"last_index"`
}

func newState() *State {
	return &State{
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
	if c.RequestID != "" {
		if cached, ok := s.Requests[c.RequestID]; ok {
			return cached // results are never changed once made
		}
	}
	r := s.dispatch(index, now, prev, c)
	if c.RequestID != "" {
		s.Requests[c.RequestID] = r
		s.RequestOrder = append(s.RequestOrder, c.RequestID)
		for len(s.RequestOrder) > maxRequestMemory {
			delete(s.Requests, s.RequestOrder[0])
			s.RequestOrder = s.RequestOrder[1:]
		}
	}
	return r
}

func decodeBody[T any](c *Command) (*T, *Error) {
	var v T
	if err := json.Unmarshal(c.Body, &v); err != nil {
		return nil, badRequest("body", "cannot decode %s command: %v", c.Type, err)
	}
	return &v, nil
}

func (s *State) dispatch(index uint64, now, prev int64, c *Command) *Result {
	switch c.Type {
	case cmdPush:
		req, e := decodeBody[PushRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.push(now, req)
	case cmdActivate:
		req, e := decodeBody[ActivateRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.activate(now, req)
	case cmdAcquire:
		req, e := decodeBody[AcquireRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.acquire(index, now, req)
	case cmdRenew:
		req, e := decodeBody[RenewRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.renew(now, req)
	case cmdRelease:
		req, e := decodeBody[RenewRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.release(now, req)
	case cmdHeartbeat:
		req, e := decodeBody[HeartbeatRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.heartbeat(now, req)
	case cmdJournal:
		req, e := decodeBody[JournalRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.appendJournal(now, req)
	case cmdMember:
		req, e := decodeBody[MemberRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		s.Members[req.ID] = *req
		return okResult(req)
	case cmdRemoveMember:
		req, e := decodeBody[MemberRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		delete(s.Members, req.ID)
		return okResult(req)
	case cmdLeaderExtend:
		return s.extendLeases(now, prev)
	case cmdSweep:
		return s.sweep(now)
	case cmdRestore:
		return s.restore(c)
	case cmdHostDrain:
		req, e := decodeBody[HostRequest](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.hostDrain(now, req)
	case cmdHostReport:
		req, e := decodeBody[HostReport](c)
		if e != nil {
			return &Result{Error: e}
		}
		return s.hostReport(now, req)
	}
	if c.Flags&FlagIgnoreUnknown != 0 {
		return okResult(map[string]string{"ignored": c.Type})
	}
	return &Result{Error: badRequest("type", "unknown command type %q", c.Type)}
}

// ---- policies ----

func (s *State) push(now int64, req *PushRequest) *Result {
	if !policyNameRe.MatchString(req.Name) {
		return &Result{Error: badRequest("name", "policy name %q must match %s", req.Name, policyNameRe)}
	}
	if len(req.Text) > MaxPolicyBytes {
		return &Result{Error: errf(http.StatusRequestEntityTooLarge, "too_large", "text", "policy text is %d bytes, over the limit of %d", len(req.Text), MaxPolicyBytes)}
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
		return &Result{Error: &Error{Status: http.StatusConflict, Code: "version_conflict", Field: "expect_version",
			Message: "expected version " + strconv.Itoa(*req.ExpectVersion) + ", the latest is " + strconv.Itoa(latest),
			Details: map[string]int{"latest": latest, "active": active}}}
	}
	if p != nil && p.Active > 0 && p.Versions[p.Active-1].SHA256 == sha {
		return okResult(PushResult{Name: req.Name, Version: p.Active, Active: p.Active, SHA256: sha, Unchanged: true})
	}
	if p == nil {
		p = &Policy{Name: req.Name}
		s.Policies[req.Name] = p
	}
	v := PolicyVersion{Version: latest + 1, Text: req.Text, SHA256: sha, Author: req.Author, Message: req.Message, Time: now}
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
		return &Result{Error: errf(http.StatusNotFound, "not_found", "name", "no policy %q", req.Name)}
	}
	to, reason := req.Version, "activate"
	if req.Rollback {
		reason = "rollback"
		if len(p.Activations) == 0 || p.Activations[len(p.Activations)-1].From == 0 {
			return &Result{Error: errf(http.StatusConflict, "no_previous", "name", "policy %q has no previously active version to roll back to", req.Name)}
		}
		to = p.Activations[len(p.Activations)-1].From
	}
	if to < 1 || to > len(p.Versions) {
		return &Result{Error: errf(http.StatusNotFound, "not_found", "version", "policy %q has no version %d (latest is %d)", req.Name, to, len(p.Versions))}
	}
	if p.Active == to {
		return okResult(ActivateResult{Name: req.Name, From: to, Active: to, Unchanged: true})
	}
	from := p.Active
	p.Activations = append(p.Activations, Activation{Who: req.Who, Time: now, From: from, To: to, Reason: reason})
	p.Active = to
	return okResult(ActivateResult{Name: req.Name, From: from, Active: to})
}

// ---- leases ----

func isVMKey(k string) bool { return strings.HasPrefix(k, "vm/") }

// free reports whether key can be granted now, and whether the grant must
// carry needs-reconcile; otherwise it returns the refusal.
func (s *State) free(key string, now, lockDelay int64) (bool, *Error) {
	l := s.Leases[key]
	if l == nil {
		return false, nil
	}
	if l.Expiry > now {
		return false, &Error{Status: http.StatusConflict, Code: "lease_held", Field: "items",
			Message: "lease " + key + " is held by " + l.Holder, Details: LeaseHeldDetails{Key: key, Holder: l.Holder, Expiry: l.Expiry}}
	}
	if isVMKey(key) {
		if now < l.Expiry+lockDelay {
			return false, &Error{Status: http.StatusConflict, Code: "lock_delay", Field: "items",
				Message: "lease " + key + " expired without release; it is locked until the lock-delay ends", Details: LeaseHeldDetails{Key: key, Holder: l.Holder, Expiry: l.Expiry + lockDelay}}
		}
		return true, nil
	}
	return false, nil
}

func validTTL(ms int64) *Error {
	if ms <= 0 || time.Duration(ms)*time.Millisecond > MaxTTL {
		return badRequest("ttl_ms", "ttl must be between 1ms and %s, got %dms", MaxTTL, ms)
	}
	return nil
}

func (s *State) acquire(index uint64, now int64, req *AcquireRequest) *Result {
	if req.Holder == "" || len(req.Holder) > 200 {
		return &Result{Error: badRequest("holder", "holder must be 1 to 200 characters")}
	}
	if e := validTTL(req.TTLMillis); e != nil {
		return &Result{Error: e}
	}
	if len(req.Items) == 0 || len(req.Items) > MaxLeaseItems {
		return &Result{Error: badRequest("items", "between 1 and %d items, got %d", MaxLeaseItems, len(req.Items))}
	}
	lockDelay := req.LockDelayMillis * int64(time.Millisecond)
	keys := make([]string, len(req.Items))
	reconcile := map[string]bool{}
	taken := map[string]bool{}
	for i, it := range req.Items {
		if len(it.Attrs) > maxAttrs {
			return &Result{Error: badRequest("items", "item %d has more than %d attributes", i, maxAttrs)}
		}
		if it.AnyOf < 0 || it.AnyOf > 1024 {
			return &Result{Error: badRequest("items", "item %d: any_of must be between 0 and 1024", i)}
		}
		if it.AnyOf == 0 {
			if !keyRe.MatchString(it.Key) {
				return &Result{Error: badRequest("items", "item %d: key %q must look like vm/<id>, host/<id>/slot/<n> or reserve/<host>/<id>", i, it.Key)}
			}
			if taken[it.Key] {
				return &Result{Error: badRequest("items", "key %s is listed twice", it.Key)}
			}
			nr, e := s.free(it.Key, now, lockDelay)
			if e != nil {
				return &Result{Error: e}
			}
			keys[i], taken[it.Key] = it.Key, true
			if nr {
				reconcile[it.Key] = true
			}
			continue
		}
		if !keyRe.MatchString(it.Key + "0") {
			return &Result{Error: badRequest("items", "item %d: prefix %q is not a valid key prefix", i, it.Key)}
		}
		var last *Error
		for n := 0; n < it.AnyOf; n++ {
			k := it.Key + strconv.Itoa(n)
			if taken[k] {
				continue
			}
			nr, e := s.free(k, now, lockDelay)
			if e != nil {
				last = e
				continue
			}
			keys[i], taken[k], last = k, true, nil
			if nr {
				reconcile[k] = true
			}
			break
		}
		if keys[i] == "" {
			msg := "all " + strconv.Itoa(it.AnyOf) + " of " + it.Key + "* are held"
			return &Result{Error: &Error{Status: http.StatusConflict, Code: "lease_held", Field: "items", Message: msg, Details: last.Details}}
		}
	}
	ttl := req.TTLMillis * int64(time.Millisecond)
	g := Grant{Holder: req.Holder, Token: index, Expiry: now + ttl, Keys: keys}
	for i, k := range keys {
		s.Leases[k] = &Lease{Key: k, Holder: req.Holder, Token: index, Expiry: now + ttl, TTL: ttl, Granted: now,
			Attrs: req.Items[i].Attrs, NeedsReconcile: reconcile[k]}
		if reconcile[k] {
			g.NeedsReconcile = append(g.NeedsReconcile, k)
		}
	}
	return okResult(g)
}

// check verifies that every key is held by holder under token.
func (s *State) check(now int64, req *RenewRequest, allowExpired bool) *Error {
	if len(req.Keys) == 0 || len(req.Keys) > MaxLeaseItems {
		return badRequest("keys", "between 1 and %d keys, got %d", MaxLeaseItems, len(req.Keys))
	}
	for _, k := range req.Keys {
		l := s.Leases[k]
		switch {
		case l == nil:
			return &Error{Status: http.StatusConflict, Code: "stale_token", Field: "keys", Message: "lease " + k + " is not held"}
		case l.Holder != req.Holder || l.Token != req.Token:
			return &Error{Status: http.StatusConflict, Code: "stale_token", Field: "token",
				Message: "lease " + k + " is held by " + l.Holder + " under token " + strconv.FormatUint(l.Token, 10),
				Details: LeaseHeldDetails{Key: k, Holder: l.Holder, Expiry: l.Expiry}}
		case !allowExpired && l.Expiry <= now:
			return &Error{Status: http.StatusConflict, Code: "stale_token", Field: "keys", Message: "lease " + k + " has expired"}
		}
	}
	return nil
}

func (s *State) renew(now int64, req *RenewRequest) *Result {
	if e := validTTL(req.TTLMillis); e != nil {
		return &Result{Error: e}
	}
	if e := s.check(now, req, false); e != nil {
		return &Result{Error: e}
	}
	ttl := req.TTLMillis * int64(time.Millisecond)
	for _, k := range req.Keys {
		l := s.Leases[k]
		l.Expiry, l.TTL = now+ttl, ttl
	}
	return okResult(Grant{Holder: req.Holder, Token: req.Token, Expiry: now + ttl, Keys: req.Keys})
}

func (s *State) release(now int64, req *RenewRequest) *Result {
	// The holder may release a lease that has expired but not been taken
	// over: it is telling the store it finished.
	if e := s.check(now, req, true); e != nil {
		return &Result{Error: e}
	}
	for _, k := range req.Keys {
		delete(s.Leases, k)
	}
	return okResult(map[string]any{"released": req.Keys})
}

// extendLeases is applied by a new leader: every lease that had time left
// when the previous command was applied gets that time again from now, so
// that an election never expires a lease.
func (s *State) extendLeases(now, prev int64) *Result {
	n := 0
	for _, l := range s.Leases {
		if l.Expiry > prev {
			l.Expiry = now + (l.Expiry - prev)
			n++
		}
	}
	return okResult(map[string]int{"extended": n})
}

// sweep drops leases that are expired (and past the lock-delay for VM
// leases, which stay listed as needs-reconcile until then) and workers not
// seen for an hour. The leader applies it every second, which also keeps
// LastTime fresh for extendLeases.
func (s *State) sweep(now int64) *Result {
	const vmRetention = int64(10 * time.Minute)
	dropped := 0
	for k, l := range s.Leases {
		if l.Expiry > now {
			continue
		}
		if isVMKey(k) && now < l.Expiry+vmRetention {
			continue
		}
		delete(s.Leases, k)
		dropped++
	}
	for id, w := range s.Workers {
		if now-w.LastSeen > int64(time.Hour) {
			delete(s.Workers, id)
		}
	}
	return okResult(map[string]int{"dropped": dropped})
}

// ---- workers and journal ----

func (s *State) heartbeat(now int64, req *HeartbeatRequest) *Result {
	if req.ID == "" || len(req.ID) > 200 {
		return &Result{Error: badRequest("id", "worker id must be 1 to 200 characters")}
	}
	if len(req.Host) > 200 || len(req.Addr) > 200 {
		return &Result{Error: badRequest("addr", "host and addr must be at most 200 characters")}
	}
	w := &Worker{ID: req.ID, Host: req.Host, Addr: req.Addr, LastSeen: now}
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
func (s *State) restore(c *Command) *Result {
	b, err := decodeState(strings.NewReader(string(c.Body)))
	if err != nil {
		return &Result{Error: badRequest("body", "%v", err)}
	}
	s.Policies, s.Leases, s.Workers, s.Hosts = b.Policies, b.Leases, b.Workers, b.Hosts
	s.Journal, s.JournalNext = b.Journal, max(b.JournalNext, 1)
	n := 0
	for _, p := range s.Policies {
		n += len(p.Versions)
	}
	return okResult(map[string]int{"policies": len(s.Policies), "versions": n, "leases": len(s.Leases)})
}

// ---- hosts ----

func validHostName(n string) bool { return n != "" && len(n) <= 200 && keyRe.MatchString("host/"+n) }

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
	h := s.host(req.Name)
	h.Drain, h.RequestedBy, h.RequestedAt, h.Updated = req.Drain, req.Who, now, now
	if req.Drain {
		h.State, h.Reason = "draining", "requested"
	} else {
		h.State, h.Reason = "", "drain withdrawn"
	}
	return okResult(h)
}

func (s *State) hostReport(now int64, req *HostReport) *Result {
	if !validHostName(req.Name) {
		return &Result{Error: badRequest("name", "host name %q is not valid", req.Name)}
	}
	if req.VMsLeft < 0 || len(req.State) > 64 || len(req.Reason) > 1000 {
		return &Result{Error: badRequest("state", "state, reason or vms_left out of range")}
	}
	h := s.host(req.Name)
	h.State, h.Reason, h.VMsLeft, h.Updated = req.State, req.Reason, req.VMsLeft, now
	return okResult(h)
}

// ---- reads ----

func (s *State) listLeases(prefix string, now int64) []LeaseView {
	var out []LeaseView
	for k, l := range s.Leases {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		v := LeaseView{Lease: *l, State: "held"}
		if l.Expiry <= now {
			if !isVMKey(k) {
				continue
			}
			v.State = "needs-reconcile"
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (s *State) liveWorkers(now int64, ttl time.Duration) []Worker {
	var out []Worker
	for _, w := range s.Workers {
		if now-w.LastSeen <= int64(ttl) {
			out = append(out, *w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func sortBy[T any](xs []T, less func(a, b T) bool) {
	sort.Slice(xs, func(i, j int) bool { return less(xs[i], xs[j]) })
}

func (s *State) journalSince(since uint64, max int) []JournalEntry {
	i := sort.Search(len(s.Journal), func(i int) bool { return s.Journal[i].Index > since })
	out := s.Journal[i:]
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return append([]JournalEntry(nil), out...)
}
