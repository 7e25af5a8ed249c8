package raftstore

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A member's metrics, served at /metrics in Prometheus's text format
// through client_golang: the member's own (apply latency by command,
// requests by status, leases, policies, journal, raft's state and
// indexes) and raft's (commit time, last contact, leader changes, FSM
// apply, snapshots), which hashicorp/raft reports through go-metrics and
// go-metrics' Prometheus sink exports (names such as raft_commitTime,
// raft_state_leader, raft_fsm_apply; times in milliseconds, summaries).
//
// go-metrics is process-global: a process that runs several members (the
// demo, tests) reports their raft metrics together; a member run alone,
// as in production, reports its own.
type metrics struct {
	reg      *prometheus.Registry
	apply    *prometheus.HistogramVec
	pushes   prometheus.Counter
	requests *prometheus.CounterVec
}

var (
	raftSinkOnce sync.Once
	raftSink     *gmprom.PrometheusSink
)

// raftMetrics points go-metrics (and so raft) at one Prometheus sink, once
// per process, and returns it for members' registries to collect.
func raftMetrics() *gmprom.PrometheusSink {
	raftSinkOnce.Do(func() {
		// its own registry: the sink is collected through each member's
		sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Name: "parley_raft_sink", Registerer: prometheus.NewRegistry()})
		if err != nil {
			return
		}
		cfg := gometrics.DefaultConfig("")
		cfg.EnableHostname, cfg.EnableHostnameLabel, cfg.EnableRuntimeMetrics = false, false, false
		if _, err := gometrics.NewGlobal(cfg, sink); err != nil {
			return
		}
		raftSink = sink
	})
	return raftSink
}

func newMetrics(s *Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "parley_apply_seconds",
			Help:    "Time from proposal to commit on this member, by command.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}}, []string{"command"}),
		pushes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_policy_pushes_total", Help: "Policy pushes applied through this member."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_http_requests_total", Help: "API requests served, by status code."}, []string{"code"}),
	}
	m.reg.MustRegister(m.apply, m.pushes, m.requests, stateCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if sink := raftMetrics(); sink != nil {
		m.reg.MustRegister(sink)
	}
	return m
}

func (m *metrics) observeApply(typ string, d time.Duration) {
	m.apply.WithLabelValues(typ).Observe(d.Seconds())
	if typ == cmdPush {
		m.pushes.Inc()
	}
}

func (m *metrics) observeRequest(code int) {
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// stateCollector reads the member's raft status and state machine when
// scraped, so the figures are those of the moment.
type stateCollector struct{ s *Store }

var (
	descLeader   = prometheus.NewDesc("parley_raft_leader", "1 if this member is the leader.", nil, nil)
	descState    = prometheus.NewDesc("parley_raft_state", "Raft state of this member (1 for the current one).", []string{"state"}, nil)
	descTerm     = prometheus.NewDesc("parley_raft_term", "Raft term.", nil, nil)
	descCommit   = prometheus.NewDesc("parley_raft_commit_index", "Raft commit index.", nil, nil)
	descApplied  = prometheus.NewDesc("parley_raft_applied_index", "Raft index applied to the state machine.", nil, nil)
	descMembers  = prometheus.NewDesc("parley_raft_members", "Voting and non-voting members in the configuration.", nil, nil)
	descLeases   = prometheus.NewDesc("parley_leases_held", "Unexpired leases.", nil, nil)
	descPolicies = prometheus.NewDesc("parley_policies", "Policies stored.", nil, nil)
	descVersions = prometheus.NewDesc("parley_policy_versions", "Policy versions stored, over all policies.", nil, nil)
	descJournal  = prometheus.NewDesc("parley_journal_entries", "Journal entries kept.", nil, nil)
	descWorkers  = prometheus.NewDesc("parley_workers_live", "Workers whose heartbeat is within the worker TTL.", nil, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descState, descTerm, descCommit, descApplied, descMembers, descLeases, descPolicies, descVersions, descJournal, descWorkers} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	leader := 0.0
	if st.State == "Leader" {
		leader = 1
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descLeader, leader)
	gauge(descState, 1, st.State)
	gauge(descTerm, float64(st.Term))
	gauge(descCommit, float64(st.CommitIndex))
	gauge(descApplied, float64(st.Applied))
	gauge(descMembers, float64(len(st.Members)))
	now := time.Now()
	n := c.s.fsm.counts(now, 0) // the leader marks workers down
	gauge(descLeases, float64(n.leases))
	gauge(descPolicies, float64(n.policies))
	gauge(descVersions, float64(n.versions))
	gauge(descJournal, float64(n.journal))
	gauge(descWorkers, float64(n.workers))
}
