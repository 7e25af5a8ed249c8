package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
)

func init() {
	topLevel["store"] = command{"store", "run a member of the policy and lease store", (*cli).storeRun}
}

// policyValidator checks pushed policies against the same constraints as
// 'parley lcc check': builtins, the model's facts and the workers' vocabulary.
func policyValidator(name string, text []byte) lcc.ErrorList {
	if !strings.HasSuffix(name, ".lcc") {
		name += ".lcc"
	}
	_, errs := policies.Check(name, text)
	return errs
}

func (c *cli) storeRun(ctx context.Context, args []string) int {
	fs := c.newFlags("store", "store --id ID --data DIR --raft-addr HOST:PORT --http-addr HOST:PORT --tls-ca CA --tls-cert CERT --tls-key KEY [--bootstrap --admin-token-file FILE | --join HTTPADDR,... --token-file FILE] [--insecure]")
	def := raftstore.DefaultConfig()
	id := fs.String("id", "", "member id, unique in the cluster")
	data := fs.String("data", "", "data folder (raft log, stable store and snapshots)")
	raftAddr := fs.String("raft-addr", "127.0.0.1:7000", "address for raft traffic")
	httpAddr := fs.String("http-addr", defaultStore, "address for the HTTP API")
	raftAdv := fs.String("raft-advertise", "", "raft address peers dial (default: --raft-addr)")
	httpAdv := fs.String("http-advertise", "", "HTTP address peers and clients use (default: --http-addr)")
	bootstrap := fs.Bool("bootstrap", false, "start a new cluster with this member (ignored when the data folder has state)")
	bootstrapID := fs.String("bootstrap-id", "", "--bootstrap when --id is this, else --join: one set of flags for every member (a StatefulSet's pods)")
	join := fs.String("join", "", "HTTP addresses of members to join through, comma-separated (ignored when the data folder has state)")
	hb := fs.Duration("heartbeat-timeout", def.HeartbeatTimeout, "raft heartbeat timeout")
	et := fs.Duration("election-timeout", def.ElectionTimeout, "raft election timeout")
	ll := fs.Duration("leader-lease-timeout", def.LeaderLeaseTimeout, "raft leader lease timeout")
	lockDelay := fs.Duration("lock-delay", def.LeaseLockDelay, "how long an expired VM lease stays locked")
	workerTTL := fs.Duration("worker-ttl", def.WorkerTTL, "how long a worker counts as live after its heartbeat")
	journalLimit := fs.Int("journal-limit", def.JournalLimit, "journal entries kept")
	tf := addTLSFlags(fs)
	insecure := fs.Bool("insecure", false, "plaintext and no tokens: anyone who reaches the ports may do anything (a lab only)")
	adminFile := fs.String("admin-token-file", "", "with --bootstrap: the first admin token (written there, mode 0600, when the file does not exist)")
	tokenFile := addTokenFlag(fs)
	metricsPublic := fs.Bool("metrics-public", false, "serve /metrics without a token")
	logStore := fs.String("log-store", raftstore.LogStoreAuto, "where the raft log lives: bolt (BoltDB, raft.db) or wal (hashicorp/raft-wal, wal/); unset, the kind the data folder holds, and bolt for a new folder")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this member, from its start to its shutdown, to this file")
	heartbeatsToLog := fs.Bool("heartbeats-to-log", false, "write every worker heartbeat to the raft log (the leader keeps those that change nothing by default); for comparisons")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *id == "" || *data == "" {
		fmt.Fprintln(c.stderr, "parley store: --id and --data are required")
		fs.Usage()
		return exitUsage
	}
	cfg := def
	cfg.ID, cfg.DataDir, cfg.RaftAddr, cfg.HTTPAddr = *id, *data, *raftAddr, *httpAddr
	cfg.RaftAdvertise, cfg.HTTPAdvertise, cfg.Bootstrap = *raftAdv, *httpAdv, *bootstrap
	if *join != "" {
		cfg.Join = strings.Split(*join, ",")
	}
	if *bootstrapID != "" {
		if *bootstrap {
			fmt.Fprintln(c.stderr, "parley store: --bootstrap and --bootstrap-id are exclusive")
			return exitUsage
		}
		if cfg.Bootstrap = *bootstrapID == *id; cfg.Bootstrap {
			cfg.Join = nil
		} else if len(cfg.Join) == 0 {
			fmt.Fprintf(c.stderr, "parley store: --bootstrap-id %s: member %s joins, and needs --join\n", *bootstrapID, *id)
			return exitUsage
		}
	}
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = *hb, *et, *ll
	cfg.LeaseLockDelay, cfg.WorkerTTL, cfg.JournalLimit = *lockDelay, *workerTTL, *journalLimit
	cfg.LogStore = *logStore
	cfg.Validator = policyValidator
	cfg.Logger = c.log
	cfg.Insecure, cfg.MetricsPublic, cfg.HeartbeatsToLog = *insecure, *metricsPublic, *heartbeatsToLog
	var err error
	if cfg.TLS, err = tf.server(*insecure); err != nil {
		fmt.Fprintln(c.stderr, "parley store:", err)
		return exitUsage
	}
	if len(cfg.Join) > 0 { // the token a new member joins with
		if cfg.Token, err = token(*tokenFile); err != nil {
			fmt.Fprintln(c.stderr, "parley store:", err)
			return exitUsage
		}
	}
	if env := strings.TrimSpace(os.Getenv("PARLEY_ADMIN_TOKEN")); *adminFile == "" && env != "" && cfg.Bootstrap {
		// from a Secret as an environment variable (Kubernetes mounts
		// secret files group-readable, which --admin-token-file refuses)
		if len(env) < 16 {
			fmt.Fprintln(c.stderr, "parley store: PARLEY_ADMIN_TOKEN: a token is at least 16 characters")
			return exitUsage
		}
		cfg.AdminToken = env
	} else if *adminFile != "" {
		secret, created, err := adminToken(*adminFile)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley store:", err)
			return exitUsage
		}
		cfg.AdminToken = secret
		if created {
			c.log.Info().Str("file", *adminFile).Msg("wrote a new admin token (mode 0600); keep it, it is shown nowhere else")
		}
	} else if cfg.Bootstrap && !cfg.Insecure {
		fmt.Fprintln(c.stderr, "parley store: --bootstrap needs --admin-token-file FILE (the first admin token, made there if FILE does not exist) or PARLEY_ADMIN_TOKEN")
		return exitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(c.stderr, "parley store:", err)
		return exitUsage
	}
	if cfg.Insecure {
		c.log.Warn().Msg("--insecure: the store serves plaintext and checks no token; anyone who reaches its ports may do anything")
	}
	stopProfile := func() {}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley store:", err)
			return exitFailed
		}
		var once sync.Once
		stopProfile = func() { once.Do(stop) }
		defer stopProfile()
	}
	m, err := raftstore.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley store:", err)
		return exitFailed
	}
	c.log.Info().Str("member", cfg.ID).Str("http", m.HTTPAddr()).Str("raft", cfg.RaftAddr).Msg("store member running")
	select {
	case <-ctx.Done():
	case err := <-m.Err():
		c.log.Error().Err(err).Msg("http server stopped")
	}
	stopProfile() // before the shutdown, which may outlast whoever waits for the profile
	if err := m.Stop(); err != nil {
		c.log.Warn().Err(err).Msg("shutdown")
	}
	return exitOK
}

