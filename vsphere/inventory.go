package vsphere

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Host is an ESXi host with its capacity and use.
type Host struct {
	ID              string   `json:"id"` // managed object id: host-42
	Name            string   `json:"name"`
	ConnectionState string   `json:"connection_state"`
	InMaintenance   bool     `json:"in_maintenance"`
	CPUCapacityMHz  int64    `json:"cpu_capacity_mhz"`
	MemCapacityMB   int64    `json:"mem_capacity_mb"`
	CPUUsedMHz      int64    `json:"cpu_used_mhz"`
	MemUsedMB       int64    `json:"mem_used_mb"`
	Cluster         string   `json:"cluster,omitempty"` // the cluster's id; "" for a standalone host
	Datastores      []string `json:"datastores,omitempty"`
	Networks        []string `json:"networks,omitempty"`
}

// Available reports whether the host can run and receive VMs.
func (h Host) Available() bool { return h.ConnectionState == Connected && !h.InMaintenance }

// vCenter's words for a VM's power state and a host's or VM's connection
// state, as its API spells them; parley outside this package reads them
// through PoweredOn and Available.
const (
	PoweredOnState = "poweredOn"
	Connected      = "connected"
	Disconnected   = "disconnected"
)

// PoweredOn says whether vCenter has the VM running.
func (v VM) PoweredOn() bool { return v.PowerState == PoweredOnState }

// VM is a virtual machine with its demand.
type VM struct {
	ID           string `json:"id"` // vm-42
	Name         string `json:"name"`
	PowerState   string `json:"power_state"`
	Host         string `json:"host"` // host id, from runtime.host
	CPUDemandMHz int64  `json:"cpu_demand_mhz"`
	MemMB        int64  `json:"mem_mb"`

	// what decides whether it may move at all (Movable)
	Template         bool     `json:"template,omitempty"`
	ConnectionState  string   `json:"connection_state,omitempty"`
	FaultTolerant    bool     `json:"fault_tolerant,omitempty"`
	ManagedBy        string   `json:"managed_by,omitempty"` // a solution's extension key, such as vSphere Cluster Services
	RelocateDisabled bool     `json:"relocate_disabled,omitempty"`
	Datastores       []string `json:"datastores,omitempty"` // where its disks are: a target must see them all
	Networks         []string `json:"networks,omitempty"`   // what its NICs use: a target must have them all
}

// Inventory is one consistent read of hosts and VMs. Treat it as
// read-only once built: VMsOn indexes it on first use.
type Inventory struct {
	Hosts    []Host    `json:"hosts"`
	VMs      []VM      `json:"vms"`
	Clusters []Cluster `json:"clusters,omitempty"`
	// ReadAt is when vCenter last vouched for what this says of the
	// reader's own host: when a whole read began, or the watch's last
	// answer. Zero where unknown (an inventory built by hand).
	ReadAt time.Time `json:"-"`

	once   sync.Once
	byHost map[string][]VM
	byName map[string]int // VM name and id -> index in VMs

	scopeMu sync.Mutex
	scoped  map[string]*Inventory // Scope's results, by cluster
}

// Host returns the host with id or name, or false.
func (inv *Inventory) Host(idOrName string) (Host, bool) {
	for _, h := range inv.Hosts {
		if h.ID == idOrName || h.Name == idOrName {
			return h, true
		}
	}
	return Host{}, false
}

// index builds the lookups once; an Inventory is not changed after it is
// returned.
func (inv *Inventory) index() {
	inv.once.Do(func() {
		inv.byHost = map[string][]VM{}
		inv.byName = make(map[string]int, 2*len(inv.VMs))
		for i, v := range inv.VMs {
			inv.byHost[v.Host] = append(inv.byHost[v.Host], v)
			inv.byName[v.ID] = i
			if _, dup := inv.byName[v.Name]; !dup { // names may repeat in vCenter: the first wins
				inv.byName[v.Name] = i
			}
		}
	})
}

