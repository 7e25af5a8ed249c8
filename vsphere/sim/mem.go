package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parleyhq/parley/vsphere"
)

// MemDC is a datacentre in memory, without vcsim or HTTP: the layout's
// hosts and VMs with their demand, and relocations that move demand from
// one host to another. It answers the calls a worker makes of vCenter
// (Inventory, Migrate, VMState, SetMaintenance) with a subset of the
// strict simulator's refusals: an unknown VM or host is
// vsphere.ErrNotFound, a target that is disconnected or in maintenance is
// vsphere.ErrHostUnavailable, and a VM with a relocation in flight refuses
// another with vsphere.ErrTaskInProgress. It does not refuse what the
// strict simulator refuses by cluster, resource pool, DRS rule or
// datastore (its layouts have one cluster, no rules and shared storage),
// nor a target without room: callers check room. Relocations take MigrateTime
// (instant by default). Host load here is the sum of its VMs' demand, with
// no drift. The placement benchmark runs thousands of workers on it.
type MemDC struct {
	// MigrateTime is how long a relocation is in flight; set it before use.
	MigrateTime time.Duration

	mu       sync.Mutex
	hosts    []vsphere.Host
	vms      []vsphere.VM
	vmIdx    map[string]int // VM id -> index
	hostIdx  map[string]int // host id -> index
	inflight map[string]bool
	clusters []vsphere.Cluster
	inv      *vsphere.Inventory // cached until the next change
	moves    int
	record   []Move
}

