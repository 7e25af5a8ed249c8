// Package worker is parley's agent for one ESXi host. It keeps no state of
// its own: each tick it heartbeats into the store, observes its host
// through vSphere, and tries the initial roles of the active policy; it
// answers peers' LCC messages over HTTP on the exact policy version they
// name; and it takes leases before every migration. Killing it loses
// nothing: its leases expire, and on start it reconciles those still held
// in its name with vCenter.
//
// The interfaces it needs (Inventory, Store) are declared here; package
// vsphere and package raftstore satisfy them, and tests use small fakes.
package worker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/raftstore/pki"
	"github.com/parleyhq/parley/vsphere"
)

// VSphere is what the worker needs of vCenter.
type VSphere interface {
	Inventory(ctx context.Context) (*vsphere.Inventory, error)
	Migrate(ctx context.Context, vmID, hostID string, p vsphere.Progress) error
	VMState(ctx context.Context, vmID string) (vsphere.TaskState, error)
	SetMaintenance(ctx context.Context, hostID string, on bool) error
}

// Store is what the worker needs of the store.
type Store interface {
	ActivePolicy(ctx context.Context, name string, stale bool) (*raftstore.PolicyVersion, error)
	PolicyVersion(ctx context.Context, name string, version int) (*raftstore.PolicyVersion, error)
	Heartbeat(ctx context.Context, req raftstore.HeartbeatRequest) (*raftstore.HeartbeatReply, error)
	Roster(ctx context.Context, cluster *string, stale bool) (*raftstore.Roster, error)
	Workers(ctx context.Context, stale bool) ([]raftstore.Worker, error) // a store without GET /v1/roster
	Acquire(ctx context.Context, req raftstore.AcquireRequest) (*raftstore.Grant, error)
	Renew(ctx context.Context, req raftstore.RenewRequest) (*raftstore.Grant, error)
	Release(ctx context.Context, req raftstore.RenewRequest) error
	Leases(ctx context.Context, prefix string, stale bool) ([]raftstore.LeaseView, error)
	AppendJournal(ctx context.Context, entries ...raftstore.JournalEntry) error
	Hosts(ctx context.Context, stale bool) ([]raftstore.HostState, error)
	ReportHost(ctx context.Context, r raftstore.HostReport) error
}

// Config configures a worker.
type Config struct {
	ID        string // worker id, unique among workers
	Host      string // the ESXi host's name in vCenter
	Listen    string // address for peers' messages
	Advertise string // address peers dial; default: the listen address
	// Policy names the policies the worker follows, comma-separated, in
	// priority order (default "balance"). Whatever the list, a worker whose
	// host an operator drains also follows "evacuate", before the others.
	Policy   string
	Interval time.Duration // tick; default 2s, with ±20% jitter
	DryRun   bool          // negotiate and journal; reserve and move nothing
	Logger   zerolog.Logger
	// Transport, when set, carries LCC messages instead of HTTP (the
	// placement benchmark runs thousands of workers on lcc.MemTransport).
	Transport lcc.Transport
	// Observer, when set, sees every agent outcome (tests check that all
	// participants of an interaction ran the same policy version).
	Observer func(lcc.Outcome)
	// TLS, when set, serves the message endpoint over TLS and sends
	// messages with this worker's certificate; a message is taken only
	// from a peer whose certificate names the registered worker it says it
	// is from. Nil: plaintext, and messages are taken from anyone.
	TLS *pki.TLS
	// CoexistDRS lets the worker balance a cluster that DRS balances too
	// (enabled, fully automated); by default it leaves that to DRS.
	CoexistDRS bool
	// Stats is where the host's load comes from: "quickstats" (the
	// default: summary.quickStats, in the inventory every tick) or
	// "realtime" (PerformanceManager's latest 20 s sample of
	// cpu.usage.average and mem.active.average, quickStats where vCenter
	// has none).
	Stats string
	// StopGrace is how long a stopping worker (SIGTERM) lets its vMotions
	// in flight finish before it cancels them; default 20 s, under the
	// default lease TTL (30 s), so a cancelled one still gives its leases
	// back while it holds them.
	StopGrace time.Duration
}