// VMsOn groups VMs by runtime.host.
func (inv *Inventory) VMsOn(hostID string) []VM {
	inv.index()
	return inv.byHost[hostID]
}

// VM returns the VM with id or name, or false.
func (inv *Inventory) VM(idOrName string) (VM, bool) {
	inv.index()
	i, ok := inv.byName[idOrName]
	if !ok {
		return VM{}, false
	}
	return inv.VMs[i], true
}

var hostProps = []string{"name", "parent", "datastore", "network", "runtime.connectionState", "runtime.inMaintenanceMode",
	"summary.hardware.cpuMhz", "summary.hardware.numCpuCores", "summary.hardware.memorySize",
	"summary.quickStats.overallCpuUsage", "summary.quickStats.overallMemoryUsage"}

var vmProps = []string{"name", "runtime.powerState", "runtime.host",
	"summary.quickStats.overallCpuUsage", "summary.quickStats.guestMemoryUsage", "summary.config.memorySizeMB",
	"config.template", "runtime.connectionState", "runtime.faultToleranceState", "config.managedBy", "disabledMethod", "datastore", "network"}

var clusterProps = []string{"name", "configurationEx"}

// filterSpec selects hosts and VMs through a container view.
func filterSpec(v *view.ContainerView) types.PropertyFilterSpec {
	return types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{
			Obj:  v.Reference(),
			Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{
				Type: "ContainerView", Path: "view",
			}},
		}},
		PropSet: []types.PropertySpec{{Type: "HostSystem", PathSet: hostProps}, {Type: "VirtualMachine", PathSet: vmProps},
			{Type: "ClusterComputeResource", PathSet: clusterProps}},
	}
}

func (c *Client) newView(ctx context.Context, vc *vim25.Client) (*view.ContainerView, error) {
	return view.NewManager(vc).CreateContainerView(ctx, vc.ServiceContent.RootFolder, []string{"HostSystem", "VirtualMachine", "ClusterComputeResource"}, true)
}