// Move is one relocation MemDC made, by names.
type Move struct {
	VM   string `json:"vm"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Record lists the relocations made, oldest first.
func (dc *MemDC) Record() []Move {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return append([]Move(nil), dc.record...)
}

// NewMemDC builds the layout in memory. Host ids are host-N and VM ids
// vm-N, N being the index in the layout.
func NewMemDC(l Layout) *MemDC {
	dc := &MemDC{vmIdx: map[string]int{}, hostIdx: map[string]int{}, inflight: map[string]bool{}}
	for i, h := range l.Hosts {
		id := fmt.Sprintf("host-%d", i)
		dc.hosts = append(dc.hosts, vsphere.Host{ID: id, Name: h.Name, ConnectionState: vsphere.Connected,
			CPUCapacityMHz: h.CPUCapacity(), MemCapacityMB: h.MemMB})
		dc.hostIdx[id] = i
	}
	for i, v := range l.VMs {
		id := fmt.Sprintf("vm-%d", i)
		dc.vms = append(dc.vms, vsphere.VM{ID: id, Name: v.Name, PowerState: vsphere.PoweredOnState, Host: dc.hosts[v.Host].ID, CPUDemandMHz: v.CPUMHz, MemMB: v.MemMB})
		dc.vmIdx[id] = i
		dc.hosts[v.Host].CPUUsedMHz += v.CPUMHz
		dc.hosts[v.Host].MemUsedMB += v.MemMB
	}
	return dc
}

// NewMemDCClusters is NewMemDC with the hosts in clusters of size hosts
// each, in layout order (domain-c1, domain-c2, ...; the last may be
// smaller), DRS off: vSphere caps a cluster's hosts (96 in vSphere 8), so
// a thousand hosts are a dozen clusters or more. size <= 0 is one
// standalone group, as NewMemDC.
func NewMemDCClusters(l Layout, size int) *MemDC {
	dc := NewMemDC(l)
	if size <= 0 {
		return dc
	}
	for i := range dc.hosts {
		id := fmt.Sprintf("domain-c%d", i/size+1)
		dc.hosts[i].Cluster = id
		if i%size == 0 {
			dc.clusters = append(dc.clusters, vsphere.Cluster{ID: id, Name: fmt.Sprintf("cluster-%d", i/size+1)})
		}
	}
	return dc
}

// Inventory returns every host and VM. The result is shared until the
// next change: callers must not modify it.
func (dc *MemDC) Inventory(context.Context) (*vsphere.Inventory, error) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.inv == nil {
		dc.inv = &vsphere.Inventory{Hosts: append([]vsphere.Host(nil), dc.hosts...), VMs: append([]vsphere.VM(nil), dc.vms...), Clusters: dc.clusters}
	}
	return dc.inv, nil
}

// Hosts returns a copy of the hosts as they are now.
func (dc *MemDC) Hosts() []vsphere.Host {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return append([]vsphere.Host(nil), dc.hosts...)
}

// Moves is the number of relocations that succeeded.
func (dc *MemDC) Moves() int {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.moves
}

// Migrate relocates a VM to a host, refusing as the strict simulator does.
func (dc *MemDC) Migrate(ctx context.Context, vmID, hostID string, _ vsphere.Progress) error {
	dc.mu.Lock()
	i, ok := dc.vmIdx[vmID]
	t, ok2 := dc.hostIdx[hostID]
	switch {
	case !ok || !ok2:
		dc.mu.Unlock()
		return fmt.Errorf("relocate %s to %s: %w", vmID, hostID, vsphere.ErrNotFound)
	case !dc.hosts[t].Available():
		dc.mu.Unlock()
		return fmt.Errorf("relocate %s to %s: %w", vmID, dc.hosts[t].Name, vsphere.ErrHostUnavailable)
	case dc.inflight[vmID]:
		dc.mu.Unlock()
		return fmt.Errorf("relocate %s: %w", vmID, vsphere.ErrTaskInProgress)
	}
	dc.inflight[vmID] = true
	dc.mu.Unlock()
	if dc.MigrateTime > 0 {
		select {
		case <-time.After(dc.MigrateTime):
		case <-ctx.Done():
		}
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	delete(dc.inflight, vmID)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("relocate %s: %w", vmID, err)
	}
	if !dc.hosts[t].Available() { // the target went away meanwhile
		return fmt.Errorf("relocate %s to %s: %w", vmID, dc.hosts[t].Name, vsphere.ErrHostUnavailable)
	}
	v := &dc.vms[i]
	s := dc.hostIdx[v.Host]
	dc.hosts[s].CPUUsedMHz -= v.CPUDemandMHz
	dc.hosts[s].MemUsedMB -= v.MemMB
	dc.hosts[t].CPUUsedMHz += v.CPUDemandMHz
	dc.hosts[t].MemUsedMB += v.MemMB
	dc.record = append(dc.record, Move{VM: v.Name, From: dc.hosts[s].Name, To: dc.hosts[t].Name})
	v.Host = hostID
	dc.inv = nil
	dc.moves++
	return nil
}

// VMState says where a VM is and whether a relocation of it is in flight.
func (dc *MemDC) VMState(_ context.Context, vmID string) (vsphere.TaskState, error) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	i, ok := dc.vmIdx[vmID]
	if !ok {
		return vsphere.TaskState{}, fmt.Errorf("vm %s: %w", vmID, vsphere.ErrNotFound)
	}
	return vsphere.TaskState{Host: dc.vms[i].Host, Running: dc.inflight[vmID]}, nil
}

// SetMaintenance puts a host into maintenance mode or takes it out.
func (dc *MemDC) SetMaintenance(_ context.Context, hostID string, on bool) error {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	i, ok := dc.hostIdx[hostID]
	if !ok {
		return fmt.Errorf("maintenance mode on %s: %w", hostID, vsphere.ErrNotFound)
	}
	dc.hosts[i].InMaintenance = on
	dc.inv = nil
	return nil
}

// SetConnected connects or disconnects a host (by id).
func (dc *MemDC) SetConnected(hostID string, connected bool) error {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	i, ok := dc.hostIdx[hostID]
	if !ok {
		return fmt.Errorf("host %s: %w", hostID, vsphere.ErrNotFound)
	}
	dc.hosts[i].ConnectionState = vsphere.Disconnected
	if connected {
		dc.hosts[i].ConnectionState = vsphere.Connected
	}
	dc.inv = nil
	return nil
}