// storeFlags adds --store and -o to a flag set.
type storeFlags struct {
	store     *string
	output    *string
	timeout   *time.Duration
	tls       tlsFlags
	tokenFile *string
}

// defaultStore is the store address when neither --store nor PARLEY_STORE
// says otherwise, and the address a member's API listens on by default.
const defaultStore = "127.0.0.1:7070"

// storeAddrs is the default of every --store flag: PARLEY_STORE, or
// defaultStore.
func storeAddrs() string { return envOr("PARLEY_STORE", defaultStore) }

// storeCmd starts a command that talks to the store: its flag set, with
// --store, -o and --timeout.
func (c *cli) storeCmd(name, usage string) (*flag.FlagSet, storeFlags) {
	fs := c.newFlags(name, usage)
	return fs, addStoreFlags(fs)
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		store:     fs.String("store", storeAddrs(), "store members' HTTP addresses, comma-separated (env PARLEY_STORE)"),
		output:    fs.String("o", "table", "output format: table or json"),
		timeout:   fs.Duration("timeout", 15*time.Second, "give up when no store member has answered after this long"),
		tls:       addTLSFlags(fs),
		tokenFile: addTokenFlag(fs),
	}
}

func (c *cli) storeClient(sf storeFlags) (*raftstore.Client, int, bool) {
	if *sf.output != "table" && *sf.output != "json" {
		fmt.Fprintf(c.stderr, "parley: -o must be table or json, not %q\n", *sf.output)
		return nil, exitUsage, false
	}
	cl, err := storeClientOf(*sf.store, sf.tls, *sf.tokenFile)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley:", err)
		return nil, exitUsage, false
	}
	if *sf.timeout <= 0 {
		fmt.Fprintln(c.stderr, "parley: --timeout must be positive")
		return nil, exitUsage, false
	}
	cl.Timeout = *sf.timeout
	return cl, exitOK, true
}

