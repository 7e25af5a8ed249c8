package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/worker"
)

func init() {
	topLevel["worker"] = command{"worker", "run the agent for one ESXi host (worker constraints: list its constraint library)", (*cli).workerRun}
}

func (c *cli) workerRun(ctx context.Context, args []string) int {
	if len(args) > 0 && args[0] == "constraints" {
		return c.workerConstraints(args[1:])
	}
	fs := c.newFlags("worker", "worker --id ID --host ESXI_HOST --vsphere URL --store ADDRS --listen ADDR --tls-ca CA --tls-cert CERT --tls-key KEY --token-file FILE [--advertise ADDR] [--policy NAME[,NAME...]] [--interval D] [--dry-run] [--insecure]")
	id := fs.String("id", "", "worker id, unique among workers")
	host := fs.String("host", "", "the ESXi host's name in vCenter")
	vsURL := fs.String("vsphere", "", "vCenter SDK URL, https://[user[:password]@]host/sdk")
	credFile := fs.String("credentials-file", "", "file with user:password for vCenter (else the URL or PARLEY_VSPHERE_USER/PARLEY_VSPHERE_PASSWORD)")
	insecure := fs.Bool("insecure", false, "a lab only: plaintext between workers and to the store, no token, and vCenter's certificate not verified")
	thumb := fs.String("thumbprint", "", "pin vCenter's certificate SHA-1 thumbprint (AA:BB:...); nothing else is accepted")
	vsCA := fs.String("vsphere-ca", "", "trust this CA file for vCenter's certificate (besides the system's)")
	tf := addTLSFlags(fs)
	tokenFile := addTokenFlag(fs)
	store := fs.String("store", storeAddrs(), "store members' HTTP addresses, comma-separated (env PARLEY_STORE)")
	listen := fs.String("listen", "127.0.0.1:7100", "address for peers' LCC messages")
	advertise := fs.String("advertise", "", "address peers dial (default: --listen)")
	policy := fs.String("policy", "balance", "policies to follow, comma-separated in priority order (evacuate is followed too while this host is drained)")
	interval := fs.Duration("interval", 2*time.Second, "tick")
	dry := fs.Bool("dry-run", false, "negotiate and journal, but reserve and move nothing")
	invFrom := fs.String("inventory", "watch", "how the worker follows vCenter's inventory: watch (one WaitForUpdatesEx filter kept open on this host, its VMs and its cluster; the peers' hosts from the store; the whole inventory read only when needed) or poll (a full read every tick)")
	stats := fs.String("stats", worker.StatsQuick, "where the host's load comes from: quickstats (summary.quickStats) or realtime (PerformanceManager's 20 s samples, quickStats where vCenter has none)")
	stopGrace := fs.Duration("stop-grace", worker.DefaultStopGrace, "on SIGTERM, how long the vMotions in flight may take to end before they are cancelled (keep it under the policy's lease_ttl)")
	coexist := fs.Bool("coexist-drs", false, "balance this host even when DRS balances its cluster (enabled and fully automated); by default parley leaves that to DRS")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	vcfg := vsphere.Config{URL: *vsURL, Insecure: *insecure, Thumbprint: *thumb, CAFile: *vsCA}
	vcfg.FromGovcEnv() // govc's environment, where parley's own flags are absent
	if *id == "" || *host == "" || vcfg.URL == "" || *interval <= 0 {
		fmt.Fprintln(c.stderr, "parley worker: --id, --host, --vsphere (or GOVC_URL) and a positive --interval are required")
		fs.Usage()
		return exitUsage
	}
	if *invFrom != "watch" && *invFrom != "poll" {
		fmt.Fprintf(c.stderr, "parley worker: --inventory %q: want watch or poll\n", *invFrom)
		return exitUsage
	}
	if *stats != worker.StatsQuick && *stats != worker.StatsRealtime {
		fmt.Fprintf(c.stderr, "parley worker: --stats %q: want %s or %s\n", *stats, worker.StatsQuick, worker.StatsRealtime)
		return exitUsage
	}
	if err := vcfg.Credentials(*credFile); err != nil {
		fmt.Fprintln(c.stderr, "parley worker:", err)
		return exitUsage
	}
	if err := vcfg.Check(); err != nil {
		fmt.Fprintln(c.stderr, "parley worker:", err)
		return exitUsage
	}
	if vcfg.Insecure && !*insecure {
		c.log.Warn().Msg("GOVC_INSECURE: vCenter's certificate is not verified")
	}
	if vcfg.PasswordInURL {
		c.log.Warn().Msg("the vCenter password is in --vsphere, where ps shows it to every local user: use PARLEY_VSPHERE_PASSWORD or --credentials-file")
	}
	wtls, err := tf.server(*insecure)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley worker:", err)
		return exitUsage
	}
	if *insecure {
		c.log.Warn().Msg("--insecure: messages between workers and to the store are plaintext, and any message is taken from anyone")
	} else if wtls.Name() != *id {
		fmt.Fprintf(c.stderr, "parley worker: the certificate %s is %q's, not worker %q's: peers check that a message's sender is its certificate's name\n", *tf.cert, wtls.Name(), *id)
		return exitUsage
	}
	st, err := storeClientOf(*store, tf, *tokenFile)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley worker:", err)
		return exitUsage
	}
	var vs *vsphere.Client
	for {
		vs, err = vsphere.Connect(ctx, vcfg, c.log)
		if err == nil {
			break
		}
		c.log.Warn().Err(err).Str("vcenter", vsphere.Redacted(vcfg.URL)).Msg("cannot reach vCenter; retrying")
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(2 * time.Second):
		}
	}
	defer vs.Close()
	if vcfg.Cluster != "" { // GOVC_CLUSTER: the host must be in it
		if problem := hostInCluster(ctx, vs, *host, vcfg.Cluster); problem != "" {
			fmt.Fprintln(c.stderr, "parley worker:", problem)
			return exitUsage
		}
	}
	var source worker.VSphere = vs
	if *invFrom == "watch" {
		wctx, stopWatch := context.WithCancel(ctx)
		watched := vsphere.NewWatched(wctx, vs, *host, 0)
		defer func() { // before vs.Close: the watch ends, and its collector is destroyed, first
			stopWatch()
			select {
			case <-watched.Done():
			case <-time.After(5 * time.Second):
			}
		}()
		source = watched
	}
	w, err := worker.New(worker.Config{ID: *id, Host: *host, Listen: *listen, Advertise: *advertise, Policy: *policy, Interval: *interval, DryRun: *dry, Logger: c.log, TLS: wtls, CoexistDRS: *coexist, Stats: *stats, StopGrace: *stopGrace}, source, st)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley worker:", err)
		return exitUsage
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(c.stderr, "parley worker:", err)
		return exitFailed
	}
	return exitOK
}

func (c *cli) workerConstraints(args []string) int {
	fs := c.newFlags("worker constraints", "worker constraints [-o table|json]")
	out := fs.String("o", "table", "output format: table or json")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *out == "json" {
		writeJSON(c.stdout, policies.Vocabulary)
		return exitOK
	}
	t := newTable(c.stdout, "CONSTRAINT", "DOC")
	for _, v := range policies.Vocabulary {
		t.row(v.Key(), v.Doc)
	}
	t.flush()
	return exitOK
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// hostInCluster says what is wrong when host is not in the named cluster.
func hostInCluster(ctx context.Context, vs *vsphere.Client, host, cluster string) string {
	inv, err := vs.Inventory(ctx)
	if err != nil {
		return err.Error()
	}
	h, ok := inv.Host(host)
	if !ok {
		return fmt.Sprintf("host %s is not in vCenter", host)
	}
	if c, _ := inv.Cluster(h.Cluster); c.Name != cluster {
		return fmt.Sprintf("host %s is in cluster %q, not GOVC_CLUSTER %q", host, c.Name, cluster)
	}
	return ""
}
