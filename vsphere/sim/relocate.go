package sim

import (
	"fmt"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Relocations as a strict vCenter does them: refused with the proper
// faults, taking time, cancelable, recorded; and the view manager that
// serialises vcsim's inventory walks with them.

// strictVM refuses relocations that real vCenter refuses, makes them take
// time without holding the VM's lock (reads go on during a vMotion), and
// keeps the hosts' vm lists and loads right.
// lockedViewManager serialises CreateContainerView with the simulator's
// published changes. vcsim builds a container view by walking the
// inventory (host.vm lists among it) without the objects' locks, while
// publish rewrites those lists under them: a data race in vcsim that the
// race detector reports when a client lists the inventory while a
// relocation finishes. Holding pubMu while the view is built makes the
// walk see each list whole.
type lockedViewManager struct {
	*simulator.ViewManager
	sim *Sim
}

func (m *lockedViewManager) CreateContainerView(ctx *simulator.Context, req *types.CreateContainerView) soap.HasFault {
	m.sim.pubMu.Lock()
	defer m.sim.pubMu.Unlock()
	return m.ViewManager.CreateContainerView(ctx, req)
}

// relocTask is a relocation's task, cancelable as on a real vCenter: a
// CancelTask before the relocation completes stops it, and the VM stays on
// its source host (vcsim alone marks the task cancelled and moves the VM
// anyway). A CancelTask after it completed is refused, as vCenter does.
type relocTask struct {
	*simulator.Task
	cancel chan struct{}

	mu   sync.Mutex
	done bool // completed or cancelled
}

// finish marks the relocation as completing; false if it was cancelled.
func (t *relocTask) finish() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.cancel:
		return false
	default:
	}
	t.done = true
	return true
}

func (t *relocTask) CancelTask(ctx *simulator.Context, req *types.CancelTask) soap.HasFault {
	t.mu.Lock()
	if !t.done {
		select {
		case <-t.cancel:
		default:
			close(t.cancel)
		}
	}
	t.mu.Unlock()
	return t.Task.CancelTask(ctx, req)
}

type strictVM struct {
	*simulator.VirtualMachine
	sim *Sim
}

func fault(msg string, f types.BaseMethodFault) soap.HasFault {
	return &methods.RelocateVM_TaskBody{Fault_: simulator.Fault(msg, f)}
}

// RelocateVMTask overrides vcsim's handler.
func (vm *strictVM) RelocateVMTask(ctx *simulator.Context, req *types.RelocateVM_Task) soap.HasFault {
	s := vm.sim
	if req.Spec.Host == nil {
		return fault("a target host is required", &types.InvalidArgument{InvalidProperty: "spec.host"})
	}
	target := *req.Spec.Host
	s.mu.Lock()
	h := s.hosts[target.Value]
	if h == nil || target.Type != "HostSystem" {
		s.mu.Unlock()
		return fault("host "+target.Value+" does not exist", &types.ManagedObjectNotFound{Obj: target})
	}
	s.mu.Unlock()
	var hf types.BaseMethodFault
	ctx.Map.WithLock(ctx, h, func() { hf = hostFault(h) })
	if hf != nil {
		return fault("host "+h.Name+" cannot receive VMs", hf)
	}
	s.mu.Lock()
	if s.inflight[vm.Self.Value] {
		s.mu.Unlock()
		return fault("another task is in progress on "+vm.Name, &types.TaskInProgress{VimFault: types.VimFault{}})
	}
	if msg, f := s.placementFault(ctx, vm.VirtualMachine, target.Value, req.Spec.Pool); f != nil {
		s.mu.Unlock()
		return fault(msg, f)
	}
	from := s.vmHost[vm.Self.Value]
	s.inflight[vm.Self.Value] = true
	rec := Relocation{VM: vm.Name, From: s.hosts[from].Name, To: h.Name, Start: time.Now()}
	s.mu.Unlock()

	task := &relocTask{Task: simulator.CreateTask(vm.VirtualMachine, "relocateVm", nil), cancel: make(chan struct{})}
	ctx.Map.Put(task.Task) // gives the task its reference (type Task)
	ctx.Map.Put(task)      // then the wrapper answers CancelTask for it
	task.Info.Key, task.Info.Task = task.Self.Value, task.Self
	ctx.Map.AtomicUpdate(ctx, task.Task, []types.PropertyChange{
		{Name: "info.startTime", Val: time.Now()},
		{Name: "info.state", Val: types.TaskInfoStateRunning},
	})
	failWith, failName, stall := s.relocationFate()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runRelocation(task, failWith != nil, stall)
		if !task.finish() {
			// cancelled: the VM stays where it was, and vcsim's CancelTask
			// has already marked the task cancelled
			s.mu.Lock()
			delete(s.inflight, vm.Self.Value)
			rec.End, rec.Result = time.Now(), "cancelled"
			s.records = append(s.records, rec)
			s.mu.Unlock()
			return
		}
		var err types.BaseMethodFault
		if failWith != nil {
			err = s.failRelocation(vm, failName, failWith, &rec)
		} else {
			err = s.finishRelocation(vm, from, target.Value, &rec)
		}
		state, changes := types.TaskInfoStateSuccess, []types.PropertyChange{}
		if err != nil {
			state = types.TaskInfoStateError
			changes = append(changes, types.PropertyChange{Name: "info.error", Val: types.LocalizedMethodFault{Fault: err, LocalizedMessage: fmt.Sprintf("%T", err)}})
		}
		changes = append(changes, types.PropertyChange{Name: "info.completeTime", Val: time.Now()}, types.PropertyChange{Name: "info.state", Val: state})
		c := s.ctx()
		c.Map.AtomicUpdate(c, task.Task, changes)
	}()
	return &methods.RelocateVM_TaskBody{Res: &types.RelocateVM_TaskResponse{Returnval: task.Self}}
}

