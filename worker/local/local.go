// Package local assembles a whole parley in one process: a 3-member Raft
// store in a temporary folder, a simulated vCenter, and one worker per
// host, all talking over real loopback TCP and HTTP. 'parley demo', the
// policies' end-to-end tests and the worker's own end-to-end tests use it.
// It is the one place that imports both the store's server and the
// simulator alongside the agent; the agent itself imports neither.
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/raftstore/pki"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/parleyhq/parley/worker"
)

// Config describes the system to start.
type Config struct {
	Hosts, VMs   int
	Seed         int64
	Skew         float64 // share of VMs on a quarter of the hosts; default 0.5
	Utilisation  float64 // total CPU demand / capacity; default 0.45
	Policy       string  // shipped policies the workers follow, comma-separated; default balance (evacuate is pushed too)
	PolicyText   []byte  // overrides the shipped text of the first policy when set
	Drift        bool
	DriftEvery   time.Duration // sim.Config.DriftEvery; default 2s
	MigrateTime  time.Duration
	Interval     time.Duration
	DryRun       bool
	Logger       zerolog.Logger
	Dir          string // data folder; default a new temporary folder, removed on Close
	Observer     func(lcc.Outcome)
	Clusters     int    // compute clusters the hosts are spread over; default 1
	DRS          string // the clusters' DRS setting; default manual (parley balances)
	CoexistDRS   bool
	ZonedStorage bool // a datastore only half the hosts see (sim.Config.ZonedStorage)
	// PollInventory makes the workers read the whole inventory every tick
	// ('parley worker --inventory poll') instead of following their host
	// with one WaitForUpdatesEx filter each and their peers through the
	// store (vsphere.Watched, the default).
	PollInventory bool
	// Workers runs workers on only this many hosts, spread evenly over
	// the layout (the others are hosts parley does not run on); default
	// one on every host.
	Workers int
}

// System is a running in-process parley.
type System struct {
	Sim     *sim.Sim
	Members []*raftstore.Member
	Store   *raftstore.Client // an admin's client
	// PKI is the folder of the system's CA and certificates (ca.pem,
	// NAME.pem, NAME-key.pem; "admin" is the operator's), and AdminToken
	// the admin's token: every port runs TLS and checks tokens.
	PKI        string
	AdminToken string
	Workers    []*worker.Worker
	VS         *vsphere.Client

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	dir     string
	ownsDir bool
	clients []*vsphere.Client
	watched []*vsphere.Watched
}

func loopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start starts everything and pushes the policy.
func Start(ctx context.Context, cfg Config) (l *System, err error) {
	if cfg.Policy == "" {
		cfg.Policy = "balance"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	l = &System{dir: cfg.Dir}
	started := l // a failed start returns nil: close what was started
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	if l.dir == "" {
		if l.dir, err = os.MkdirTemp("", "parley-local-"); err != nil {
			return nil, err
		}
		l.ownsDir = true
	}
	// every policy the workers follow, and evacuate, which a drain needs
	names := strings.Split(cfg.Policy, ",")
	if !slices.Contains(names, "evacuate") {
		names = append(names, "evacuate")
	}
	texts := map[string][]byte{}
	for i, n := range names {
		n = strings.TrimSpace(n)
		names[i] = n
		if i == 0 && cfg.PolicyText != nil {
			texts[n] = cfg.PolicyText
			continue
		}
		if texts[n], err = policies.Source(n); err != nil {
			return nil, err
		}
	}
	l.PKI, l.AdminToken = filepath.Join(l.dir, "pki"), raftstore.NewToken()
	if err = pki.InitCA(l.PKI); err != nil {
		return nil, err
	}
	if l.Sim, err = sim.New(sim.Config{Hosts: cfg.Hosts, VMs: cfg.VMs, Seed: cfg.Seed, Skew: cfg.Skew, Utilisation: cfg.Utilisation, Drift: cfg.Drift, DriftEvery: cfg.DriftEvery, MigrateTime: cfg.MigrateTime,
		Clusters: cfg.Clusters, DRS: cfg.DRS, ZonedStorage: cfg.ZonedStorage}); err != nil {
		return nil, err
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		c := raftstore.DefaultConfig()
		c.ID = fmt.Sprintf("store%d", i+1)
		c.DataDir = filepath.Join(l.dir, c.ID)
		if c.RaftAddr, err = loopback(); err != nil {
			return nil, err
		}
		if c.HTTPAddr, err = loopback(); err != nil {
			return nil, err
		}
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		c.Validator = func(name string, text []byte) lcc.ErrorList { _, d := policies.Check(name+".lcc", text); return d }
		c.Logger = quieter(cfg.Logger.With().Str("component", "store").Logger())
		if c.TLS, err = pki.IssueLocal(l.PKI, c.ID); err != nil {
			return nil, err
		}
		c.AdminToken, c.Token = l.AdminToken, l.AdminToken
		if i == 0 {
			c.Bootstrap = true
		} else {
			c.Join = []string{addrs[0]}
		}
		m, err := raftstore.Start(ctx, c)
		if err != nil {
			return nil, err
		}
		l.Members = append(l.Members, m)
		addrs = append(addrs, m.HTTPAddr())
		if i == 0 {
			deadline := time.Now().Add(15 * time.Second)
			for !m.IsLeader() {
				if time.Now().After(deadline) {
					return nil, errors.New("local: the first store member did not become leader")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	admin, err := pki.IssueLocal(l.PKI, "admin")
	if err != nil {
		return nil, err
	}
	if l.Store, err = raftstore.NewClient(addrs, raftstore.WithTLS(admin), raftstore.WithToken(l.AdminToken)); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, err = l.Store.Push(ctx, raftstore.PushRequest{Name: n, Text: string(texts[n]), Author: "local", Message: "shipped " + n}); err != nil {
			return nil, fmt.Errorf("local: push policy %s: %w", n, err)
		}
	}
	vcCA := filepath.Join(l.PKI, "vcsim-ca.pem")
	if err = l.Sim.WriteCA(vcCA); err != nil {
		return nil, err
	}
	vcfg := vsphere.Config{URL: l.Sim.URL().String(), CAFile: vcCA}
	if err = vcfg.Credentials(""); err != nil {
		return nil, err
	}
	if l.VS, err = vsphere.Connect(ctx, vcfg, quieter(cfg.Logger)); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	for i, h := range l.Sim.Layout.Hosts {
		if n := len(l.Sim.Layout.Hosts); cfg.Workers > 0 && cfg.Workers < n && !sampled(i, cfg.Workers, n) {
			continue
		}
		vc, err := vsphere.Connect(ctx, vcfg, quieter(cfg.Logger))
		if err != nil {
			return nil, err
		}
		l.clients = append(l.clients, vc)
		var source worker.VSphere = vc
		if !cfg.PollInventory {
			wd := vsphere.NewWatched(wctx, vc, h.Name, 0)
			l.watched = append(l.watched, wd)
			source = wd
		}
		id := fmt.Sprintf("w%d", i)
		st, wtls, err := l.workerIdentity(ctx, addrs, id)
		if err != nil {
			return nil, err
		}
		w, err := worker.New(worker.Config{ID: id, Host: h.Name, Policy: cfg.Policy, Interval: cfg.Interval, DryRun: cfg.DryRun, Logger: cfg.Logger, Observer: cfg.Observer, TLS: wtls, CoexistDRS: cfg.CoexistDRS}, source, st)
		if err != nil {
			return nil, err
		}
		if err := w.Listen(); err != nil {
			return nil, err
		}
		l.Workers = append(l.Workers, w)
		l.wg.Add(1)
		go func() { defer l.wg.Done(); w.Run(wctx) }()
	}
	return l, nil
}

// sampled says whether host i of n gets one of k workers spread evenly:
// hosts 0, n/k, 2n/k, ...
func sampled(i, k, n int) bool {
	j := (i*k + n - 1) / n // the first j whose j*n/k >= i
	return j*n/k == i
}

// quieter logs at most warnings: the store's raft and vCenter sessions
// are chatty at info. A logger already quieter stays so.
func quieter(l zerolog.Logger) zerolog.Logger {
	if l.GetLevel() < zerolog.WarnLevel {
		return l.Level(zerolog.WarnLevel)
	}
	return l
}

// workerIdentity gives worker id its certificate and a worker token, and
// returns its store client.
func (l *System) workerIdentity(ctx context.Context, addrs []string, id string) (*raftstore.Client, *pki.TLS, error) {
	t, err := pki.IssueLocal(l.PKI, id)
	if err != nil {
		return nil, nil, err
	}
	secret := raftstore.NewToken()
	if _, err := l.Store.CreateToken(ctx, id, raftstore.RoleWorker, secret); err != nil {
		return nil, nil, fmt.Errorf("local: token for worker %s: %w", id, err)
	}
	st, err := raftstore.NewClient(addrs, raftstore.WithTLS(t), raftstore.WithToken(secret))
	return st, t, err
}

// Quiet reports that no VM lease is held: no migration is in flight.
func (l *System) Quiet(ctx context.Context) bool {
	ls, err := l.Store.Leases(ctx, api.PrefixVM, false)
	return err == nil && len(ls) == 0
}

// Close stops the workers, the store and the simulator.
func (l *System) Close() {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	// the watches end, and destroy their collectors, before their clients log out
	deadline := time.After(5 * time.Second)
	for _, wd := range l.watched {
		select {
		case <-wd.Done():
		case <-deadline:
		}
	}
	for _, c := range l.clients {
		c.Close()
	}
	if l.VS != nil {
		l.VS.Close()
	}
	for _, m := range l.Members {
		m.Close()
	}
	if l.Sim != nil {
		l.Sim.Close()
	}
	if l.ownsDir {
		os.RemoveAll(l.dir)
	}
}