// Inventory reads every host and VM in one property collector round trip
// over a container view.
func (c *Client) Inventory(ctx context.Context) (*Inventory, error) {
	var inv *Inventory
	start := time.Now()
	err := c.do(ctx, func(vc *vim25.Client) error {
		v, err := c.newView(ctx, vc)
		if err != nil {
			return err
		}
		defer v.Destroy(context.WithoutCancel(ctx))
		pc := property.DefaultCollector(vc)
		res, err := pc.RetrieveProperties(ctx, types.RetrieveProperties{SpecSet: []types.PropertyFilterSpec{filterSpec(v)}})
		if err != nil {
			return err
		}
		st := newState()
		for _, oc := range res.Returnval {
			st.set(oc.Obj, oc.PropSet)
		}
		inv = st.inventory()
		inv.ReadAt = start
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vsphere: inventory: %w", classify(err))
	}
	return inv, nil
}

// state accumulates property values by object, for reads and watches.
type state struct {
	hosts    map[string]*Host
	vms      map[string]*VM
	clusters map[string]*Cluster
	cores    map[string]int64 // host -> cores, for capacity
	mhz      map[string]int64
}

func newState() *state {
	return &state{hosts: map[string]*Host{}, vms: map[string]*VM{}, clusters: map[string]*Cluster{}, cores: map[string]int64{}, mhz: map[string]int64{}}
}

func num(v any) int64 {
	switch x := v.(type) {
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case int:
		return int64(x)
	}
	return 0
}

func (s *state) set(ref types.ManagedObjectReference, props []types.DynamicProperty) {
	switch ref.Type {
	case "HostSystem":
		h := s.hosts[ref.Value]
		if h == nil {
			h = &Host{ID: ref.Value}
			s.hosts[ref.Value] = h
		}
		for _, p := range props {
			switch p.Name {
			case "name":
				h.Name, _ = p.Val.(string)
			case "parent":
				h.Cluster = clusterOf(p)
			case "datastore":
				h.Datastores = refList(p)
			case "network":
				h.Networks = refList(p)
			case "runtime.connectionState":
				if cs, ok := p.Val.(types.HostSystemConnectionState); ok {
					h.ConnectionState = string(cs)
				}
			case "runtime.inMaintenanceMode":
				h.InMaintenance, _ = p.Val.(bool)
			case "summary.hardware.cpuMhz":
				s.mhz[ref.Value] = num(p.Val)
			case "summary.hardware.numCpuCores":
				s.cores[ref.Value] = num(p.Val)
			case "summary.hardware.memorySize":
				h.MemCapacityMB = num(p.Val) / (1 << 20)
			case "summary.quickStats.overallCpuUsage":
				h.CPUUsedMHz = num(p.Val)
			case "summary.quickStats.overallMemoryUsage":
				h.MemUsedMB = num(p.Val)
			}
		}
		h.CPUCapacityMHz = s.mhz[ref.Value] * s.cores[ref.Value]
	case "VirtualMachine":
		v := s.vms[ref.Value]
		if v == nil {
			v = &VM{ID: ref.Value}
			s.vms[ref.Value] = v
		}
		for _, p := range props {
			switch p.Name {
			case "name":
				v.Name, _ = p.Val.(string)
			case "runtime.powerState":
				if ps, ok := p.Val.(types.VirtualMachinePowerState); ok {
					v.PowerState = string(ps)
				}
			case "runtime.host":
				if r, ok := p.Val.(types.ManagedObjectReference); ok {
					v.Host = r.Value
				}
			case "summary.quickStats.overallCpuUsage":
				v.CPUDemandMHz = num(p.Val)
			case "summary.quickStats.guestMemoryUsage":
				v.MemMB = num(p.Val)
			default:
				setVMExtra(v, p)
			}
		}
	case "ClusterComputeResource":
		c := s.clusters[ref.Value]
		if c == nil {
			c = &Cluster{ID: ref.Value}
			s.clusters[ref.Value] = c
		}
		for _, p := range props {
			setCluster(c, p)
		}
	}
}

func (s *state) remove(ref types.ManagedObjectReference) {
	delete(s.hosts, ref.Value)
	delete(s.vms, ref.Value)
	delete(s.clusters, ref.Value)
}

func (s *state) inventory() *Inventory {
	inv := &Inventory{}
	for _, h := range s.hosts {
		inv.Hosts = append(inv.Hosts, *h)
	}
	for _, v := range s.vms {
		inv.VMs = append(inv.VMs, *v)
	}
	for _, c := range s.clusters {
		inv.Clusters = append(inv.Clusters, *c)
	}
	sort.Slice(inv.Clusters, func(i, j int) bool { return inv.Clusters[i].Name < inv.Clusters[j].Name })
	sort.Slice(inv.Hosts, func(i, j int) bool { return inv.Hosts[i].Name < inv.Hosts[j].Name })
	sort.Slice(inv.VMs, func(i, j int) bool { return inv.VMs[i].Name < inv.VMs[j].Name })
	return inv
}

// Progress reports a migration's percentage.
type Progress func(percent int)

func hostRef(id string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "HostSystem", Value: id}
}

func vmRef(id string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VirtualMachine", Value: id}
}

// pool returns the resource pool of the host's compute resource.
func (c *Client) pool(ctx context.Context, vc *vim25.Client, hostID string) (types.ManagedObjectReference, error) {
	c.poolMu.Lock()
	p, ok := c.pools[hostID]
	c.poolMu.Unlock()
	if ok {
		return p, nil
	}
	pc := property.DefaultCollector(vc)
	var h mo.HostSystem
	if err := pc.RetrieveOne(ctx, hostRef(hostID), []string{"parent"}, &h); err != nil {
		return p, err
	}
	if h.Parent == nil {
		return p, fmt.Errorf("%w: host %s has no compute resource", ErrNotFound, hostID)
	}
	var cr mo.ComputeResource
	if err := pc.RetrieveOne(ctx, *h.Parent, []string{"resourcePool"}, &cr); err != nil {
		return p, err
	}
	if cr.ResourcePool == nil {
		return p, fmt.Errorf("%w: host %s has no resource pool", ErrNotFound, hostID)
	}
	c.poolMu.Lock()
	c.pools[hostID] = *cr.ResourcePool
	c.poolMu.Unlock()
	return *cr.ResourcePool, nil
}

