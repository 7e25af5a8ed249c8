package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// update changes properties of a host, a VM or a cluster and tells the
// watchers, without the deadlock vcsim's AtomicUpdate can reach (govmomi
// v0.56.0): AtomicUpdate tells the watchers with the object's lock held,
// and a property filter rooted at that object with a traversal (a
// worker's WatchHost starts at its host and follows its vm property) then
// takes the filter's lock; WaitForUpdatesEx holds that filter's lock while
// it collects again, taking the object's. Here the change is made under
// the object's lock, and the watchers are told after it is released, from
// a shadow object with the same reference (a modification's watchers use
// only the reference and the changes). Anything else goes through
// AtomicUpdate. updMu keeps the order in which watchers are told the order
// in which the changes were made.
func (s *Sim) update(ctx *simulator.Context, obj mo.Reference, changes []types.PropertyChange) {
	var real, shadow mo.Reference
	switch o := obj.(type) {
	case *simulator.HostSystem:
		sh := &mo.HostSystem{}
		sh.Self = o.Self
		real, shadow = &o.HostSystem, sh
	case *simulator.VirtualMachine:
		sh := &mo.VirtualMachine{}
		sh.Self = o.Self
		real, shadow = &o.VirtualMachine, sh
	case *simulator.ClusterComputeResource:
		sh := &mo.ClusterComputeResource{}
		sh.Self = o.Self
		real, shadow = &o.ClusterComputeResource, sh
	default:
		ctx.Map.AtomicUpdate(ctx, obj, changes)
		return
	}
	s.updMu.Lock()
	defer s.updMu.Unlock()
	applied := make([]types.PropertyChange, len(changes))
	copy(applied, changes) // Update rewrites its changes' values in place
	for i := range applied {
		if applied[i].Op == "" {
			applied[i].Op = types.PropertyChangeOpAssign
		}
	}
	ctx.Map.WithLock(ctx, obj, func() { mo.ApplyPropertyChange(real, applied) })
	ctx.Map.Update(ctx, shadow, changes)
}
