package raftstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley/raftstore/api"
)

// Bounds on what the store keeps. The state machine enforces them on every
// command (and on a restore), so that no client, however hostile, can make
// the state grow without end or hold values a worker would misread.
const (
	maxPolicies        = 1000   // policy names
	maxVersions        = 10000  // versions of one policy
	maxLeases          = 100000 // leases held at once
	maxWorkers         = 10000  // registered workers
	maxHosts           = 10000  // hosts with a drain request or a report
	maxMembers         = 64     // member records
	maxShortString     = 200    // ids, holders, names, addresses, attribute values
	maxLongString      = 4096   // messages, reasons, interaction ids
	maxDemandMHz       = 1 << 30
	maxDemandMB        = 1 << 40
	maxJournalDuration = int64(30 * 24 * 3600 * 1000) // ms
)

// badText refuses a string that is not valid UTF-8, is longer than max
// bytes, or holds a control or bidirectional formatting character (which
// can make a log line or a table lie about what it shows). Multi-line
// text (policy texts, messages) may hold newlines and tabs.
func badText(field, s string, max int, multiline bool) *Error {
	if !utf8.ValidString(s) {
		return badRequest(field, "%s is not valid UTF-8", field)
	}
	if len(s) > max {
		return errf(CodeTooLarge, field, "%s is %d bytes, over the limit of %d", field, len(s), max)
	}
	for i, r := range s {
		if multiline && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return badRequest(field, "%s holds the control character %U at byte %d", field, r, i)
		}
	}
	return nil
}

// validKey reports why a lease key is not acceptable, or "".
func keyProblem(k string) string {
	if !keyRe.MatchString(k) {
		return "must look like vm/<id>, host/<id>/slot/<n>, reserve/<host>/<id>, cool/<id> or lock/<name>"
	}
	for _, seg := range strings.Split(k, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "has an empty, '.' or '..' segment"
		}
	}
	return ""
}

// validHostName: a host name as keys and paths carry it.
func validHostName(n string) bool {
	return n != "" && len(n) <= maxShortString && !strings.Contains(n, "/") && keyProblem(api.PrefixHost+n) == ""
}

