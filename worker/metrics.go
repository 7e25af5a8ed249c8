package worker

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
)

// Bounds on what peers can make a worker hold: interactions running at
// once, responders started by one peer, messages waiting in one
// interaction, and the term nodes of all waiting messages. With messages
// of at most maxMessageBytes, what a flood can make a worker hold is
// bounded (TestFloodStaysWithinItsBound: under floodMemoryBound).
const (
	maxInteractions = 1024
	maxPerPeer      = 64 // a peer runs at most max_moves_per_cycle (at most 64) negotiations at once
	maxMailbox      = 256
	maxQueuedTerms  = 1 << 20
)

// counters counts events by label.
type counters struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *counters) add(label string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	c.m[label]++
}

func (c *counters) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// reactionBuckets bound parley_worker_reaction_seconds. The time includes
// hold_time (3 s in the shipped policies), so the buckets are a quarter
// of a second apart from 3 s to 4 s: what the goal of hold_time plus one
// second is read against.
var reactionBuckets = []float64{0.5, 1, 2, 3, 3.25, 3.5, 3.75, 4, 4.5, 5, 6, 8, 10, 15, 20, 30, 60, 120}

// refusalReasons are every reason handleMessage counts, exported even at zero.
var refusalReasons = []string{"bad_message", "forged", "misdirected", "overloaded", "policy_mismatch", "too_large", "unauthenticated", "unavailable", "unregistered"}

// The shipped policies' vocabulary for bids, awards and refusals: a
// message sent under one of these names is counted as one.
var messageKinds = map[string]string{
	"bid": "bid", "request": "bid",
	"award": "award", "accept": "award",
	"decline": "refusal", "refused": "refusal", "reject": "refusal",
}

// workerMetrics are a worker's Prometheus series, served at /metrics on
// its message endpoint, each labelled with the worker and its host.
type workerMetrics struct {
	reg          *prometheus.Registry
	started      *prometheus.CounterVec   // policy, version
	ended        *prometheus.CounterVec   // policy, version, outcome
	negotiation  *prometheus.HistogramVec // policy
	offers       *prometheus.CounterVec   // kind: bid, award, refusal; policy
	messages     *prometheus.CounterVec   // direction, message
	migrations   *prometheus.CounterVec   // outcome
	migrationDur prometheus.Histogram
	renewFailed  prometheus.Counter
	reaction     prometheus.Histogram
	vcenterUp    prometheus.Gauge

	mu     sync.Mutex
	starts map[string]time.Time // interactions this worker started, when
	begun  map[string]bool      // those of them counted as started
}

func newWorkerMetrics(w *Worker) *workerMetrics {
	m := &workerMetrics{
		reg: prometheus.NewRegistry(),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_worker_negotiations_started_total",
			Help: "Negotiations this worker started (its opening held and it sent its first message), by policy and version."}, []string{"policy", "version"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_worker_negotiations_total",
			Help: "Negotiations this worker started that ended, by policy, version and outcome (closed, failed, timed_out)."}, []string{"policy", "version", "outcome"}),
		negotiation: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "parley_worker_negotiation_seconds",
			Help:    "Time from a negotiation's first message to its end, for negotiations this worker started.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}}, []string{"policy"}),
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_worker_offers_total",
			Help: "Bids, awards and refusals this worker sent, by kind (bid, award, refusal) and policy."}, []string{"kind", "policy"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_worker_messages_total",
			Help: "LCC messages sent (out) and taken (in), by direction and message name."}, []string{"direction", "message"}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_worker_migrations_total",
			Help: "Migrations this worker carried out, by outcome (success, failed, cancelled, dry-run)."}, []string{"outcome"}),
		migrationDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_worker_migration_seconds",
			Help: "How long vMotions this worker started took.", Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}}),
		renewFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_worker_lease_renewals_failed_total",
			Help: "Lease renewals during a migration that the store refused or did not answer."}),
		reaction: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_worker_reaction_seconds",
			Help:    "Time from this host's smoothed load crossing the high threshold to the vMotion that relieves it starting (hold_time included).",
			Buckets: reactionBuckets}),
		begun: map[string]bool{}, starts: map[string]time.Time{},
	}
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"worker": w.cfg.ID, "host": w.cfg.Host}, m.reg)
	for _, outcome := range []string{"success", "failed", "cancelled"} {
		m.migrations.WithLabelValues(outcome)
	}
	for _, kind := range []string{"bid", "award", "refusal"} {
		m.offers.WithLabelValues(kind, w.policies[0])
	}
	m.vcenterUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_worker_vcenter_up",
		Help: "1 while vCenter answers this worker (its view of the host fresh enough to act on), 0 while it does not."})
	m.vcenterUp.Set(1)
	reg.MustRegister(m.vcenterUp)
	reg.MustRegister(m.started, m.ended, m.negotiation, m.offers, m.messages, m.migrations, m.migrationDur, m.renewFailed, m.reaction, workerCollector{w})
	return m
}