// Where a worker's host load comes from (Config.Stats).
const (
	StatsQuick    = "quickstats"
	StatsRealtime = "realtime"
)

// statsReader is a vCenter client that reads realtime statistics
// (vsphere.Client does).
type statsReader interface {
	HostStats(ctx context.Context, h vsphere.Host) (vsphere.HostStats, error)
}

// Worker is the agent of one host.
type Worker struct {
	cfg      Config
	policies []string // followed, in priority order
	log      zerolog.Logger
	vs       VSphere
	store    Store
	caps     capabilities // the optional parts of vs and store, found once (capabilities.go)
	vc       vcenterState // whether vCenter answers, and when to ask again (vcenter.go)
	backoff  relocBackoff // relocations that failed, by VM and target (backoff.go)
	node     *lcc.Node
	tr       *httpTransport
	reg      *lcc.Registry
	srv      *http.Server
	ln       net.Listener

	mu          sync.Mutex
	programs    map[string]*lcc.Program  // by hash
	active      *lcc.Program             // the first policy of the list: its thresholds observe the host
	following   map[string]lcc.PolicyRef // the version followed, by policy name
	inv         *vsphere.Inventory
	observed    time.Time // when inv was read
	hostID      string
	drsLeft     bool                  // this host's cluster is left to DRS (cluster.go)
	drsReport   *raftstore.HostReport // the DRS state not yet taken by the store (cluster.go)
	traces      *traceBook            // the last interactions' steps (traces.go); nil in the placement harness
	samples     []float64             // recent CPU load samples of this host
	memSamples  []float64
	highSince   time.Time
	reactedTo   time.Time // the crossing whose first vMotion parley_worker_reaction_seconds has counted
	lowSince    time.Time
	peers       map[string]raftstore.Worker
	negotiating map[string]string    // VM name -> interaction id
	passthrough map[string]pinnedVM  // VM id -> whether it has a PCI passthrough device, as vCenter said
	running     map[string]bool      // interactions this worker started
	reserveMu   sync.Mutex           // one reservation decision at a time on this host
	arriving    arrivals             // VMs this host reserved room for, until its view shows them (arriving.go)
	drain       *raftstore.HostState // this host's drain request, if any
	rosterIndex uint64               // the roster index of the last roster read (roster.go)
	rosterAt    time.Time            // when it was read
	refused     counters             // messages refused, by reason (in /metrics)
	mx          *workerMetrics       // what /metrics serves (metrics.go)
	paramCache  sync.Map             // *lcc.Program -> policies.Params
	statsFrom   string               // where the last load sample came from: quickstats or realtime
	watch       policyWatch          // active versions from blocking queries (policywatch.go)

	stopping  atomic.Bool  // Run's context ended: no more offers, bids or reservations (stop)
	migrating atomic.Int64 // vMotions under way (cMigrate)
	ready     atomic.Bool  // the last tick heartbeated and observed the host (/readyz)
}

