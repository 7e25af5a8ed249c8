package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// strictChecker answers CheckRelocate_Task from the rules the relocation
// itself applies (vcsim's always says yes): the target host's state, its
// cluster and the pool, the VM's datastores, and mandatory VM-host rules.
type strictChecker struct {
	*simulator.VmProvisioningChecker
	sim *Sim
}

func (c *strictChecker) CheckRelocateTask(ctx *simulator.Context, r *types.CheckRelocate_Task) soap.HasFault {
	s := c.sim
	task := simulator.CreateTask(c.VmProvisioningChecker, "checkRelocate", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		res := types.CheckResult{Vm: &r.Vm}
		add := func(msg string, f types.BaseMethodFault) {
			res.Error = append(res.Error, types.LocalizedMethodFault{Fault: f, LocalizedMessage: msg})
		}
		s.mu.Lock()
		vm, h := s.vms[r.Vm.Value], (*simulator.HostSystem)(nil)
		if r.Spec.Host != nil {
			h = s.hosts[r.Spec.Host.Value]
		}
		s.mu.Unlock()
		switch {
		case vm == nil:
			add("no such VM", &types.ManagedObjectNotFound{Obj: r.Vm})
		case h == nil:
			add("a target host is required", &types.InvalidArgument{InvalidProperty: "spec.host"})
		default:
			var hf types.BaseMethodFault
			ctx.Map.WithLock(ctx, h, func() { hf = hostFault(h) })
			if hf != nil {
				add("host "+h.Name+" cannot receive VMs", hf)
			}
			s.mu.Lock()
			msg, f := s.placementFault(ctx, vm, h.Self.Value, r.Spec.Pool)
			s.mu.Unlock()
			if f != nil {
				add(msg, f)
			}
		}
		return types.ArrayOfCheckResult{CheckResult: []types.CheckResult{res}}, nil
	})
	return &methods.CheckRelocate_TaskBody{Res: &types.CheckRelocate_TaskResponse{Returnval: task.Run(ctx)}}
}

// wrapChecker puts the strict checker in place of vcsim's.
func (s *Sim) wrapChecker() {
	reg := s.model.Map()
	si, ok := reg.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	if !ok || si.Content.VmProvisioningChecker == nil {
		return
	}
	if c, ok := reg.Get(*si.Content.VmProvisioningChecker).(*simulator.VmProvisioningChecker); ok {
		reg.Put(&strictChecker{VmProvisioningChecker: c, sim: s})
	}
}
