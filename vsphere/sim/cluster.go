package sim

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Clusters as a real vCenter keeps them: each with its own resource pool,
// a VM's pool in its host's cluster, DRS set as the operator asked, and
// relocations refused across clusters without a pool of the target's
// cluster, or against a mandatory VM-host rule.

// DRS settings parley sim accepts.
var drsModes = map[string]bool{"fullyAutomated": true, "partiallyAutomated": true, "manual": true, "off": true}

// clusterHostName is host i's name when the hosts are spread over n
// clusters, as vcsim names them.
func clusterHostName(i, hosts, n int) string {
	per := hosts / n
	return fmt.Sprintf("DC0_C%d_H%d", i/per, i%per)
}

// configureClusters records each host's cluster and each cluster's pool,
// and sets DRS: manual unless the configuration says otherwise, so that
// parley balances a simulated datacentre by default.
func (s *Sim) configureClusters() error {
	reg := s.model.Map()
	s.hostCluster, s.clusterPool = map[string]string{}, map[string]types.ManagedObjectReference{}
	for _, o := range reg.All("ClusterComputeResource") {
		c := o.(*simulator.ClusterComputeResource)
		if c.ResourcePool == nil {
			return fmt.Errorf("sim: cluster %s has no resource pool", c.Name)
		}
		s.clusterPool[c.Self.Value] = *c.ResourcePool
		cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return fmt.Errorf("sim: cluster %s has no configurationEx", c.Name)
		}
		mode := s.cfg.DRS
		if mode == "" {
			mode = "manual"
		}
		cfg.DrsConfig.Enabled = types.NewBool(mode != "off")
		if mode != "off" {
			cfg.DrsConfig.DefaultVmBehavior = types.DrsBehavior(mode)
		}
		for _, h := range c.Host {
			s.hostCluster[h.Value] = c.Self.Value
		}
	}
	return nil
}

// placeInPool puts a VM in the resource pool of its host's cluster.
func (s *Sim) placeInPool(vm *simulator.VirtualMachine, hostID string) {
	want, ok := s.clusterPool[s.hostCluster[hostID]]
	if !ok || (vm.ResourcePool != nil && *vm.ResourcePool == want) {
		return
	}
	reg := s.model.Map()
	if vm.ResourcePool != nil {
		if old, ok := reg.Get(*vm.ResourcePool).(*simulator.ResourcePool); ok {
			old.Vm = removeRef(old.Vm, vm.Self)
		}
	}
	if p, ok := reg.Get(want).(*simulator.ResourcePool); ok {
		p.Vm = append(p.Vm, vm.Self)
	}
	vm.ResourcePool = &want
}

func removeRef(refs []types.ManagedObjectReference, r types.ManagedObjectReference) []types.ManagedObjectReference {
	out := refs[:0]
	for _, x := range refs {
		if x != r {
			out = append(out, x)
		}
	}
	return out
}

// placementFault is what vCenter answers a relocation of vm from its host
// to target with pool: a target in another cluster needs a pool of that
// cluster (InvalidArgument), a pool must be the target's cluster's, and a
// mandatory VM-host rule of the target's cluster must allow the target
// (VmHostAffinityRuleViolation). Called with s.mu held.
func (s *Sim) placementFault(ctx *simulator.Context, vm *simulator.VirtualMachine, target string, pool *types.ManagedObjectReference) (string, types.BaseMethodFault) {
	src, dst := s.hostCluster[s.vmHost[vm.Self.Value]], s.hostCluster[target]
	if pool == nil && src != dst {
		return fmt.Sprintf("host %s is in another cluster than %s's resource pool: give a resource pool of the target's cluster", s.hosts[target].Name, vm.Name),
			&types.InvalidArgument{InvalidProperty: "spec.pool"}
	}
	if pool != nil && *pool != s.clusterPool[dst] {
		return fmt.Sprintf("resource pool %s is not in host %s's cluster", pool.Value, s.hosts[target].Name), &types.InvalidArgument{InvalidProperty: "spec.pool"}
	}
	if msg, f := s.storageFault(vm, target); f != nil {
		return msg, f
	}
	c, ok := ctx.Map.Get(types.ManagedObjectReference{Type: "ClusterComputeResource", Value: dst}).(*simulator.ClusterComputeResource)
	if !ok {
		return "", nil
	}
	var msg string
	var f types.BaseMethodFault
	ctx.Map.WithLock(ctx, c, func() {
		cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		if rule := violatedVMHostRule(cfg, vm.Self, types.ManagedObjectReference{Type: "HostSystem", Value: target}); rule != "" {
			msg = fmt.Sprintf("moving %s to %s breaks the mandatory rule %s", vm.Name, s.hosts[target].Name, rule)
			f = &types.VmHostAffinityRuleViolation{VmName: vm.Name, HostName: s.hosts[target].Name}
		}
	})
	return msg, f
}

// violatedVMHostRule names the mandatory, enabled VM-host rule that
// placing vm on host breaks, or "".
func violatedVMHostRule(cfg *types.ClusterConfigInfoEx, vm, host types.ManagedObjectReference) string {
	vmGroups, hostGroups := map[string][]types.ManagedObjectReference{}, map[string][]types.ManagedObjectReference{}
	for _, g := range cfg.Group {
		switch x := g.(type) {
		case *types.ClusterVmGroup:
			vmGroups[x.Name] = x.Vm
		case *types.ClusterHostGroup:
			hostGroups[x.Name] = x.Host
		}
	}
	has := func(rs []types.ManagedObjectReference, r types.ManagedObjectReference) bool {
		for _, x := range rs {
			if x == r {
				return true
			}
		}
		return false
	}
	for _, r := range cfg.Rule {
		x, ok := r.(*types.ClusterVmHostRuleInfo)
		if !ok || x.Mandatory == nil || !*x.Mandatory || (x.Enabled != nil && !*x.Enabled) || !has(vmGroups[x.VmGroupName], vm) {
			continue
		}
		if x.AffineHostGroupName != "" && !has(hostGroups[x.AffineHostGroupName], host) {
			return x.Name
		}
		if x.AntiAffineHostGroupName != "" && has(hostGroups[x.AntiAffineHostGroupName], host) {
			return x.Name
		}
	}
	return ""
}
