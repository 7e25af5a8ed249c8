package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore/pki"
	"github.com/rs/zerolog"
)

// Config configures one store member.
type Config struct {
	ID            string // raft server id
	DataDir       string
	LogStore      string // bolt, wal, or "" for the folder's kind (bolt for a new folder): where the raft log and stable state live (logstore.go)
	RaftAddr      string // bind address for raft's TCP transport
	RaftAdvertise string // address peers dial; defaults to RaftAddr
	HTTPAddr      string // bind address of the HTTP API
	HTTPAdvertise string // address peers and clients use; defaults to HTTPAddr

	Bootstrap bool     // start a new cluster with this member alone
	Join      []string // HTTP addresses of members to ask to add this one

	// Raft timing. The defaults (400 ms heartbeat, election and leader
	// lease timeouts) fail over in under a second on loopback and a LAN
	// and still tolerate a loaded machine (DESIGN.md); a WAN or a slow
	// disk wants them higher.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration

	ApplyTimeout   time.Duration // how long a write may wait for commit
	LeaseLockDelay time.Duration // how long an expired VM lease stays locked
	WorkerTTL      time.Duration // a worker is live this long after its heartbeat
	// HeartbeatsToLog writes every heartbeat to the log, as parley did
	// before liveness was kept by the leader (liveness.go): for comparing
	// the two in one run ('parley bench fleet --baseline').
	HeartbeatsToLog bool
	SweepInterval   time.Duration // how often the leader sweeps expired leases
	JournalLimit    int           // entries kept in the journal
	MaxBodyBytes    int64         // largest request body accepted

	// Validator checks a policy text before it is written. Nil: the LCC
	// checker with the interpreter's builtins only.
	Validator func(name string, text []byte) lcc.ErrorList

	// Security. TLS serves the API (client certificates verified when
	// given) and carries raft traffic over mutual TLS; without it the
	// member needs Insecure: plaintext, and every caller may do
	// everything.
	TLS           *pki.TLS
	Insecure      bool
	AdminToken    string // seeded as token "admin" when a bootstrapped cluster has no token
	Token         string // this member's token, to join a cluster
	MetricsPublic bool   // /metrics without a token

	Logger zerolog.Logger
}

// DefaultConfig returns a configuration with every tunable set.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   400 * time.Millisecond, // fails over in under a second (DESIGN.md)
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 400 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		ApplyTimeout:       10 * time.Second,
		LeaseLockDelay:     15 * time.Second,
		WorkerTTL:          10 * time.Second,
		SweepInterval:      time.Second,
		JournalLimit:       DefaultJournalLimit,
		MaxBodyBytes:       2 << 20,
		Logger:             zerolog.Nop(),
	}
}

// Validate checks the configuration without side effects.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("id is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data folder is required"))
	}
	if c.RaftAddr == "" || c.HTTPAddr == "" {
		errs = append(errs, errors.New("raft and http addresses are required"))
	}
	if c.TLS == nil && !c.Insecure {
		errs = append(errs, errors.New("TLS is required: give --tls-ca, --tls-cert and --tls-key (make them with 'parley cert init DIR' and 'parley cert issue DIR NAME --host ADDR'), or --insecure for plaintext with no tokens"))
	}
	if c.TLS != nil && c.Insecure {
		errs = append(errs, errors.New("--insecure and TLS are exclusive"))
	}
	if c.LogStore != "" && c.LogStore != LogStoreBolt && c.LogStore != LogStoreWAL {
		errs = append(errs, fmt.Errorf("log store %q: want %s or %s", c.LogStore, LogStoreBolt, LogStoreWAL))
	}
	if c.Bootstrap && len(c.Join) > 0 {
		errs = append(errs, errors.New("bootstrap and join are exclusive"))
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, errors.New("leader lease timeout must not exceed the heartbeat timeout"))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, errors.New("election timeout must be at least the heartbeat timeout"))
	}
	if c.ApplyTimeout <= 0 || c.WorkerTTL <= 0 || c.SweepInterval <= 0 || c.JournalLimit <= 0 || c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("apply timeout, worker ttl, sweep interval, journal limit and body limit must be positive"))
	}
	if c.MaxBodyBytes < MaxPolicyBytes {
		errs = append(errs, fmt.Errorf("body limit must be at least the policy limit of %d bytes", MaxPolicyBytes))
	}
	return errors.Join(errs...)
}

