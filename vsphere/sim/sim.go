package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Config sets up a simulated datacentre.
type Config struct {
	Hosts       int
	VMs         int
	Seed        int64
	Skew        float64       // share of VMs on the first quarter of hosts; default 0.5
	Utilisation float64       // total CPU demand / capacity; default 0.45
	MigrateTime time.Duration // how long a relocation takes; default 2s
	Drift       bool          // let VM demand wander
	DriftEvery  time.Duration // default 2s
	PerfEvery   time.Duration // how often statistics are sampled (perf.go); default 20s, vCenter's realtime interval
	Listen      string        // host:port for the SDK; default 127.0.0.1:0
	CertHosts   []string      // names and addresses the certificate is valid for, besides loopback and Listen's host
	Clusters    int           // compute clusters the hosts are spread over (a divisor of Hosts); default 1
	DRS         string        // fullyAutomated, partiallyAutomated, manual (the default) or off
	// ZonedStorage mounts a second datastore on half of each cluster's
	// hosts only, with some VMs' disks on it (storage.go).
	ZonedStorage bool
	// StateDir, when set, keeps the simulator's state there (state.go): a
	// simulator started again on it is the same vCenter.
	StateDir string
}

// Relocation is one record of a RelocateVM_Task.
type Relocation struct {
	VM     string    `json:"vm"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Result string    `json:"result"` // success, or the fault
	// TargetLoad is the target's CPU use / capacity right after the move.
	TargetLoad float64 `json:"target_load"`
}

// Sim is a running simulated vCenter.
type Sim struct {
	cfg    Config
	Layout Layout
	model  *simulator.Model
	stats  apiStats                // SDK calls and objects served (apistats.go)
	perf   map[string][]perfSample // host id -> statistics samples, oldest first (perf.go); under mu
	server *simulator.Server
	svc    *simulator.Context

	// Lock order: pubMu, then mu, released before any simulator object
	// lock is taken. A SOAP handler holds its VM's lock and then takes mu
	// briefly, so mu is never held while waiting for an object lock.
	pubMu    sync.Mutex
	updMu    sync.Mutex // update.go: watchers told in the order changes were made
	mu       sync.Mutex
	hosts    map[string]*simulator.HostSystem // by moref value
	vms      map[string]*simulator.VirtualMachine
	byName   map[string]string // name -> moref value, hosts and VMs
	vmHost   map[string]string // vm -> host (moref values): the load model's truth
	cpu, mem map[string]int64  // vm demand
	inflight map[string]bool
	records  []Relocation
	rng      *rand.Rand

	cert tls.Certificate // served on every endpoint (tls.go)

	faults   faultState      // what the simulator does wrong now (faults.go)
	sessions map[string]bool // session cookies clients sent, for expire_sessions; under faults.mu
	// clusters (cluster.go)
	hostCluster map[string]string                       // host id -> cluster id
	clusterPool map[string]types.ManagedObjectReference // cluster id -> its resource pool
	stop        chan struct{}
	wg          sync.WaitGroup
	// BuildTime is how long building the inventory took.
	BuildTime time.Duration
	// Resumed says the simulator started from a saved state (StateDir).
	Resumed bool
}

// New builds the inventory and starts the SDK server.
func New(cfg Config) (*Sim, error) {
	var saved *savedState
	if cfg.StateDir != "" {
		var err error
		if saved, err = loadState(cfg.StateDir); err != nil {
			return nil, err
		}
		if saved != nil { // the inventory is the saved one, whatever else cfg says
			c := saved.Config
			cfg.Hosts, cfg.VMs, cfg.Seed, cfg.Clusters, cfg.DRS, cfg.ZonedStorage = c.Hosts, c.VMs, c.Seed, c.Clusters, c.DRS, c.ZonedStorage
		}
	}
	if cfg.Hosts < 1 || cfg.VMs < 0 {
		return nil, fmt.Errorf("sim: need at least one host and no negative VM count (got %d hosts, %d VMs)", cfg.Hosts, cfg.VMs)
	}
	if cfg.Skew <= 0 {
		cfg.Skew = 0.5
	}
	if cfg.Utilisation <= 0 {
		cfg.Utilisation = 0.45
	}
	if cfg.MigrateTime <= 0 {
		cfg.MigrateTime = 2 * time.Second
	}
	if cfg.Clusters <= 0 {
		cfg.Clusters = 1
	}
	if cfg.Hosts%cfg.Clusters != 0 {
		return nil, fmt.Errorf("sim: %d hosts do not spread evenly over %d clusters", cfg.Hosts, cfg.Clusters)
	}
	if cfg.DRS != "" && !drsModes[cfg.DRS] {
		return nil, fmt.Errorf("sim: DRS setting %q is not fullyAutomated, partiallyAutomated, manual or off", cfg.DRS)
	}
	if cfg.PerfEvery <= 0 {
		cfg.PerfEvery = 20 * time.Second
	}
	if cfg.DriftEvery <= 0 {
		cfg.DriftEvery = 2 * time.Second
	}
	start := time.Now()
	s := &Sim{cfg: cfg, Layout: Generate(cfg.Hosts, cfg.VMs, cfg.Seed, cfg.Skew, cfg.Utilisation),
		hosts: map[string]*simulator.HostSystem{}, vms: map[string]*simulator.VirtualMachine{}, byName: map[string]string{},
		vmHost: map[string]string{}, cpu: map[string]int64{}, mem: map[string]int64{}, inflight: map[string]bool{},
		rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 7)), stop: make(chan struct{})}
	if saved != nil {
		s.Layout, s.Resumed = saved.Layout, true
	}
	m := simulator.VPX()
	if cfg.Clusters > 1 {
		for i := range s.Layout.Hosts {
			s.Layout.Hosts[i].Name = clusterHostName(i, cfg.Hosts, cfg.Clusters)
		}
	}
	m.Datacenter, m.Cluster, m.ClusterHost, m.Host, m.Machine, m.Pool = 1, cfg.Clusters, cfg.Hosts/cfg.Clusters, 0, 0, 0
	m.Autostart = false
	if cfg.ZonedStorage {
		m.Datastore = 2
	}
	if err := m.Create(); err != nil {
		return nil, fmt.Errorf("sim: build inventory: %w", err)
	}
	create := func() error { return createVMs(m, cfg.VMs) }
	if saved != nil {
		create = func() error { return createNamedVMs(m, saved.vmOrder(), 1) } // one at a time: the ids they had
	}
	if err := create(); err != nil {
		m.Remove()
		return nil, fmt.Errorf("sim: create VMs: %w", err)
	}
	s.model, s.svc = m, m.Service.Context
	if err := s.configureClusters(); err != nil {
		m.Remove()
		return nil, err
	}
	if err := s.apply(); err != nil {
		m.Remove()
		return nil, err
	}
	if cfg.ZonedStorage {
		if err := s.zoneStorage(); err != nil {
			m.Remove()
			return nil, err
		}
	}
	s.wrapChecker()
	s.wrapPerf()
	listenHost := ""
	if cfg.Listen != "" {
		u, err := url.Parse("http://" + cfg.Listen)
		if err != nil {
			m.Remove()
			return nil, fmt.Errorf("sim: listen address %q: %w", cfg.Listen, err)
		}
		m.Service.Listen, listenHost = u, u.Hostname()
	}
	var err error
	if saved != nil {
		if err := s.checkIDs(saved); err != nil {
			m.Remove()
			return nil, err
		}
		s.records = saved.Records
		if err := s.restoreClusters(saved); err != nil {
			m.Remove()
			return nil, err
		}
		for h, on := range saved.Maint {
			s.SetMaintenance(h, on)
		}
		s.cert, err = saved.restoreCert()
	} else {
		s.cert, err = newCertificate(append([]string{listenHost}, cfg.CertHosts...)...)
	}
	if err != nil {
		m.Remove()
		return nil, fmt.Errorf("sim: certificate: %w", err)
	}
	m.Service.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{s.cert}}
	s.countSDK(m.Service)
	s.server = m.Service.NewServer()
	s.BuildTime = time.Since(start)
	if cfg.Drift {
		s.wg.Add(1)
		go s.drift()
	}
	seen := map[string]string{}
	s.changes(s.ctx(), seen) // how things are before any client can change them
	s.wg.Add(1)
	go s.notify(seen)
	if cfg.StateDir != "" {
		if err := s.saveState(); err != nil {
			s.Close()
			return nil, fmt.Errorf("sim: state: %w", err)
		}
		s.wg.Add(1)
		go s.keepSaving()
	}
	return s, nil
}

// apply puts the generated layout into the model: host sizes, VM demand
// and placement, and the strict relocation handler on every VM.
func (s *Sim) apply() error {
	reg := s.model.Map()
	hostsByName := map[string]*simulator.HostSystem{}
	for _, o := range reg.All("HostSystem") {
		h := o.(*simulator.HostSystem)
		hostsByName[h.Name] = h
	}
	hostRefs := make([]*simulator.HostSystem, len(s.Layout.Hosts))
	for i, spec := range s.Layout.Hosts {
		h := hostsByName[spec.Name]
		if h == nil {
			return fmt.Errorf("sim: vcsim made no host %s", spec.Name)
		}
		h.Summary.Hardware.CpuMhz = int32(spec.MHz)
		h.Summary.Hardware.NumCpuCores = int16(spec.Cores)
		h.Summary.Hardware.MemorySize = spec.MemMB << 20
		h.Vm = nil
		hostRefs[i] = h
		s.hosts[h.Self.Value] = h
		s.byName[h.Name] = h.Self.Value
	}
	vmsByName := map[string]*simulator.VirtualMachine{}
	for _, o := range reg.All("VirtualMachine") {
		vm := o.(*simulator.VirtualMachine)
		vmsByName[vm.Name] = vm
	}
	for _, spec := range s.Layout.VMs {
		vm := vmsByName[spec.Name]
		if vm == nil {
			return fmt.Errorf("sim: vcsim made no VM %s", spec.Name)
		}
		h := hostRefs[spec.Host]
		ref := h.Self
		vm.Runtime.Host = &ref
		vm.Summary.Runtime.Host = &ref
		vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOn
		vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOn
		vm.Summary.QuickStats.OverallCpuUsage = int32(spec.CPUMHz)
		vm.Summary.QuickStats.GuestMemoryUsage = int32(spec.MemMB)
		if vm.Summary.Config.MemorySizeMB == 0 {
			vm.Summary.Config.MemorySizeMB = int32(spec.MemMB)
		}
		h.Vm = append(h.Vm, vm.Self)
		s.placeInPool(vm, h.Self.Value)
		s.vms[vm.Self.Value] = vm
		s.byName[vm.Name] = vm.Self.Value
		s.vmHost[vm.Self.Value] = h.Self.Value
		s.cpu[vm.Self.Value], s.mem[vm.Self.Value] = spec.CPUMHz, spec.MemMB
		reg.Put(&strictVM{VirtualMachine: vm, sim: s})
	}
	si, ok := reg.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	if !ok || si.Content.ViewManager == nil {
		return errors.New("sim: vcsim has no view manager")
	}
	vm, ok := reg.Get(*si.Content.ViewManager).(*simulator.ViewManager)
	if !ok {
		return errors.New("sim: vcsim's view manager is not the one parley wraps")
	}
	reg.Put(&lockedViewManager{ViewManager: vm, sim: s})
	for id, h := range s.hosts {
		cpu, mem := s.loadLocked(id)
		h.Summary.QuickStats.OverallCpuUsage = int32(cpu)
		h.Summary.QuickStats.OverallMemoryUsage = int32(mem)
	}
	return nil
}

// URL is the SDK URL with credentials (vcsim accepts any).
func (s *Sim) URL() *url.URL {
	u := *s.server.URL
	u.User = url.UserPassword("parley", "sim-password")
	return &u
}

// Close stops the server and removes the model's files.
func (s *Sim) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.wg.Wait()
	if err := s.saveState(); err != nil {
		fmt.Fprintln(os.Stderr, "sim: save state:", err)
	}
	s.server.Close()
	s.model.Remove()
}

// loadLocked sums the demand of the VMs on a host.
func (s *Sim) loadLocked(hostID string) (cpu, mem int64) {
	for vm, h := range s.vmHost {
		if h == hostID {
			cpu += s.cpu[vm]
			mem += s.mem[vm]
		}
	}
	return
}

// ctx returns a fresh simulator context for changes made outside a SOAP call.
func (s *Sim) ctx() *simulator.Context {
	c := *s.svc
	c.Context = context.Background()
	return &c
}

// update is one property change to publish.
type update struct {
	obj     any
	changes []types.PropertyChange
}

// publish computes updates under mu (serialised by pubMu so that a later
// value is never overwritten by an earlier one), then writes them with
// property updates so that watchers see them.
func (s *Sim) publish(compute func() []update) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	ups := compute()
	s.mu.Unlock()
	ctx := s.ctx()
	for _, u := range ups {
		switch o := u.obj.(type) {
		case *simulator.HostSystem:
			s.update(ctx, o, u.changes)
		case *simulator.VirtualMachine:
			s.update(ctx, o, u.changes)
		}
	}
}

// hostUpdateLocked is a host's load and VM list, from the load model.
func (s *Sim) hostUpdateLocked(hostID string) update {
	cpu, mem := s.loadLocked(hostID)
	var vms []types.ManagedObjectReference
	for vm, h := range s.vmHost {
		if h == hostID {
			vms = append(vms, s.vms[vm].Self)
		}
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Value < vms[j].Value })
	return update{s.hosts[hostID], []types.PropertyChange{
		{Name: "summary.quickStats.overallCpuUsage", Val: int32(cpu)},
		{Name: "summary.quickStats.overallMemoryUsage", Val: int32(mem)},
		{Name: "vm", Val: vms},
	}}
}

func (s *Sim) demandUpdateLocked(id string) update {
	return update{s.vms[id], []types.PropertyChange{
		{Name: "summary.quickStats.overallCpuUsage", Val: int32(s.cpu[id])},
		{Name: "summary.quickStats.guestMemoryUsage", Val: int32(s.mem[id])},
	}}
}

// ID returns a host's or VM's managed object id by name.
func (s *Sim) ID(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byName[name]
	return id, ok
}

// SetDemand changes a VM's CPU and memory demand.
func (s *Sim) SetDemand(vmName string, cpuMHz, memMB int64) error {
	if cpuMHz < 0 || memMB < 0 || cpuMHz > 1<<30 || memMB > 1<<30 {
		return fmt.Errorf("sim: demand out of range")
	}
	var err error
	s.publish(func() []update {
		id, ok := s.byName[vmName]
		if !ok || s.vms[id] == nil {
			err = fmt.Errorf("%w: no VM %q", ErrNotFound, vmName)
			return nil
		}
		s.cpu[id], s.mem[id] = cpuMHz, memMB
		return []update{s.demandUpdateLocked(id), s.hostUpdateLocked(s.vmHost[id])}
	})
	return err
}

// SetMaintenance puts a host into maintenance mode or takes it out, as an
// operator would in vCenter.
func (s *Sim) SetMaintenance(hostName string, on bool) error {
	return s.setHost(hostName, "runtime.inMaintenanceMode", on)
}

// SetConnected connects or disconnects a host.
func (s *Sim) SetConnected(hostName string, connected bool) error {
	state := types.HostSystemConnectionStateConnected
	if !connected {
		state = types.HostSystemConnectionStateDisconnected
	}
	return s.setHost(hostName, "runtime.connectionState", state)
}

func (s *Sim) setHost(hostName, prop string, val any) error {
	s.mu.Lock()
	id, ok := s.byName[hostName]
	h := s.hosts[id]
	s.mu.Unlock()
	if !ok || h == nil {
		return fmt.Errorf("%w: no host %q", ErrNotFound, hostName)
	}
	ctx := s.ctx()
	s.update(ctx, h, []types.PropertyChange{{Name: prop, Val: val}, {Name: "summary." + prop, Val: val}})
	return nil
}

// Relocations returns the record of every relocation so far.
func (s *Sim) Relocations() []Relocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Relocation(nil), s.records...)
}

// Placement returns each VM's host (by name), from the load model.
func (s *Sim) Placement() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for vm, h := range s.vmHost {
		out[s.vms[vm].Name] = s.hosts[h].Name
	}
	return out
}

// HostLoads returns each host's CPU use as a share of its capacity.
func (s *Sim) HostLoads() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	for id, h := range s.hosts {
		cpu, _ := s.loadLocked(id)
		out[h.Name] = float64(cpu) / float64(int64(h.Summary.Hardware.CpuMhz)*int64(h.Summary.Hardware.NumCpuCores))
	}
	return out
}

// drift moves VM demand: each tick a tenth of the VMs take a random step
// that leans back towards their generated demand, and every tenth tick a
// hot spot lands on another host, whose VMs burst to 1.6 times their
// generated demand (and then lean back), so that the balancer always has
// work to do.
func (s *Sim) drift() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.DriftEvery)
	defer t.Stop()
	base := map[string]int64{}
	s.mu.Lock()
	for id, c := range s.cpu {
		base[id] = c
	}
	s.mu.Unlock()
	tick := 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		tick++
		s.publish(func() []update {
			ids := make([]string, 0, len(s.vms))
			for id := range s.vms {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			hot := ""
			if tick%10 == 1 {
				hosts := make([]string, 0, len(s.hosts))
				for id := range s.hosts {
					hosts = append(hosts, id)
				}
				sort.Strings(hosts)
				hot = hosts[s.rng.IntN(len(hosts))]
			}
			var ups []update
			touched := map[string]bool{}
			for _, id := range ids {
				next := s.cpu[id]
				switch {
				case hot != "" && s.vmHost[id] == hot:
					next = base[id] * 16 / 10
				case s.rng.IntN(10) == 0:
					walked := float64(next) * (0.9 + s.rng.Float64()*0.2)
					next = int64(0.8*walked + 0.2*float64(base[id]))
				default:
					continue
				}
				s.cpu[id] = min(max(next, 100), 64000)
				ups = append(ups, s.demandUpdateLocked(id))
				touched[s.vmHost[id]] = true
			}
			for h := range touched {
				ups = append(ups, s.hostUpdateLocked(h))
			}
			return ups
		})
	}
}

// ErrNotFound is returned by the control API for an unknown name.
var ErrNotFound = errors.New("sim: not found")
