package raftstore

import (
	"sort"
	"strings"
	"time"

	"github.com/parleyhq/parley/raftstore/api"
)

// Reads of the state, shared by the HTTP API and the in-memory store. Each
// runs under the FSM's read lock and returns copies or values the caller
// may keep: nothing returned aliases the state.

// PolicySummary is one line of the policy list.
type PolicySummary struct {
	Name     string `json:"name"`
	Active   int    `json:"active"`
	Latest   int    `json:"latest"`
	SHA256   string `json:"sha256,omitempty"`
	Modified int64  `json:"modified"`
}

// History is a policy's versions (without texts) and activations.
type History struct {
	Name        string          `json:"name"`
	Active      int             `json:"active"`
	Versions    []PolicyVersion `json:"versions"`
	Activations []Activation    `json:"activations"`
}

func (s *State) policySummaries() []PolicySummary {
	out := []PolicySummary{}
	for _, p := range s.Policies {
		ps := PolicySummary{Name: p.Name, Active: p.Active, Latest: len(p.Versions), Modified: p.Versions[len(p.Versions)-1].Time}
		if p.Active > 0 {
			ps.SHA256 = p.Versions[p.Active-1].SHA256
		}
		if n := len(p.Activations); n > 0 && p.Activations[n-1].Time > ps.Modified {
			ps.Modified = p.Activations[n-1].Time
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *State) policy(name string) (*Policy, *Error) {
	p := s.Policies[name]
	if p == nil {
		return nil, errf(CodeNotFound, "name", "no policy %q", name)
	}
	return p, nil
}

// version returns version n of p; field names the request's field.
func (p *Policy) version(field string, n int) (PolicyVersion, *Error) {
	if n < 1 || n > len(p.Versions) {
		return PolicyVersion{}, errf(CodeNotFound, field, "policy %q has no version %d (latest is %d)", p.Name, n, len(p.Versions))
	}
	return p.Versions[n-1], nil
}

func (s *State) activeVersion(name string) (PolicyVersion, *Error) {
	p, e := s.policy(name)
	if e != nil {
		return PolicyVersion{}, e
	}
	if p.Active == 0 {
		return PolicyVersion{}, errf(CodeNotFound, "version", "policy %q has no active version", p.Name)
	}
	return p.Versions[p.Active-1], nil
}

func (s *State) policyVersion(name string, n int) (PolicyVersion, *Error) {
	p, e := s.policy(name)
	if e != nil {
		return PolicyVersion{}, e
	}
	return p.version("version", n)
}

func (p *Policy) history() History {
	return History{Name: p.Name, Active: p.Active, Versions: withoutText(p.Versions), Activations: append([]Activation{}, p.Activations...)}
}

func withoutText(vs []PolicyVersion) []PolicyVersion {
	out := make([]PolicyVersion, len(vs))
	for i, v := range vs {
		v.Text = ""
		out[i] = v
	}
	return out
}

// listLeases lists the leases under prefix: held ones, and VM leases that
// expired unreleased (needs-reconcile).
func (s *State) listLeases(prefix string, now int64) []LeaseView {
	out := []LeaseView{}
	for k, l := range s.Leases {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		v := LeaseView{Lease: *l, State: api.LeaseHeld}
		if l.Expiry <= now {
			if !isVMKey(k) {
				continue
			}
			v.State = api.LeaseNeedsReconcile
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// liveWorkers lists the workers not marked down; with a ttl, also only
// those written within it (Mem, where every heartbeat is applied; a raft
// store passes 0: its leader marks workers down).
func (s *State) liveWorkers(now int64, ttl time.Duration) []Worker {
	out := []Worker{}
	for _, w := range s.Workers {
		if w.live(now, ttl) {
			out = append(out, *w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// roster is the live workers and the host states, with the roster index
// they are as of; with scoped, only the workers of cluster and those whose
// cluster the store does not know (a worker's first heartbeat, an older
// worker that does not say), and the states of their hosts and of every
// host with a drain request (a worker negotiates within its cluster, and
// reads only its own host's drain, which is there even while the store
// does not know its cluster yet).
func (s *State) roster(now int64, ttl time.Duration, scoped bool, cluster string) Roster {
	r := Roster{Index: s.RosterIndex, Workers: s.liveWorkers(now, ttl), Hosts: s.hostList()}
	if !scoped {
		return r
	}
	hosts := map[string]bool{}
	ws := r.Workers[:0]
	for _, w := range r.Workers {
		if w.Cluster == cluster || w.Cluster == "" {
			ws = append(ws, w)
			hosts[w.Host] = true
		}
	}
	hs := r.Hosts[:0]
	for _, h := range r.Hosts {
		if hosts[h.Name] || h.Drain {
			hs = append(hs, h)
		}
	}
	r.Workers, r.Hosts = ws, hs
	return r
}

func (s *State) journalSince(since uint64, max int) []JournalEntry {
	i := sort.Search(len(s.Journal), func(i int) bool { return s.Journal[i].Index > since })
	out := s.Journal[i:]
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return append([]JournalEntry{}, out...)
}

func (s *State) hostList() []HostState {
	out := []HostState{}
	for _, x := range s.Hosts {
		out = append(out, *x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (w *Worker) live(now int64, ttl time.Duration) bool {
	return !w.Down && (ttl == 0 || now-w.LastSeen <= int64(ttl))
}