// storeArgs is the prelude of every store command: it parses the flags
// and positional arguments, runs check (when not nil) on them, and builds
// the client. On a problem it prints it and returns ok == false with the
// exit code: a check's error is bad usage.
func (c *cli) storeArgs(fs *flag.FlagSet, sf storeFlags, args []string, minPos, maxPos int, check func(pos []string) error) (*raftstore.Client, []string, int, bool) {
	pos, code, ok := c.parse(fs, args, minPos, maxPos)
	if !ok {
		return nil, nil, code, false
	}
	if check != nil {
		if err := check(pos); err != nil {
			fmt.Fprintf(c.stderr, "parley %s: %v\n", fs.Name(), err)
			return nil, nil, exitUsage, false
		}
	}
	cl, code, ok := c.storeClient(sf)
	return cl, pos, code, ok
}

// storeErr prints a store error and maps it to an exit code.
func (c *cli) storeErr(what string, err error) int {
	var ae *raftstore.Error
	if errors.As(err, &ae) {
		fmt.Fprintf(c.stderr, "parley %s: %s\n", what, ae.Message)
		if d, ok := ae.Details.([]any); ok && ae.Code == "invalid_policy" {
			for _, x := range d {
				if m, ok := x.(map[string]any); ok {
					fmt.Fprintf(c.stderr, "%v: %v: %v\n", m["pos"], m["severity"], m["message"])
				}
			}
		}
		switch {
		case ae.Code == "no_quorum" || ae.Code == "unknown_outcome":
			return exitUnavailable
		case ae.Code == raftstore.CodeInternal || ae.Status >= 500:
			return exitServer
		}
		return exitFailed
	}
	fmt.Fprintf(c.stderr, "parley %s: %v\n", what, err)
	return exitUnavailable
}

func fmtTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05Z")
}

// storeClientOf builds a store client with the TLS files and token given.
func storeClientOf(addrs string, tf tlsFlags, tokenFile string) (*raftstore.Client, error) {
	t, err := tf.client()
	if err != nil {
		return nil, err
	}
	tok, err := token(tokenFile)
	if err != nil {
		return nil, err
	}
	return raftstore.NewClient([]string{addrs}, raftstore.WithTLS(t), raftstore.WithToken(tok))
}
