package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/parleyhq/parley/vsphere/sim"
)

func init() {
	topLevel["sim"] = command{"sim", "run a simulated vCenter with a generated datacentre", (*cli).simRun}
}

func (c *cli) simRun(ctx context.Context, args []string) int {
	fs := c.newFlags("sim", "sim --hosts N --vms M --seed S --listen ADDR [--control ADDR] [--ca-file PATH] [--cert-host NAME ...] [--drift] [--migrate-time D] [--state DIR] [--fault-outage refuse|hang] [--fault-latency-ms N] [--fault-relocate-fail-rate R] ...")
	hosts := fs.Int("hosts", 8, "number of ESXi hosts")
	vms := fs.Int("vms", 64, "number of VMs")
	seed := fs.Int64("seed", 1, "seed of the generated layout")
	skew := fs.Float64("skew", 0.5, "share of the VMs on the first quarter of the hosts")
	listen := fs.String("listen", "127.0.0.1:0", "address of the vCenter SDK")
	control := fs.String("control", "127.0.0.1:0", "address of the control API (demand, maintenance, relocation record)")
	drift := fs.Bool("drift", false, "let VM demand wander")
	migrate := fs.Duration("migrate-time", 2*time.Second, "how long a relocation takes")
	clusters := fs.Int("clusters", 1, "compute clusters the hosts are spread over (must divide --hosts)")
	drs := fs.String("drs", "manual", "the clusters' DRS: fullyAutomated, partiallyAutomated, manual or off")
	zoned := fs.Bool("zoned-storage", false, "mount a second datastore on half of each cluster's hosts only, with some VMs' disks on it")
	caFile := fs.String("ca-file", "", "where to write the simulator's CA certificate (default: a file in the temporary folder, printed)")
	outage := fs.String("fault-outage", "none", "start with an outage: refuse (SDK connections closed), hang (SDK calls unanswered) or none")
	latency := fs.Int("fault-latency-ms", 0, "milliseconds added to every SDK call")
	jitter := fs.Int("fault-jitter-ms", 0, "up to this many milliseconds more or less, at random, on every SDK call")
	failRate := fs.Float64("fault-relocate-fail-rate", 0, "share of relocations that fail (0 to 1)")
	failName := fs.String("fault-relocate-fault", "", "the fault a failed relocation ends with (default InsufficientResourcesFault)")
	stallRate := fs.Float64("fault-relocate-stall-rate", 0, "share of relocations that stall until cancelled (0 to 1)")
	stateDir := fs.String("state", "", "keep the simulator's state (inventory, placement, demand, maintenance, rules, TLS key) in this folder, saved every 2 s and on SIGTERM, and start from it when it holds one: a restart is the same vCenter (use a fixed --listen so that its address stays too)")
	var certHosts stringList
	fs.Var(&certHosts, "cert-host", "a DNS name or IP address clients reach the simulator by, for its certificate (repeatable; loopback and --listen's host always are)")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *hosts < 1 || *hosts > 4096 || *vms < 0 || *vms > 100000 || *skew <= 0 || *skew > 1 || *migrate <= 0 {
		fmt.Fprintln(c.stderr, "parley sim: --hosts must be 1..4096, --vms 0..100000, --skew in (0, 1], --migrate-time positive")
		return exitUsage
	}
	if *clusters < 1 || *hosts%*clusters != 0 {
		fmt.Fprintf(c.stderr, "parley sim: --clusters must divide --hosts (%d hosts, %d clusters)\n", *hosts, *clusters)
		return exitUsage
	}
	s, err := sim.New(sim.Config{Hosts: *hosts, VMs: *vms, Seed: *seed, Skew: *skew, Listen: *listen, Drift: *drift, MigrateTime: *migrate, Clusters: *clusters, DRS: *drs, ZonedStorage: *zoned, CertHosts: certHosts, StateDir: *stateDir})
	if err != nil {
		fmt.Fprintln(c.stderr, "parley sim:", err)
		return exitUsage
	}
	defer s.Close()
	if _, err := s.SetFaults(sim.FaultChange{Outage: outage, LatencyMS: latency, JitterMS: jitter, RelocateFailRate: failRate, RelocateFault: failName, RelocateStallRate: stallRate}); err != nil {
		fmt.Fprintln(c.stderr, "parley sim: --fault-...:", err)
		return exitUsage
	}
	if *caFile == "" {
		*caFile = filepath.Join(os.TempDir(), fmt.Sprintf("parley-sim-%d-ca.pem", os.Getpid()))
		defer os.Remove(*caFile)
	}
	if err := s.WriteCA(*caFile); err != nil {
		fmt.Fprintln(c.stderr, "parley sim: CA file:", err)
		return exitFailed
	}
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley sim: control API:", err)
		return exitFailed
	}
	srv := &http.Server{Handler: s.ControlHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10, TLSConfig: s.ServerTLS()}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	// The SDK URL carries vcsim's placeholder credentials; they are not secrets.
	fmt.Fprintf(c.stdout, "SDK %s\nTHUMBPRINT %s\nCA %s\nCONTROL https://%s\n", s.URL(), s.Thumbprint(), *caFile, ln.Addr())
	if s.Resumed {
		c.log.Info().Str("state", *stateDir).Msg("resumed from the saved state: its inventory, placement and certificate, whatever --hosts, --vms and --seed say")
	}
	c.log.Info().Int("hosts", *hosts).Int("vms", *vms).Int64("seed", *seed).Dur("build", s.BuildTime).Msg("simulated datacentre ready")
	<-ctx.Done()
	return exitOK
}
