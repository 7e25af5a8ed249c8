package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/parleyhq/parley/worker/placement"
)

func init() {
	register("inventory",
		command{"export", "write vCenter's hosts and VMs (capacity, demand, placement) as JSON, for policy simulate --inventory", (*cli).inventoryExport},
	)
}

// Inventory is a recorded datacentre: the hosts and VMs of a scenario.
type Inventory struct {
	Hosts []placement.ScenarioHost `json:"hosts"`
	VMs   []placement.ScenarioVM   `json:"vms"`
}

func (c *cli) inventoryExport(ctx context.Context, args []string) int {
	fs := c.newFlags("inventory export", "inventory export [--vsphere URL] [--credentials-file F] [--vsphere-ca F | --thumbprint T] [--insecure] > dc.json")
	vsURL := fs.String("vsphere", "", "vCenter SDK URL (else GOVC_URL)")
	credFile := fs.String("credentials-file", "", "file with user:password for vCenter")
	insecure := fs.Bool("insecure", false, "do not verify vCenter's certificate")
	thumb := fs.String("thumbprint", "", "pin vCenter's certificate SHA-1 thumbprint")
	vsCA := fs.String("vsphere-ca", "", "trust this CA file for vCenter's certificate")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	vcfg := vsphere.Config{URL: *vsURL, Insecure: *insecure, Thumbprint: *thumb, CAFile: *vsCA}
	vcfg.FromGovcEnv()
	if vcfg.URL == "" {
		fmt.Fprintln(c.stderr, "parley inventory export: --vsphere (or GOVC_URL) is required")
		return exitUsage
	}
	if err := vcfg.Credentials(*credFile); err != nil {
		fmt.Fprintln(c.stderr, "parley inventory export:", err)
		return exitUsage
	}
	if err := vcfg.Check(); err != nil {
		fmt.Fprintln(c.stderr, "parley inventory export:", err)
		return exitUsage
	}
	vs, err := vsphere.Connect(ctx, vcfg, c.log)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley inventory export:", err)
		return exitUnavailable
	}
	defer vs.Close()
	inv, err := vs.Inventory(ctx)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley inventory export:", err)
		return exitUnavailable
	}
	var out Inventory
	names := map[string]string{}
	for _, h := range inv.Hosts {
		names[h.ID] = h.Name
		out.Hosts = append(out.Hosts, placement.ScenarioHost{Name: h.Name, CPUMHz: h.CPUCapacityMHz, MemMB: h.MemCapacityMB})
	}
	for _, v := range inv.VMs {
		if ok, _ := v.Movable(); !ok {
			continue // what parley never moves is not part of a simulation's choices
		}
		out.VMs = append(out.VMs, placement.ScenarioVM{Name: v.Name, Host: names[v.Host], CPUMHz: v.CPUDemandMHz, MemMB: v.MemMB})
	}
	writeJSON(c.stdout, out)
	return exitOK
}

// readInventory reads a recorded datacentre into a layout.
func readInventory(path string) (sim.Layout, error) {
	var l sim.Layout
	b, err := os.ReadFile(path)
	if err != nil {
		return l, err
	}
	var inv Inventory
	if err := json.Unmarshal(b, &inv); err != nil {
		return l, fmt.Errorf("%s: %v", path, err)
	}
	if len(inv.Hosts) < 2 {
		return l, fmt.Errorf("%s: at least two hosts", path)
	}
	idx := map[string]int{}
	for i, h := range inv.Hosts {
		if h.Name == "" || h.CPUMHz <= 0 || h.CPUMHz > 1<<30 || h.MemMB <= 0 {
			return l, fmt.Errorf("%s: host %d (%q) needs a name and positive cpu_mhz and mem_mb", path, i+1, h.Name)
		}
		idx[h.Name] = i
		l.Hosts = append(l.Hosts, sim.HostSpec{Name: h.Name, Cores: 1, MHz: int(h.CPUMHz), MemMB: h.MemMB})
	}
	for i, v := range inv.VMs {
		hi, ok := idx[v.Host]
		if !ok || v.Name == "" || v.CPUMHz < 0 || v.MemMB < 0 {
			return l, fmt.Errorf("%s: VM %d (%q) needs a name, a host of the file (not %q) and no negative demand", path, i+1, v.Name, v.Host)
		}
		l.VMs = append(l.VMs, sim.VMSpec{Name: v.Name, Host: hi, CPUMHz: v.CPUMHz, MemMB: v.MemMB})
	}
	return l, nil
}
