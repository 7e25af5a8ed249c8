// Package sim is a simulated datacentre on govmomi's vCenter simulator
// (vcsim), stricter and livelier than vcsim alone: a generated inventory
// from a seed, a consistent load model written to the properties real
// vCenter uses, optional drift, relocations that take time and fail with
// the proper faults, and a record of every relocation.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// HostSpec is one generated host.
type HostSpec struct {
	Name  string `json:"name"`
	Cores int    `json:"cores"`
	MHz   int    `json:"mhz"` // per core
	MemMB int64  `json:"mem_mb"`
}

// CPUCapacity is cores × MHz.
func (h HostSpec) CPUCapacity() int64 { return int64(h.Cores) * int64(h.MHz) }

// VMSpec is one generated VM and where it starts.
type VMSpec struct {
	Name   string `json:"name"`
	Host   int    `json:"host"` // index into Layout.Hosts
	CPUMHz int64  `json:"cpu_mhz"`
	MemMB  int64  `json:"mem_mb"`
}

// Layout is a generated datacentre: identical for the same inputs.
type Layout struct {
	Hosts []HostSpec `json:"hosts"`
	VMs   []VMSpec   `json:"vms"`
}

// host sizes, mixed as in a real fleet that grew over the years
var sizes = []HostSpec{
	{Cores: 16, MHz: 2400, MemMB: 256 << 10},
	{Cores: 32, MHz: 2600, MemMB: 512 << 10},
	{Cores: 48, MHz: 2800, MemMB: 1024 << 10},
}

// Generate builds a layout of hosts and VMs from a seed. skew is the share
// of the VMs placed on the first quarter of the hosts (0.25 is even; the
// default 0.5 puts half the VMs on a quarter of the hosts). utilisation is
// the total CPU demand as a share of the total capacity.
func Generate(hosts, vms int, seed int64, skew, utilisation float64) Layout {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	var l Layout
	var totalCPU int64
	for i := 0; i < hosts; i++ {
		s := sizes[rng.IntN(len(sizes))]
		s.Name = fmt.Sprintf("DC0_C0_H%d", i)
		l.Hosts = append(l.Hosts, s)
		totalCPU += s.CPUCapacity()
	}
	hot := max(1, hosts/4)
	weights := make([]float64, vms)
	var sum float64
	for i := range weights {
		weights[i] = math.Exp(rng.NormFloat64() * 0.6) // log-normal VM sizes
		sum += weights[i]
	}
	budget := float64(totalCPU) * utilisation
	for i := 0; i < vms; i++ {
		cpu := int64(weights[i] / sum * budget)
		mem := int64(1024 * (2 + rng.IntN(15)))
		var h int
		if hosts > 1 && rng.Float64() >= skew {
			h = hot + rng.IntN(hosts-hot)
		} else {
			h = rng.IntN(hot)
		}
		l.VMs = append(l.VMs, VMSpec{Name: fmt.Sprintf("DC0_C0_RP0_VM%d", i), Host: h, CPUMHz: max(cpu, 100), MemMB: mem})
	}
	return l
}