// demandAttr reads a reservation's demand attribute, when it has one: a
// whole number in [0, max]. A negative demand would make a host look emptier than it is.
func demandAttr(attrs map[string]string, name string, max int64) (int64, *Error) {
	v, ok := attrs[name]
	if !ok {
		return 0, nil // no demand stated: it counts as none
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > max {
		return 0, badRequest("items", "attribute %s must be a whole number from 0 to %d, got %q", name, max, v)
	}
	return n, nil
}

// fingerprint identifies what a request asked for, so that a request id
// (an idempotency key) reused for another request is refused instead of
// answered with the first one's result.
func fingerprint(c *Command) string {
	h := sha256.New()
	h.Write([]byte(c.Type))
	h.Write([]byte{0})
	h.Write(c.Body)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// validateState checks a whole state (a restore, or a snapshot being
// read) before anything of it is used: every section present, no null
// entry, keys matching the records they index, every value in range, and
// the invariants of versions and tokens. It returns the first problem.
func validateState(s *State) error {
	if s.Policies == nil || s.Leases == nil || s.Workers == nil || s.Members == nil || s.Requests == nil {
		return fmt.Errorf("a section is missing (policies, leases, workers, members and requests are required)")
	}
	if len(s.Policies) > maxPolicies || len(s.Leases) > maxLeases || len(s.Workers) > maxWorkers || len(s.Hosts) > maxHosts || len(s.Members) > maxMembers {
		return fmt.Errorf("over a quota: at most %d policies, %d leases, %d workers, %d hosts, %d members", maxPolicies, maxLeases, maxWorkers, maxHosts, maxMembers)
	}
	if err := validateTokens(s.Tokens); err != nil {
		return err
	}
	for name, p := range s.Policies {
		if p == nil {
			return fmt.Errorf("policy %q is null", name)
		}
		if p.Name != name || !policyNameRe.MatchString(name) {
			return fmt.Errorf("policy %q: its name is %q; names must match %s", name, p.Name, policyNameRe)
		}
		if len(p.Versions) == 0 || len(p.Versions) > maxVersions {
			return fmt.Errorf("policy %s: %d versions (1 to %d)", name, len(p.Versions), maxVersions)
		}
		for i, v := range p.Versions {
			if v.Version != i+1 {
				return fmt.Errorf("policy %s: version %d is numbered %d", name, i+1, v.Version)
			}
			if len(v.Text) > MaxPolicyBytes || !utf8.ValidString(v.Text) {
				return fmt.Errorf("policy %s v%d: text over %d bytes or not UTF-8", name, v.Version, MaxPolicyBytes)
			}
			sum := sha256.Sum256([]byte(v.Text))
			if v.SHA256 != hex.EncodeToString(sum[:]) {
				return fmt.Errorf("policy %s v%d: sha256 does not match its text", name, v.Version)
			}
		}
		if p.Active < 0 || p.Active > len(p.Versions) {
			return fmt.Errorf("policy %s: active version %d does not exist", name, p.Active)
		}
		for _, a := range p.Activations {
			if a.From < 0 || a.From > len(p.Versions) || a.To < 1 || a.To > len(p.Versions) {
				return fmt.Errorf("policy %s: an activation names a version that does not exist (%d -> %d)", name, a.From, a.To)
			}
		}
	}
	for key, l := range s.Leases {
		if l == nil {
			return fmt.Errorf("lease %q is null", key)
		}
		if l.Key != key {
			return fmt.Errorf("lease %q: its key is %q", key, l.Key)
		}
		if p := keyProblem(key); p != "" {
			return fmt.Errorf("lease %q: the key %s", key, p)
		}
		if l.Holder == "" || len(l.Holder) > maxShortString || l.Token == 0 || l.TTL < 0 || len(l.Attrs) > maxAttrs {
			return fmt.Errorf("lease %s: needs a holder, a token above 0, a TTL of 0 or more and at most %d attributes", key, maxAttrs)
		}
		if s.LastIndex > 0 && l.Token > s.LastIndex {
			return fmt.Errorf("lease %s: token %d is above the state's last index %d", key, l.Token, s.LastIndex)
		}
		if strings.HasPrefix(key, api.PrefixReserve) {
			if _, e := demandAttr(l.Attrs, "cpu_mhz", maxDemandMHz); e != nil {
				return fmt.Errorf("lease %s: %s", key, e.Message)
			}
			if _, e := demandAttr(l.Attrs, "mem_mb", maxDemandMB); e != nil {
				return fmt.Errorf("lease %s: %s", key, e.Message)
			}
		}
	}
	for id, w := range s.Workers {
		if w == nil || w.ID != id || id == "" || len(id) > maxShortString {
			return fmt.Errorf("worker %q is null or its id does not match", id)
		}
	}
	for name, h := range s.Hosts {
		if h == nil || h.Name != name || !validHostName(name) || h.VMsLeft < 0 {
			return fmt.Errorf("host %q is null, its name does not match, or it is not a valid host name", name)
		}
	}
	for id, m := range s.Members {
		if m.ID != id {
			return fmt.Errorf("member %q: its id is %q", id, m.ID)
		}
	}
	var last uint64
	for _, e := range s.Journal {
		if e.Index <= last || e.Index >= s.JournalNext {
			return fmt.Errorf("journal entry %d is out of order (indexes must grow and stay below journal_next %d)", e.Index, s.JournalNext)
		}
		last = e.Index
	}
	for id, r := range s.Requests {
		if r == nil {
			return fmt.Errorf("remembered request %q is null", id)
		}
	}
	if len(s.RequestOrder) > maxRequestMemory {
		return fmt.Errorf("%d remembered requests, over %d", len(s.RequestOrder), maxRequestMemory)
	}
	for _, id := range s.RequestOrder {
		if _, ok := s.Requests[id]; !ok {
			return fmt.Errorf("request order names %q, which is not remembered", id)
		}
	}
	return nil
}