// MigrateError is a failed migration, wrapping the sentinel for its kind.
type MigrateError struct {
	VM, Host string
	Err      error
	Fault    string // vCenter's fault type (FaultName), when it gave one
}

func (e *MigrateError) Error() string {
	return fmt.Sprintf("vsphere: migrate %s to %s: %v", e.VM, e.Host, e.Err)
}

func (e *MigrateError) Unwrap() error { return e.Err }

// Migrate moves a VM to a host with RelocateVM_Task (host and its resource
// pool), reporting progress, and returns when the task has ended. A fault
// on the call and a failed task are both returned as typed errors.
func (c *Client) Migrate(ctx context.Context, vmID, hostID string, prog Progress) error {
	err := c.do(ctx, func(vc *vim25.Client) error {
		pool, err := c.pool(ctx, vc, hostID)
		if err != nil {
			return err
		}
		h := hostRef(hostID)
		req := types.RelocateVM_Task{This: vmRef(vmID), Spec: types.VirtualMachineRelocateSpec{Host: &h, Pool: &pool},
			Priority: types.VirtualMachineMovePriorityDefaultPriority}
		res, err := methods.RelocateVM_Task(ctx, vc, &req)
		if err != nil {
			return err
		}
		t := object.NewTask(vc, res.Returnval)
		err = waitTask(ctx, vc, t.Reference(), prog)
		if ctx.Err() != nil {
			// the caller gave up; govmomi's wait may end without an error
			// when its context is cancelled, so look at the context itself
			return c.cancelTask(ctx, t, vmID)
		}
		return err
	})
	if errors.Is(err, ErrCancelled) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// the caller's deadline passed: cancelled, and a timeout
			return &MigrateError{VM: vmID, Host: hostID, Err: fmt.Errorf("%w at the deadline: %w", ErrCancelled, ErrTimeout)}
		}
		return &MigrateError{VM: vmID, Host: hostID, Err: ErrCancelled}
	}
	if err == nil {
		return nil
	}
	var te task.Error
	if errors.As(err, &te) && te.LocalizedMethodFault != nil {
		err = fmt.Errorf("task failed: %s: %w", te.LocalizedMessage, err)
	}
	return &MigrateError{VM: vmID, Host: hostID, Err: classify(err), Fault: FaultName(err)}
}

// TaskState is what vCenter says of a VM's most recent relocation task,
// for a worker reconciling after a restart.
type TaskState struct {
	Running bool
	Host    string // where the VM is now (runtime.host)
}

// cancelTask cancels a relocation the caller gave up on (its context
// ended: its lease is lost, say) and waits to learn how the task ended:
// ErrCancelled when vCenter stopped it, nil when it completed first.
func (c *Client) cancelTask(ctx context.Context, t *object.Task, vmID string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// through do: a session that expired during the relocation is logged in
	// again, or the cancel would be refused and the task left running
	if err := c.do(cctx, func(vc *vim25.Client) error { return object.NewTask(vc, t.Reference()).Cancel(cctx) }); err != nil {
		c.log.Warn().Err(err).Str("vm", vmID).Str("task", t.Reference().Value).Msg("cancel the relocation")
	}
	if err := waitTask(cctx, c.client(), t.Reference(), nil); err != nil {
		return fmt.Errorf("%w: %v", ErrCancelled, err)
	}
	c.log.Warn().Str("vm", vmID).Str("task", t.Reference().Value).Msg("the relocation completed before it could be cancelled")
	return nil
}

