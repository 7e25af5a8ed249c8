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
	fs := c.newFlags("sim", "sim --hosts N --vms M --seed S --listen ADDR [--control ADDR] [--ca-file PATH] [--cert-host NAME ...] [--drift] [--migrate-time D]")
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
	s, err := sim.New(sim.Config{Hosts: *hosts, VMs: *vms, Seed: *seed, Skew: *skew, Listen: *listen, Drift: *drift, MigrateTime: *migrate, Clusters: *clusters, DRS: *drs, ZonedStorage: *zoned, CertHosts: certHosts})
	if err != nil {
		fmt.Fprintln(c.stderr, "parley sim:", err)
		return exitUsage
	}
	defer s.Close()
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
	c.log.Info().Int("hosts", *hosts).Int("vms", *vms).Int64("seed", *seed).Dur("build", s.BuildTime).Msg("simulated datacentre ready")
	<-ctx.Done()
	return exitOK
}