// New creates a worker; Run starts it.
func New(cfg Config, vs VSphere, store Store) (*Worker, error) {
	if cfg.ID == "" || cfg.Host == "" {
		return nil, errors.New("worker: id and host are required")
	}
	if cfg.Policy == "" {
		cfg.Policy = "balance"
	}
	names, err := policyList(cfg.Policy)
	if err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	switch cfg.Stats {
	case "":
		cfg.Stats = StatsQuick
	case StatsQuick, StatsRealtime:
	default:
		return nil, fmt.Errorf("worker: stats %q: want %s or %s", cfg.Stats, StatsQuick, StatsRealtime)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	w := &Worker{cfg: cfg, policies: names, vs: vs, store: store, programs: map[string]*lcc.Program{}, following: map[string]lcc.PolicyRef{}, peers: map[string]raftstore.Worker{},
		negotiating: map[string]string{}, running: map[string]bool{}, passthrough: map[string]pinnedVM{}}
	w.log = cfg.Logger.With().Str("worker", cfg.ID).Str("host", cfg.Host).Logger()
	w.caps = findCapabilities(vs, store)
	if cfg.Stats == StatsRealtime && vs != nil && w.caps.stats == nil {
		return nil, fmt.Errorf("worker: stats %q: this vCenter connection cannot read performance samples", StatsRealtime)
	}
	if m := w.caps.missing(); len(m) > 0 && vs != nil && store != nil {
		w.log.Info().Strs("missing", m).Msg("capabilities this vCenter connection or store lacks, and what is off for each")
	}
	w.reg = w.registry()
	w.mx = newWorkerMetrics(w)
	w.tr = newHTTPTransport(w.peerAddrs, cfg.TLS)
	var tr lcc.Transport = w.tr
	if cfg.Transport != nil {
		tr = cfg.Transport
	}
	var tracer lcc.Tracer
	if cfg.Transport == nil {
		w.traces = newTraceBook() // a real worker keeps its last traces for 'parley trace'
	}
	if w.log.GetLevel() <= zerolog.DebugLevel || w.traces != nil {
		tracer = lcc.TracerFunc(w.trace) // formatting every step costs: only for a real worker, or when logged
	}
	w.node = lcc.NewNode(lcc.NodeConfig{
		ID: cfg.ID, Transport: tr, Registry: w.reg, Tracer: tracer,
		Resolve: w.resolve, OnOutcome: w.onOutcome, UnreachableIsSilence: true,
		ResponderTimeout: 20 * time.Minute,
		// what peers (or anyone who reaches the port) can make a worker hold
		MaxInstances: maxInteractions, MaxPerPeer: maxPerPeer, MaxMailbox: maxMailbox, MaxQueuedTerms: maxQueuedTerms,
	})
	return w, nil
}

// Registry returns the worker's constraint library.
func (w *Worker) Registry() *lcc.Registry { return w.reg }

// Addr is the address peers reach this worker at (after Run has started
// listening).
func (w *Worker) Addr() string {
	if w.cfg.Advertise != "" {
		return w.cfg.Advertise
	}
	if w.ln != nil {
		return w.ln.Addr().String()
	}
	return w.cfg.Listen
}

// Listen opens the message endpoint. Run calls it if it was not called.
func (w *Worker) Listen() error {
	if w.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", w.cfg.Listen)
	if err != nil {
		return fmt.Errorf("worker: listen on %s: %w", w.cfg.Listen, err)
	}
	if w.cfg.TLS != nil {
		ln = tls.NewListener(ln, w.cfg.TLS.ServerConfig(false))
	}
	w.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/lcc/messages", w.handleMessage)
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) { rw.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if !w.ready.Load() {
			httpError(rw, http.StatusServiceUnavailable, "not ready: the store or vCenter did not answer the last tick, or the worker is stopping")
			return
		}
		rw.Write([]byte(`{"status":"ready"}`))
	})
	mux.HandleFunc("GET /metrics", w.metrics)
	mux.HandleFunc("GET /v1/status", w.handleStatus)
	mux.HandleFunc("GET /v1/traces", w.handleTraces)
	mux.HandleFunc("GET /v1/traces/{interaction}", w.handleTraces)
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10, ErrorLog: raftstore.ServerLog(w.log)}
	go func() {
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error().Err(err).Str("addr", ln.Addr().String()).Msg("message endpoint stopped: peers can no longer reach this worker")
		}
	}()
	return nil
}

// Run works until ctx ends: reconcile, then tick.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Listen(); err != nil {
		return err
	}
	// Interactions and vMotions run on work, which outlives ctx by the
	// stop's grace: a SIGTERM stops the ticks at once, then lets what is
	// in flight end (stop).
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		w.stop(cancelWork)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w.srv.Shutdown(sctx)
		cancel()
		w.node.Close()
	}()
	w.log.Info().Str("addr", w.Addr()).Str("policy", w.cfg.Policy).Bool("dry_run", w.cfg.DryRun).Msg("worker starting")
	w.watchPolicies(ctx)
	for {
		if err := w.reconcile(ctx); err == nil {
			break
		} else {
			w.log.Warn().Err(err).Msg("reconcile failed; retrying")
		}
		if !sleep(ctx, w.cfg.Interval) {
			return nil
		}
	}
	for {
		w.Tick(work)
		next := time.Duration(float64(w.cfg.Interval) * (0.8 + 0.4*mrand.Float64()))
		if due := w.holdDue(time.Now()); due > 0 && due+holdSlack < next {
			next = due + holdSlack // a crossing's hold_time ends before the next tick: tick then
		}
		if !sleep(ctx, next) {
			return nil
		}
	}
}