// VMState reads a VM's current host and whether a task is running on it.
func (c *Client) VMState(ctx context.Context, vmID string) (TaskState, error) {
	var st TaskState
	err := c.do(ctx, func(vc *vim25.Client) error {
		var vm mo.VirtualMachine
		if err := property.DefaultCollector(vc).RetrieveOne(ctx, vmRef(vmID), []string{"runtime.host", "recentTask"}, &vm); err != nil {
			return err
		}
		if vm.Runtime.Host != nil {
			st.Host = vm.Runtime.Host.Value
		}
		if len(vm.RecentTask) > 0 {
			var tasks []mo.Task
			if err := property.DefaultCollector(vc).Retrieve(ctx, vm.RecentTask, []string{"info.state"}, &tasks); err == nil {
				for _, t := range tasks {
					if t.Info.State == types.TaskInfoStateRunning || t.Info.State == types.TaskInfoStateQueued {
						st.Running = true
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("vsphere: state of %s: %w", vmID, classify(err))
	}
	return st, nil
}

// SetMaintenance enters or leaves maintenance mode on a host.
func (c *Client) SetMaintenance(ctx context.Context, hostID string, on bool) error {
	err := c.do(ctx, func(vc *vim25.Client) error {
		h := object.NewHostSystem(vc, hostRef(hostID))
		var t *object.Task
		var err error
		if on {
			t, err = h.EnterMaintenanceMode(ctx, 0, false, nil)
		} else {
			t, err = h.ExitMaintenanceMode(ctx, 0)
		}
		if err != nil {
			return err
		}
		return waitTask(ctx, vc, t.Reference(), nil)
	})
	if err != nil {
		return fmt.Errorf("vsphere: maintenance mode %v on %s: %w", on, hostID, classify(err))
	}
	return nil
}

// LoadStats summarises host CPU load (use / capacity) across hosts.
type LoadStats struct {
	Mean, StdDev, Max float64
	MaxHost           string
}

// CPULoadStats computes the mean, the standard deviation (the imbalance)
// and the most loaded host of the hosts' CPU load.
func CPULoadStats(hosts []Host) LoadStats {
	var s LoadStats
	if len(hosts) == 0 {
		return s
	}
	loads := make([]float64, len(hosts))
	for i, h := range hosts {
		loads[i] = float64(h.CPUUsedMHz) / float64(max(h.CPUCapacityMHz, 1))
		s.Mean += loads[i] / float64(len(hosts))
		if loads[i] > s.Max {
			s.Max, s.MaxHost = loads[i], h.Name
		}
	}
	for _, l := range loads {
		s.StdDev += (l - s.Mean) * (l - s.Mean) / float64(len(loads))
	}
	s.StdDev = math.Sqrt(s.StdDev)
	return s
}

// taskPoll is how often waitTask reads a task's state.
const taskPoll = 250 * time.Millisecond

// waitTask reads a task's state until it ends: nil on success, a
// task.Error with the task's fault on failure, the context's error when
// the caller gives up. It polls with RetrieveProperties instead of keeping
// a WaitForUpdatesEx filter open: a caller that gives up leaves no call in
// flight behind it (vcsim tears a filter down while a wait on it still
// runs, a data race the race detector reports), and the load is one small
// read every taskPoll while a task runs.
func waitTask(ctx context.Context, vc *vim25.Client, ref types.ManagedObjectReference, prog Progress) error {
	pc := property.DefaultCollector(vc)
	for {
		var t mo.Task
		if err := pc.RetrieveOne(ctx, ref, []string{"info"}, &t); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		switch t.Info.State {
		case types.TaskInfoStateSuccess:
			if prog != nil {
				prog(100)
			}
			return nil
		case types.TaskInfoStateError:
			return task.Error{LocalizedMethodFault: t.Info.Error, Description: t.Info.Description}
		}
		if prog != nil && t.Info.Progress > 0 {
			prog(int(t.Info.Progress))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(taskPoll):
		}
	}
}