// Store is one member of the raft group.
type Store struct {
	cfg       Config
	log       zerolog.Logger
	fsm       *FSM
	raft      *raft.Raft
	transport *raft.NetworkTransport
	bolt      logStore // BoltDB or raft-wal (logstore.go)
	metrics   *metrics

	lastApply atomic.Int64 // unix ns of the last command this member applied as leader
	peers     *http.Client // asks joining members how far they have caught up
	promoting atomic.Bool  // a promotion check is running

	stop chan struct{}

	streams     atomic.Int64 // event streams open (http_ui.go)
	live        liveness     // heartbeats the leader keeps for its term (liveness.go)
	fleet       fleetCache   // workers' statuses (http_fleet.go)
	workersHTTP *http.Client // to ask workers, with the member's certificate
	wg          sync.WaitGroup
	mu          sync.Mutex
	closed      bool
}

// ErrNotLeader is returned by Apply on a member that is not the leader.
var ErrNotLeader = errors.New("raftstore: not the leader")

// Open starts a member: its log and stable store in BoltDB (fsync'd) or
// hashicorp/raft-wal (Config.LogStore), file snapshots and the TCP
// transport, all under DataDir.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("raftstore: config: %w", err)
	}
	if cfg.RaftAdvertise == "" {
		cfg.RaftAdvertise = cfg.RaftAddr
	}
	if cfg.HTTPAdvertise == "" {
		cfg.HTTPAdvertise = cfg.HTTPAddr
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("raftstore: data folder: %w", err)
	}
	log := cfg.Logger.With().Str("member", cfg.ID).Logger()
	s := &Store{cfg: cfg, log: log, fsm: NewFSM(log), stop: make(chan struct{}), peers: httpClient(cfg.TLS, 2*time.Second)}
	s.workersHTTP = httpClient(cfg.TLS, 5*time.Second)
	s.metrics = newMetrics(s) // before raft starts: its first election is counted
	hl := newHclog(log, "raft")

	bolt, err := openLogStore(cfg, hl.Named("log"))
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	s.bolt = bolt
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hl.Named("snapshots"))
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raftstore: snapshot store: %w", err)
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raftstore: raft advertise address: %w", err)
	}
	trans, err := newTransport(cfg, adv, hl.Named("transport"))
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raftstore: raft transport on %s: %w", cfg.RaftAddr, err)
	}
	s.transport = trans

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256

	existing, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		trans.Close()
		bolt.Close()
		return nil, fmt.Errorf("raftstore: read existing state: %w", err)
	}
	// recent entries are served from memory to replication and the FSM
	logs, err := raft.NewLogCache(1024, bolt)
	if err != nil {
		trans.Close()
		bolt.Close()
		return nil, fmt.Errorf("raftstore: log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, bolt, snaps, trans)
	if err != nil {
		trans.Close()
		bolt.Close()
		return nil, fmt.Errorf("raftstore: start raft: %w", err)
	}
	s.raft = r
	if cfg.Bootstrap && !existing {
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			s.Close()
			return nil, fmt.Errorf("raftstore: bootstrap: %w", err)
		}
		log.Info().Msg("bootstrapped a new cluster")
	}
	if existing {
		log.Info().Msg("rejoining from existing state")
	}
	s.wg.Add(1)
	go s.leaderLoop()
	return s, nil
}

// NeedsJoin reports whether this member has no state and was told to join.
func (s *Store) NeedsJoin() bool {
	return len(s.cfg.Join) > 0 && s.raft.LastIndex() == 0
}

// leaderLoop runs the leader's duties: record its HTTP address, extend
// leases after an election, and sweep expired leases.
func (s *Store) leaderLoop() {
	defer s.wg.Done()
	var tick <-chan time.Time
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-s.stop:
			return
		case isLeader := <-s.raft.LeaderCh():
			if ticker != nil {
				ticker.Stop()
				ticker, tick = nil, nil
			}
			if !isLeader {
				s.log.Info().Msg("lost leadership")
				continue
			}
			s.log.Info().Msg("became leader")
			s.live.leading(time.Now())
			s.lastApply.Store(time.Now().UnixNano())
			if err := s.wait(s.raft.Barrier(s.cfg.ApplyTimeout)); err != nil {
				s.log.Warn().Err(err).Msg("barrier after election")
				continue
			}
			if _, err := s.Apply(cmdLeaderExtend, "", nil); err != nil {
				s.log.Warn().Err(err).Msg("extend leases after election")
			}
			if _, err := s.Apply(cmdMember, "", MemberRequest{ID: s.cfg.ID, HTTPAddr: s.cfg.HTTPAdvertise, RaftAddr: s.cfg.RaftAdvertise}); err != nil {
				s.log.Warn().Err(err).Msg("record own address")
			}
			s.seedAdminToken()
			ticker = time.NewTicker(s.cfg.SweepInterval)
			tick = ticker.C
		case <-tick:
			if s.raft.State() != raft.Leader {
				continue
			}
			s.sweepIfDue()
			if s.promoting.CompareAndSwap(false, true) {
				go func() { defer s.promoting.Store(false); s.promoteNonvoters() }()
			}
		}
	}
}