// stop is the end of Run: the worker offers, bids and reserves no more;
// the vMotions in flight get StopGrace to end, then the rest of its work
// is cancelled (a cancelled vMotion's relocation task is cancelled in
// vCenter and its leases given back); it waits for those give-backs, a
// bounded while, before the worker goes.
func (w *Worker) stop(cancelWork context.CancelFunc) {
	w.stopping.Store(true)
	w.ready.Store(false)
	grace := w.cfg.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	n := w.migrating.Load()
	w.log.Info().Int64("migrations", n).Dur("grace", grace).Msg("stopping: no more offers, bids or reservations")
	waitFor := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for w.migrating.Load() > 0 {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
		return true
	}
	ended := waitFor(grace)
	cancelWork()
	if !ended {
		w.log.Warn().Int64("migrations", w.migrating.Load()).Msg("stopping: vMotions still running after the grace; cancelling them")
		if !waitFor(15 * time.Second) {
			w.log.Warn().Int64("migrations", w.migrating.Load()).Msg("stopping: a cancelled vMotion has not given its leases back; they expire with their TTL")
		}
	}
	w.log.Info().Msg("stopped")
}

// DefaultStopGrace is Config.StopGrace's default.
const DefaultStopGrace = 20 * time.Second

// holdSlack is how long after a hold_time ends the extra tick comes.
const holdSlack = 20 * time.Millisecond

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Tick heartbeats, observes, follows the active policy and maybe starts
// negotiations. Run calls it every interval; the placement benchmark calls
// it in rounds.
func (w *Worker) Tick(ctx context.Context) {
	tctx, cancel := context.WithTimeout(ctx, w.cfg.Interval*3)
	defer cancel()
	load, observed := w.ownLoad(), false
	if load == nil {
		// Not observed yet (the first tick): observe first, so that the
		// first heartbeat carries the host's load and cluster and the
		// store does not write the worker twice.
		if observed = w.Observe(tctx) == nil; observed {
			load = w.ownLoad()
		}
	}
	reply, err := w.store.Heartbeat(tctx, raftstore.HeartbeatRequest{ID: w.cfg.ID, Host: w.cfg.Host, Addr: w.Addr(), Load: load})
	if err != nil {
		w.ready.Store(false)
		w.log.Warn().Err(err).Msg("store unreachable: holding off negotiations")
		return
	}
	w.notePeers(reply)                                              // peerloads.go
	if err := w.followRoster(tctx, reply.RosterIndex); err != nil { // roster.go
		w.log.Warn().Err(err).Msg("read the roster of peers and drains")
	}
	if !observed && w.vcenterDue(time.Now()) {
		octx, cancel := context.WithTimeout(tctx, vcenterCallTimeout)
		err := w.Observe(octx)
		cancel()
		if err != nil {
			w.vcenterFailed(ctx, err.Error())
		} else {
			observed = true
		}
	}
	if stale := w.staleView(w.params(w.active).MaxViewAge); stale != "" {
		w.ready.Store(false)
		if observed {
			w.vcenterFailed(ctx, stale) // read, but vCenter vouches for nothing recent (a watch that went quiet)
		}
		return
	}
	if observed {
		w.vcenterAnswered(ctx)
	}
	w.ready.Store(!w.stopping.Load())
	now := time.Now()
	for _, prog := range w.followPolicies(tctx) {
		if !policies.ActiveAt(prog.Model, now) {
			continue // outside its time window (active_between)
		}
		maxMoves := w.params(prog).MaxMovesPerCycle
		for started := 0; started < maxMoves && w.Initiated() < maxMoves; started++ {
			if !w.startOne(ctx, prog) {
				break
			}
		}
	}
}

