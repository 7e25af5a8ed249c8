package raftstore

import (
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/raftstore/api"
)

// ---- leases ----

func isVMKey(k string) bool { return strings.HasPrefix(k, api.PrefixVM) }

// grantable decides whether key can be granted now. It returns the
// refusal when it cannot; when it can, needsReconcile says the previous
// holder let a VM lease expire, so the grant must carry needs-reconcile.
func (s *State) grantable(key string, now, lockDelay int64) (needsReconcile bool, refusal *Error) {
	l := s.Leases[key]
	if l == nil {
		return false, nil
	}
	if l.Expiry > now {
		return false, &Error{Code: CodeLeaseHeld, Field: "items",
			Message: "lease " + key + " is held by " + l.Holder, Details: LeaseHeldDetails{Key: key, Holder: l.Holder, Expiry: l.Expiry}}
	}
	if isVMKey(key) {
		if now < l.Expiry+lockDelay {
			return false, &Error{Code: CodeLockDelay, Field: "items",
				Message: "lease " + key + " expired without release; it is locked until the lock-delay ends", Details: LeaseHeldDetails{Key: key, Holder: l.Holder, Expiry: l.Expiry + lockDelay}}
		}
		return true, nil
	}
	return false, nil
}

func validTTL(ms int64) *Error {
	if ms <= 0 || ms > MaxTTL.Milliseconds() { // compared before any multiplication: no overflow
		return badRequest("ttl_ms", "ttl_ms must be between 1 and %d, got %d", MaxTTL.Milliseconds(), ms)
	}
	return nil
}

func (s *State) acquire(index uint64, now int64, req *AcquireRequest) *Result {
	if req.Holder == "" {
		return refused(badRequest("holder", "a holder is required"))
	}
	if e := badText("holder", req.Holder, maxShortString, false); e != nil {
		return refused(e)
	}
	if req.LockDelayMillis < 0 || req.LockDelayMillis > MaxTTL.Milliseconds() {
		return refused(badRequest("lock_delay_ms", "lock_delay_ms must be 0 to %d", MaxTTL.Milliseconds()))
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
		for k, v := range it.Attrs {
			if e := badText("items", k, maxShortString, false); e != nil {
				return refused(e)
			}
			if e := badText("items", v, maxShortString, false); e != nil {
				return refused(e)
			}
		}
		if strings.HasPrefix(it.Key, api.PrefixReserve) {
			// capacity promised to a negotiation: its demand must be real
			if _, e := demandAttr(it.Attrs, "cpu_mhz", maxDemandMHz); e != nil {
				return refused(e)
			}
			if _, e := demandAttr(it.Attrs, "mem_mb", maxDemandMB); e != nil {
				return refused(e)
			}
		}
		if it.AnyOf < 0 || it.AnyOf > 1024 {
			return &Result{Error: badRequest("items", "item %d: any_of must be between 0 and 1024", i)}
		}
		if it.AnyOf == 0 {
			if p := keyProblem(it.Key); p != "" {
				return refused(badRequest("items", "item %d: key %q %s", i, it.Key, p))
			}
			if taken[it.Key] {
				return &Result{Error: badRequest("items", "key %s is listed twice", it.Key)}
			}
			nr, e := s.grantable(it.Key, now, lockDelay)
			if e != nil {
				return &Result{Error: e}
			}
			keys[i], taken[it.Key] = it.Key, true
			if nr {
				reconcile[it.Key] = true
			}
			continue
		}
		if p := keyProblem(it.Key + "0"); p != "" {
			return refused(badRequest("items", "item %d: prefix %q is not a valid key prefix: a key %s", i, it.Key, p))
		}
		var last *Error
		for n := 0; n < it.AnyOf; n++ {
			k := it.Key + strconv.Itoa(n)
			if taken[k] {
				continue
			}
			nr, e := s.grantable(k, now, lockDelay)
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
			return &Result{Error: &Error{Code: CodeLeaseHeld, Field: "items", Message: msg, Details: last.Details}}
		}
	}
	fresh := 0
	for _, k := range keys {
		if _, held := s.Leases[k]; !held {
			fresh++
		}
	}
	if len(s.Leases)+fresh > maxLeases {
		return refused(errf(CodeQuota, "items", "the store holds %d leases, its limit", maxLeases))
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
			return &Error{Code: CodeStaleToken, Field: "keys", Message: "lease " + k + " is not held"}
		case l.Holder != req.Holder || l.Token != req.Token:
			return &Error{Code: CodeStaleToken, Field: "token",
				Message: "lease " + k + " is held by " + l.Holder + " under token " + strconv.FormatUint(l.Token, 10),
				Details: LeaseHeldDetails{Key: k, Holder: l.Holder, Expiry: l.Expiry}}
		case !allowExpired && l.Expiry <= now:
			return &Error{Code: CodeStaleToken, Field: "keys", Message: "lease " + k + " has expired"}
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
// SweepRequest is what the leader's sweep carries: the workers it heard
// nothing from within the worker TTL.
type SweepRequest struct {
	Down []string `json:"down,omitempty"`
}

// sweepDue reports whether a sweep would change anything: a lease to
// drop, or a worker down for an hour to forget.
func (s *State) sweepDue(now int64) bool {
	for k, l := range s.Leases {
		if l.Expiry <= now && (!isVMKey(k) || now >= l.Expiry+vmRetention) {
			return true
		}
	}
	for _, w := range s.Workers {
		if workerForgotten(w, now) {
			return true
		}
	}
	return false
}

const vmRetention = int64(10 * time.Minute)

// workerForgotten: a worker marked down an hour ago is dropped. A live
// one never is, however long ago it was last written.
func workerForgotten(w *Worker, now int64) bool {
	return w.Down && now-w.LastSeen > int64(time.Hour)
}

func (s *State) sweep(now int64, req *SweepRequest) *Result {
	for _, id := range req.Down {
		if w := s.Workers[id]; w != nil && !w.Down {
			w.Down, w.LastSeen = true, now
			s.RosterIndex = s.LastIndex
		}
	}
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
		if workerForgotten(w, now) {
			delete(s.Workers, id)
			s.RosterIndex = s.LastIndex
		}
	}
	return okResult(map[string]int{"dropped": dropped})
}