// stalledProgress is where a stalled relocation stops.
const stalledProgress = 37

// runRelocation waits out a relocation's time, its task's progress rising
// in quarters as vCenter reports a vMotion's; a failing one ends half way;
// a stalled one stops at stalledProgress until it is cancelled (or the
// simulator stops).
func (s *Sim) runRelocation(task *relocTask, fail, stall bool) {
	progress := func(p int32) {
		c := s.ctx()
		c.Map.AtomicUpdate(c, task.Task, []types.PropertyChange{{Name: "info.progress", Val: p}})
	}
	steps := 4
	if fail {
		steps = 2
	}
	for i := 1; i <= steps; i++ {
		select {
		case <-time.After(s.cfg.MigrateTime / 4):
		case <-s.stop:
			return
		case <-task.cancel:
			return
		}
		if stall && i == 1 {
			progress(stalledProgress)
			select {
			case <-s.stop:
			case <-task.cancel:
			}
			return
		}
		if i < 4 {
			progress(int32(25 * i))
		}
	}
}

// failRelocation ends a relocation the faults make fail: the VM stays, and
// the record and the task carry the fault.
func (s *Sim) failRelocation(vm *strictVM, name string, f types.BaseMethodFault, rec *Relocation) types.BaseMethodFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, vm.Self.Value)
	rec.End, rec.Result = time.Now(), name
	s.records = append(s.records, *rec)
	return f
}

func hostFault(h *simulator.HostSystem) types.BaseMethodFault {
	if h.Runtime.ConnectionState != types.HostSystemConnectionStateConnected {
		return &types.HostNotConnected{}
	}
	if h.Runtime.InMaintenanceMode {
		return &types.InvalidHostState{InvalidState: types.InvalidState{}, Host: &h.Self}
	}
	return nil
}

// finishRelocation moves the VM in the model, or fails the task when the
// target became unavailable meanwhile.
func (s *Sim) finishRelocation(vm *strictVM, from, to string, rec *Relocation) types.BaseMethodFault {
	target := s.hosts[to]
	var f types.BaseMethodFault
	select {
	case <-s.stop:
		f = &types.RequestCanceled{}
	default:
		ctx := s.ctx()
		ctx.Map.WithLock(ctx, target, func() { f = hostFault(target) })
	}
	if f == nil {
		ref := target.Self
		ctx := s.ctx()
		changes := []types.PropertyChange{{Name: "runtime.host", Val: ref}, {Name: "summary.runtime.host", Val: ref}}
		if pool, ok := s.clusterPool[s.hostCluster[to]]; ok && s.hostCluster[to] != s.hostCluster[from] {
			changes = append(changes, types.PropertyChange{Name: "resourcePool", Val: pool})
		}
		s.update(ctx, vm.VirtualMachine, changes)
		s.publish(func() []update {
			s.vmHost[vm.Self.Value] = to
			return []update{s.hostUpdateLocked(from), s.hostUpdateLocked(to)}
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, vm.Self.Value)
	rec.End = time.Now()
	rec.Result = "success"
	if f != nil {
		rec.Result = fmt.Sprintf("%T", f)
	} else {
		cpu, _ := s.loadLocked(to)
		rec.TargetLoad = float64(cpu) / float64(int64(target.Summary.Hardware.CpuMhz)*int64(target.Summary.Hardware.NumCpuCores))
	}
	s.records = append(s.records, *rec)
	return f
}