// Apply proposes a command on the leader and waits for its result.
// ErrNotLeader means it was not proposed; raft.ErrLeadershipLost means its
// outcome is unknown (retry it with the same request id).
func (s *Store) Apply(typ, reqID string, body any) (*Result, error) {
	return s.ApplyAs(typ, reqID, Identity{}, body)
}

// ApplyAs is Apply on behalf of an authenticated identity: the state
// machine records it in the audit journal for administrative commands,
// and decides by it the rules that depend on the state (authorise).
func (s *Store) ApplyAs(typ, reqID string, by Identity, body any) (*Result, error) {
	if s.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	data, err := encodeCommandBy(typ, reqID, by, time.Now().UnixNano(), body)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	f := s.raft.Apply(data, s.cfg.ApplyTimeout)
	if err := s.wait(f); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, ErrNotLeader
		}
		return nil, err
	}
	s.metrics.observeApply(typ, time.Since(start))
	s.lastApply.Store(time.Now().UnixNano())
	r, ok := f.Response().(*Result)
	if !ok {
		return nil, fmt.Errorf("raftstore: unexpected apply response %T", f.Response())
	}
	return r, nil
}

// wait is f.Error(), except that a member shutting down stops waiting:
// raft can shut down with an apply still queued and never answer it (a
// sweep from the leader's loop held a member's Close for ever in CI).
func (s *Store) wait(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-s.stop:
		return raft.ErrRaftShutdown
	}
}

// ApplyRaw proposes an already encoded payload, for the benchmark's bare
// raft baseline.
func (s *Store) ApplyRaw(data []byte) error {
	return s.raft.Apply(data, s.cfg.ApplyTimeout).Error()
}

// LinearizableRead returns once this member is confirmed leader and has
// applied everything committed before the call.
func (s *Store) LinearizableRead(ctx context.Context) error {
	if err := s.raft.VerifyLeader().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return ErrNotLeader
		}
		return err
	}
	commit := s.raft.CommitIndex()
	for s.raft.AppliedIndex() < commit {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// appliesStalled reports whether this member leads but has applied
// nothing for a while (an idle leader sweeps every keepAliveEvery), and since
// when: a leader that cannot commit is not ready, whatever /healthz says.
func (s *Store) appliesStalled() (bool, time.Duration) {
	if !s.IsLeader() {
		return false, 0
	}
	last := s.lastApply.Load()
	if last == 0 {
		return false, 0 // just elected: the first sweep has not run yet
	}
	since := time.Since(time.Unix(0, last))
	return since > max(3*keepAliveEvery, 5*s.cfg.SweepInterval), since
}

// IsLeader reports whether this member leads.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// LeaderHTTP returns the HTTP address of the current leader, if known.
func (s *Store) LeaderHTTP() (string, bool) {
	_, id := s.raft.LeaderWithID()
	if id == "" {
		return "", false
	}
	if string(id) == s.cfg.ID {
		return s.cfg.HTTPAdvertise, true
	}
	var addr string
	s.fsm.read(func(st *State) { addr = st.Members[string(id)].HTTPAddr })
	return addr, addr != ""
}

// Close shuts the member down.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	var errs []error
	if s.raft != nil {
		errs = append(errs, s.raft.Shutdown().Error())
	}
	s.wg.Wait()
	if s.transport != nil {
		errs = append(errs, s.transport.Close())
	}
	if s.bolt != nil {
		errs = append(errs, s.bolt.Close())
	}
	return errors.Join(errs...)
}

// seedAdminToken records the configured admin token as token "admin"
// when the cluster has no admin token (a new cluster's first leader). Not
// "no token at all": the bootstrap secret may already have created a
// reader's token before the seed landed, and the admin would then have
// been locked out (the last admin token cannot be revoked, so a cluster
// once seeded always has one).
func (s *Store) seedAdminToken() {
	if s.cfg.AdminToken == "" {
		return
	}
	seeded := false
	s.fsm.read(func(st *State) { seeded = st.hasAdmin() })
	if seeded {
		return
	}
	r, err := s.ApplyAs(cmdTokenCreate, "", Identity{Name: s.cfg.ID, Role: RoleAdmin, Member: true}, TokenRequest{Name: "admin", Role: RoleAdmin, Hash: HashToken(s.cfg.AdminToken), By: s.cfg.ID})
	switch {
	case err != nil:
		s.log.Warn().Err(err).Msg("seed the admin token")
	case r.Error != nil:
		s.log.Warn().Str("error", r.Error.Message).Msg("seed the admin token")
	default:
		s.log.Info().Msg("seeded the admin token")
	}
}
