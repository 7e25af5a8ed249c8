package raftstore

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// metrics are kept by hand and written in the Prometheus text format: the
// store needs a handful of series and no client library. (raft's own
// go-metrics go to its default in-memory sink and are not exported here.)
type metrics struct {
	mu       sync.Mutex
	applyN   map[string]uint64
	applySum map[string]float64
	buckets  map[string][]uint64 // cumulative counts per bound
	pushes   uint64
	requests map[int]uint64
}

var applyBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

func newMetrics() *metrics {
	return &metrics{applyN: map[string]uint64{}, applySum: map[string]float64{}, buckets: map[string][]uint64{}, requests: map[int]uint64{}}
}

func (m *metrics) observeApply(typ string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sec := d.Seconds()
	m.applyN[typ]++
	m.applySum[typ] += sec
	b := m.buckets[typ]
	if b == nil {
		b = make([]uint64, len(applyBounds))
		m.buckets[typ] = b
	}
	for i, bound := range applyBounds {
		if sec <= bound {
			b[i]++
		}
	}
	if typ == cmdPush {
		m.pushes++
	}
}

func (m *metrics) observeRequest(code int) {
	m.mu.Lock()
	m.requests[code]++
	m.mu.Unlock()
}

func (s *Store) writeMetrics(w io.Writer) {
	st := s.Status()
	leader := 0
	if st.State == "Leader" {
		leader = 1
	}
	policies, versions, leases := s.fsm.counts(time.Now())
	fmt.Fprintf(w, "# HELP parley_raft_leader 1 if this member is the leader.\n# TYPE parley_raft_leader gauge\nparley_raft_leader %d\n", leader)
	fmt.Fprintf(w, "# HELP parley_raft_state Raft state of this member.\n# TYPE parley_raft_state gauge\nparley_raft_state{state=%q} 1\n", st.State)
	fmt.Fprintf(w, "# TYPE parley_raft_term gauge\nparley_raft_term %d\n", st.Term)
	fmt.Fprintf(w, "# TYPE parley_raft_commit_index gauge\nparley_raft_commit_index %d\n", st.CommitIndex)
	fmt.Fprintf(w, "# TYPE parley_raft_applied_index gauge\nparley_raft_applied_index %d\n", st.Applied)
	fmt.Fprintf(w, "# TYPE parley_raft_members gauge\nparley_raft_members %d\n", len(st.Members))
	fmt.Fprintf(w, "# HELP parley_leases_held Unexpired leases.\n# TYPE parley_leases_held gauge\nparley_leases_held %d\n", leases)
	fmt.Fprintf(w, "# TYPE parley_policies gauge\nparley_policies %d\n# TYPE parley_policy_versions gauge\nparley_policy_versions %d\n", policies, versions)
	m := s.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(w, "# HELP parley_policy_pushes_total Policy pushes applied through this member.\n# TYPE parley_policy_pushes_total counter\nparley_policy_pushes_total %d\n", m.pushes)
	fmt.Fprintf(w, "# HELP parley_apply_seconds Time from proposal to commit, by command.\n# TYPE parley_apply_seconds histogram\n")
	types := make([]string, 0, len(m.applyN))
	for t := range m.applyN {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		for i, bound := range applyBounds {
			fmt.Fprintf(w, "parley_apply_seconds_bucket{command=%q,le=\"%g\"} %d\n", t, bound, m.buckets[t][i])
		}
		fmt.Fprintf(w, "parley_apply_seconds_bucket{command=%q,le=\"+Inf\"} %d\n", t, m.applyN[t])
		fmt.Fprintf(w, "parley_apply_seconds_sum{command=%q} %g\nparley_apply_seconds_count{command=%q} %d\n", t, m.applySum[t], t, m.applyN[t])
	}
	codes := make([]int, 0, len(m.requests))
	for c := range m.requests {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	fmt.Fprintf(w, "# TYPE parley_http_requests_total counter\n")
	for _, c := range codes {
		fmt.Fprintf(w, "parley_http_requests_total{code=\"%d\"} %d\n", c, m.requests[c])
	}
}