// policyList parses the comma-separated list of policy names.
func policyList(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if seen[n] {
			return nil, fmt.Errorf("worker: policy %s is listed twice", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("worker: no policy to follow")
	}
	return out, nil
}

// Initiated is the number of interactions this worker started that are
// still running.
func (w *Worker) Initiated() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

// startOne tries the policy's initial roles in order; the first whose
// opening constraints hold runs the interaction. It waits only until the
// opening has been decided.
func (w *Worker) startOne(ctx context.Context, prog *lcc.Program) bool {
	for _, key := range prog.Model.InitialRoles() {
		role := prog.Model.Clause(key).Head.Role
		if _, _, ok := lcc.Functor(role); !ok {
			continue
		}
		id := newInteractionID(w.cfg.ID)
		w.mu.Lock()
		w.running[id] = true
		w.mu.Unlock()
		w.mx.start(id)
		ictx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		h, err := w.node.Start(ictx, prog, id, lcc.Export(role))
		if err != nil {
			cancel()
			w.mu.Lock()
			delete(w.running, id)
			w.mu.Unlock()
			w.mx.outcome(lcc.Outcome{Interaction: id, Declined: true}) // forget its start
			w.log.Warn().Err(err).Msg("start interaction")
			return false
		}
		go func() { <-h.Done(); cancel() }()
		// The opening is decided within moments: wait for it or for the
		// first message, whichever comes first.
		select {
		case <-h.Done():
			o := h.Wait()
			if o.Declined {
				continue
			}
			return o.Status == lcc.Closed
		case <-time.After(200 * time.Millisecond):
			return true
		case <-ctx.Done():
			return false
		}
	}
	return false
}

func newInteractionID(worker string) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", worker, time.Now().Unix(), hex.EncodeToString(b[:]))
}

// trace logs every LCC step at debug level, with the interaction and the
// policy version.
func (w *Worker) trace(e lcc.TraceEvent) {
	if w.traces != nil {
		w.traces.add(e)
	}
	if e.Kind == lcc.TraceSend || e.Kind == lcc.TraceReceive {
		w.mu.Lock()
		mine := w.running[e.Interaction]
		w.mu.Unlock()
		w.mx.step(e, mine)
	}
	if e.Kind == lcc.TraceOutcome {
		return
	}
	w.log.Debug().Str("interaction", e.Interaction).Str("policy", e.Policy.String()).Str("role", e.Role).
		Str("kind", string(e.Kind)).Str("peer", e.Peer).Str("term", e.Term).Msg("lcc step")
}

// onOutcome logs each agent's end, journals negotiations this worker
// started, and frees the VM it was negotiating.
func (w *Worker) onOutcome(o lcc.Outcome) {
	if w.cfg.Observer != nil {
		w.cfg.Observer(o)
	}
	w.mu.Lock()
	mine := w.running[o.Interaction]
	delete(w.running, o.Interaction)
	vm := ""
	for name, iid := range w.negotiating {
		if iid == o.Interaction {
			vm = name
			delete(w.negotiating, name)
		}
	}
	w.mu.Unlock()
	if mine {
		w.mx.outcome(o)
	}
	if o.Declined && mine {
		return
	}
	ev := w.log.Info()
	if o.Status != lcc.Closed {
		ev = w.log.Warn()
	}
	ev.Str("interaction", o.Interaction).Str("policy", o.Policy.String()).Str("role", o.Role).Str("vm", vm).
		Str("outcome", o.Status.String()).Str("reason", o.Reason).Msg("interaction ended")
	if mine && vm != "" && o.Status != lcc.Closed {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.journal(ctx, raftstore.JournalEntry{Kind: api.KindNegotiation, Interaction: o.Interaction, Policy: o.Policy.Name,
			Version: o.Policy.Version, VM: vm, From: w.cfg.Host, Outcome: o.Status.String(), Reason: o.Reason, Worker: w.cfg.ID})
	}
}

// Node is the worker's LCC node (for an in-memory transport to reach it).
func (w *Worker) Node() *lcc.Node { return w.node }

// Close stops answering peers (Run's end does this too).
func (w *Worker) Close() {
	if w.srv != nil {
		w.srv.Close()
	}
	w.node.Close()
}