// step counts what a trace event says: messages by name, the bids, awards
// and refusals among them, and the first message of an interaction this
// worker started.
func (m *workerMetrics) step(e lcc.TraceEvent, mine bool) {
	var dir string
	switch e.Kind {
	case lcc.TraceSend:
		dir = "out"
	case lcc.TraceReceive:
		dir = "in"
	default:
		return
	}
	name := e.Term
	if i := strings.IndexByte(name, '('); i >= 0 {
		name = name[:i]
	}
	if len(name) > 64 {
		name = name[:64] // a peer's message names stay bounded in length; their number is the policy's
	}
	m.messages.WithLabelValues(dir, name).Inc()
	if dir != "out" {
		return
	}
	if kind, ok := messageKinds[name]; ok {
		m.offers.WithLabelValues(kind, e.Policy.Name).Inc()
	}
	if !mine {
		return
	}
	m.mu.Lock()
	seen := m.begun[e.Interaction]
	m.begun[e.Interaction] = true
	m.mu.Unlock()
	if !seen {
		m.started.WithLabelValues(e.Policy.Name, strconv.Itoa(e.Policy.Version)).Inc()
	}
}

// start notes when this worker started an interaction.
func (m *workerMetrics) start(id string) {
	m.mu.Lock()
	m.starts[id] = time.Now()
	m.mu.Unlock()
}

// outcome counts the end of a negotiation this worker started.
func (m *workerMetrics) outcome(o lcc.Outcome) {
	m.mu.Lock()
	t, ok := m.starts[o.Interaction]
	counted := m.begun[o.Interaction]
	delete(m.starts, o.Interaction)
	delete(m.begun, o.Interaction)
	m.mu.Unlock()
	if !ok || o.Declined {
		return // it declined at its opening: no negotiation took place
	}
	if !counted { // a worker that does not trace its steps counts it here
		m.started.WithLabelValues(o.Policy.Name, strconv.Itoa(o.Policy.Version)).Inc()
	}
	m.ended.WithLabelValues(o.Policy.Name, strconv.Itoa(o.Policy.Version), strings.ReplaceAll(o.Status.String(), " ", "_")).Inc()
	m.negotiation.WithLabelValues(o.Policy.Name).Observe(time.Since(t).Seconds())
}

// journaled counts a migration by its journal entry.
func (m *workerMetrics) journaled(e raftstore.JournalEntry) {
	switch e.Kind {
	case "migration":
		m.migrations.WithLabelValues(e.Outcome).Inc()
		if e.DurationMS > 0 {
			m.migrationDur.Observe(float64(e.DurationMS) / 1000)
		}
	case "would-migrate":
		m.migrations.WithLabelValues(e.Outcome).Inc()
	}
}

// workerCollector reads what the worker holds when scraped.
type workerCollector struct{ w *Worker }

var (
	descRefused      = prometheus.NewDesc("parley_worker_messages_refused_total", "LCC messages the worker refused, by reason.", []string{"reason"}, nil)
	descInteractions = prometheus.NewDesc("parley_worker_interactions", "Interactions this worker started that are running.", nil, nil)
	descHostLoad     = prometheus.NewDesc("parley_worker_host_load", "The host's smoothed load as the worker sees it, a share of capacity (resource cpu or mem).", []string{"resource"}, nil)
	descViewAge      = prometheus.NewDesc("parley_worker_view_age_seconds", "How old the worker's view of its host is: seconds since vCenter last answered for it.", nil, nil)
)

func (c workerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRefused
	ch <- descInteractions
	ch <- descHostLoad
	ch <- descViewAge
}

func (c workerCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.w.refused.snapshot()
	for _, r := range refusalReasons {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(snap[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(descInteractions, prometheus.GaugeValue, float64(c.w.Initiated()))
	c.w.mu.Lock()
	cpu, mem, seen := mean(c.w.samples), mean(c.w.memSamples), len(c.w.samples) > 0
	c.w.mu.Unlock()
	if seen {
		ch <- prometheus.MustNewConstMetric(descHostLoad, prometheus.GaugeValue, cpu, "cpu")
		ch <- prometheus.MustNewConstMetric(descHostLoad, prometheus.GaugeValue, mem, "mem")
		ch <- prometheus.MustNewConstMetric(descViewAge, prometheus.GaugeValue, c.w.viewAge(time.Now()).Seconds())
	}
}

// metrics serves the worker's series in Prometheus's text format.
func (w *Worker) metrics(rw http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(w.mx.reg, promhttp.HandlerOpts{}).ServeHTTP(rw, r)
}

// Latency is one of the worker's latency histograms by its series name
// (parley_worker_negotiation_seconds, parley_worker_reaction_seconds),
// nil for another name. A benchmark running a thousand workers in one
// process merges these directly: a registry's Gather starts goroutines
// and yields to every runnable one, minutes in all on a loaded process.
func (w *Worker) Latency(name string) prometheus.Collector {
	switch name {
	case "parley_worker_negotiation_seconds":
		return w.mx.negotiation
	case "parley_worker_reaction_seconds":
		return w.mx.reaction
	}
	return nil
}

// Metrics is the worker's registry, for benchmarks that run many workers
// in one process and merge their series.
func (w *Worker) Metrics() prometheus.Gatherer { return w.mx.reg }
