package vsphere

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// What vCenter says about where a VM may go and who balances it: a host's
// cluster, the cluster's DRS settings and rules, and what makes a VM
// unmovable. Read in the same round trip as hosts and VMs.

// Cluster is a compute cluster with its DRS configuration and rules.
type Cluster struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	DRSEnabled  bool              `json:"drs_enabled"`
	DRSBehavior string            `json:"drs_behavior"` // fullyAutomated, partiallyAutomated or manual; vCenter's default when empty
	VMOverrides map[string]string `json:"vm_overrides,omitempty"`
	Rules       []Rule            `json:"rules,omitempty"`
}

// Rule kinds, from the cluster's configurationEx.
const (
	RuleAffinity     = "affinity"      // the VMs run on one host
	RuleAntiAffinity = "anti-affinity" // the VMs run on different hosts
	RuleVMHost       = "vm-host"       // the VMs run on the hosts of the group
	RuleVMNotHost    = "vm-not-host"   // the VMs do not run on the hosts of the group
)

// Rule is one of vCenter's placement rules, with VM and host ids.
type Rule struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Mandatory bool     `json:"mandatory"` // never broken by a move; otherwise a preference
	VMs       []string `json:"vms"`
	Hosts     []string `json:"hosts,omitempty"`
}

// BalancedByDRS reports whether DRS balances the cluster itself: enabled
// and fully automated (vCenter's default, which an empty behaviour means).
func (c Cluster) BalancedByDRS() bool {
	return c.DRSEnabled && (c.DRSBehavior == "" || c.DRSBehavior == string(types.DrsBehaviorFullyAutomated))
}

// VMExcluded reports whether a per-VM DRS override keeps the VM where it
// is: DRS disabled for it, or set to manual.
func (c Cluster) VMExcluded(vmID string) bool {
	b, ok := c.VMOverrides[vmID]
	return ok && (b == "disabled" || b == string(types.DrsBehaviorManual))
}

// Movable says whether parley may move a VM at all, and why not.
func (v VM) Movable() (bool, string) {
	switch {
	case v.Template:
		return false, "a template"
	case !v.PoweredOn():
		return false, "not powered on"
	case v.ConnectionState != "" && v.ConnectionState != Connected:
		return false, "its connection state is " + v.ConnectionState
	case v.FaultTolerant:
		return false, "fault tolerant"
	case v.ManagedBy != "":
		return false, "managed by " + v.ManagedBy
	case v.RelocateDisabled:
		return false, "relocation is disabled on it"
	}
	return true, ""
}

// setVMExtra reads the properties that say whether a VM may move.
func setVMExtra(v *VM, p types.DynamicProperty) {
	switch p.Name {
	case "config.template":
		v.Template, _ = p.Val.(bool)
	case "runtime.connectionState":
		if cs, ok := p.Val.(types.VirtualMachineConnectionState); ok {
			v.ConnectionState = string(cs)
		}
	case "runtime.faultToleranceState":
		if fs, ok := p.Val.(types.VirtualMachineFaultToleranceState); ok {
			v.FaultTolerant = fs != "" && fs != types.VirtualMachineFaultToleranceStateNotConfigured
		}
	case "config.managedBy":
		if mb, ok := p.Val.(types.ManagedByInfo); ok {
			v.ManagedBy = mb.ExtensionKey
		}
	case "datastore":
		v.Datastores = refList(p)
	case "network":
		v.Networks = refList(p)
	case "disabledMethod":
		v.RelocateDisabled = false
		if ms, ok := p.Val.(types.ArrayOfString); ok {
			for _, m := range ms.String {
				if m == "RelocateVM_Task" || m == "MigrateVM_Task" {
					v.RelocateDisabled = true
				}
			}
		}
	}
}

// setCluster reads a cluster's name and configurationEx.
func setCluster(c *Cluster, p types.DynamicProperty) {
	switch p.Name {
	case "name":
		c.Name, _ = p.Val.(string)
	case "configurationEx":
		cfg, ok := p.Val.(types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		c.DRSEnabled = cfg.DrsConfig.Enabled != nil && *cfg.DrsConfig.Enabled
		c.DRSBehavior = string(cfg.DrsConfig.DefaultVmBehavior)
		c.VMOverrides = map[string]string{}
		for _, o := range cfg.DrsVmConfig {
			b := string(o.Behavior)
			if o.Enabled != nil && !*o.Enabled {
				b = "disabled"
			}
			c.VMOverrides[o.Key.Value] = b
		}
		c.Rules = readRules(cfg)
	}
}

func readRules(cfg types.ClusterConfigInfoEx) []Rule {
	vmGroups, hostGroups := map[string][]string{}, map[string][]string{}
	for _, g := range cfg.Group {
		switch x := g.(type) {
		case *types.ClusterVmGroup:
			vmGroups[x.Name] = refIDs(x.Vm)
		case *types.ClusterHostGroup:
			hostGroups[x.Name] = refIDs(x.Host)
		}
	}
	var out []Rule
	for _, r := range cfg.Rule {
		info := r.GetClusterRuleInfo()
		if info.Enabled != nil && !*info.Enabled {
			continue
		}
		rule := Rule{Name: info.Name, Mandatory: info.Mandatory != nil && *info.Mandatory}
		switch x := r.(type) {
		case *types.ClusterAffinityRuleSpec:
			rule.Kind, rule.VMs = RuleAffinity, refIDs(x.Vm)
			rule.Mandatory = true // VM-VM rules are always enforced by DRS
		case *types.ClusterAntiAffinityRuleSpec:
			rule.Kind, rule.VMs = RuleAntiAffinity, refIDs(x.Vm)
			rule.Mandatory = true
		case *types.ClusterVmHostRuleInfo:
			rule.VMs = vmGroups[x.VmGroupName]
			if x.AffineHostGroupName != "" {
				rule.Kind, rule.Hosts = RuleVMHost, hostGroups[x.AffineHostGroupName]
			} else {
				rule.Kind, rule.Hosts = RuleVMNotHost, hostGroups[x.AntiAffineHostGroupName]
			}
		default:
			continue
		}
		out = append(out, rule)
	}
	return out
}

func refIDs(refs []types.ManagedObjectReference) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Value
	}
	return out
}

// Cluster returns the cluster with id, or false.
func (inv *Inventory) Cluster(id string) (Cluster, bool) {
	for _, c := range inv.Clusters {
		if c.ID == id {
			return c, true
		}
	}
	return Cluster{}, false
}

// RuleProblem says which mandatory rule of vCenter's a move of VM vmID to
// host hostID would break, or "" when none would.
func (inv *Inventory) RuleProblem(vmID, hostID string) string {
	h, ok := inv.Host(hostID)
	if !ok {
		return ""
	}
	c, _ := inv.Cluster(h.Cluster)
	for _, r := range c.Rules {
		if !r.Mandatory || !contains(r.VMs, vmID) {
			continue
		}
		if p := inv.breaks(r, vmID, hostID); p != "" {
			return "vCenter rule " + r.Name + ": " + p
		}
	}
	return ""
}

// PreferenceBroken reports whether a move would break a preferred (not
// mandatory) rule: a bid is worth less then.
func (inv *Inventory) PreferenceBroken(vmID, hostID string) bool {
	h, ok := inv.Host(hostID)
	if !ok {
		return false
	}
	c, _ := inv.Cluster(h.Cluster)
	for _, r := range c.Rules {
		if !r.Mandatory && contains(r.VMs, vmID) && inv.breaks(r, vmID, hostID) != "" {
			return true
		}
	}
	return false
}

func (inv *Inventory) breaks(r Rule, vmID, hostID string) string {
	switch r.Kind {
	case RuleVMHost:
		if !contains(r.Hosts, hostID) {
			return "the VM must run on the rule's hosts"
		}
	case RuleVMNotHost:
		if contains(r.Hosts, hostID) {
			return "the VM must not run on the rule's hosts"
		}
	case RuleAntiAffinity:
		for _, other := range inv.VMsOn(hostID) {
			if other.ID != vmID && contains(r.VMs, other.ID) && other.PoweredOn() {
				return "it keeps the VM apart from " + other.Name
			}
		}
	case RuleAffinity:
		for _, id := range r.VMs {
			if o, ok := inv.VM(id); ok && id != vmID && o.PoweredOn() && o.Host != hostID {
				return "it keeps the VM with " + o.Name
			}
		}
	}
	return ""
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// clusterOf is the cluster id of a host's parent, "" for a standalone
// host's compute resource.
func clusterOf(p types.DynamicProperty) string {
	if r, ok := p.Val.(types.ManagedObjectReference); ok && strings.HasSuffix(r.Type, "ClusterComputeResource") {
		return r.Value
	}
	return ""
}

// Scope is the part of the inventory in one cluster: its hosts, the VMs
// on them, and the cluster itself. A worker sees only its own cluster,
// since vMotion and DRS both stay within one. The result is shared (the
// inventory itself when all of it is in that cluster, and the same scope
// for every caller asking again): treat it as read-only, as the inventory.
func (inv *Inventory) Scope(clusterID string) *Inventory {
	inv.scopeMu.Lock()
	defer inv.scopeMu.Unlock()
	if sc, ok := inv.scoped[clusterID]; ok {
		return sc
	}
	out := inv
	if !inv.within(clusterID) {
		out = &Inventory{ReadAt: inv.ReadAt}
		in := map[string]bool{}
		for _, h := range inv.Hosts {
			if h.Cluster == clusterID {
				out.Hosts = append(out.Hosts, h)
				in[h.ID] = true
			}
		}
		for _, v := range inv.VMs {
			if in[v.Host] {
				out.VMs = append(out.VMs, v)
			}
		}
		for _, c := range inv.Clusters {
			if c.ID == clusterID {
				out.Clusters = append(out.Clusters, c)
			}
		}
	}
	if inv.scoped == nil {
		inv.scoped = map[string]*Inventory{}
	}
	inv.scoped[clusterID] = out
	return out
}

// within says whether every host and cluster of the inventory is
// clusterID's: its scope is then the inventory itself.
func (inv *Inventory) within(clusterID string) bool {
	for _, h := range inv.Hosts {
		if h.Cluster != clusterID {
			return false
		}
	}
	for _, c := range inv.Clusters {
		if c.ID != clusterID {
			return false
		}
	}
	return true
}

func refList(p types.DynamicProperty) []string {
	if rs, ok := p.Val.(types.ArrayOfManagedObjectReference); ok {
		return refIDs(rs.ManagedObjectReference)
	}
	return nil
}

// StorageProblem says why a host cannot run a VM as it is: a datastore
// of the VM that the host does not see, or a network of the VM the host
// does not have. "" when it has them all.
func (inv *Inventory) StorageProblem(vmID, hostID string) string {
	v, ok1 := inv.VM(vmID)
	h, ok2 := inv.Host(hostID)
	if !ok1 || !ok2 {
		return ""
	}
	for _, d := range v.Datastores {
		if !contains(h.Datastores, d) {
			return "host " + h.Name + " does not see datastore " + d + " of " + v.Name
		}
	}
	for _, n := range v.Networks {
		if !contains(h.Networks, n) {
			return "host " + h.Name + " does not have network " + n + " of " + v.Name
		}
	}
	return ""
}

// ErrIncompatible means vCenter says a VM cannot run on a host.
var ErrIncompatible = errors.New("vsphere: the VM cannot run on that host")

// CheckRelocate asks vCenter (CheckRelocate_Task) whether the VM can move
// to the host, with the host's pool, as a relocation would. A vCenter
// without a provisioning checker is taken at its word (nil).
func (c *Client) CheckRelocate(ctx context.Context, vmID, hostID string) error {
	err := c.do(ctx, func(vc *vim25.Client) error {
		if vc.ServiceContent.VmProvisioningChecker == nil {
			return nil
		}
		pool, err := c.pool(ctx, vc, hostID)
		if err != nil {
			return err
		}
		host := hostRef(hostID)
		// the task by hand: govmomi's CheckRelocate dereferences the task's
		// result without looking, and a task that ends with none panicked
		task, err := methods.CheckRelocate_Task(ctx, vc, &types.CheckRelocate_Task{This: *vc.ServiceContent.VmProvisioningChecker,
			Vm: vmRef(vmID), Spec: types.VirtualMachineRelocateSpec{Host: &host, Pool: &pool}})
		if err != nil {
			return err
		}
		ti, err := object.NewTask(vc, task.Returnval).WaitForResult(ctx)
		if err != nil {
			return err
		}
		var res []types.CheckResult
		if ti != nil {
			if arr, ok := ti.Result.(types.ArrayOfCheckResult); ok {
				res = arr.CheckResult
			}
		}
		var msgs []string
		for _, r := range res {
			for _, e := range r.Error {
				msgs = append(msgs, e.LocalizedMessage)
			}
		}
		if len(msgs) > 0 {
			return fmt.Errorf("%w: %s", ErrIncompatible, strings.Join(msgs, "; "))
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrIncompatible) {
		return fmt.Errorf("vsphere: check relocation of %s to %s: %w", vmID, hostID, classify(err))
	}
	return err
}

// LogUserEvent posts a user event on a VM (EventManager.LogUserEvent), so
// that an administrator reading the VM's events sees why parley moved it.
// Where the method is missing (vcsim lacks it) it posts the same message
// as a GeneralUserEvent with PostEvent.
func (c *Client) LogUserEvent(ctx context.Context, vmID, msg string) error {
	err := c.do(ctx, func(vc *vim25.Client) error {
		if vc.ServiceContent.EventManager == nil {
			return nil
		}
		em := *vc.ServiceContent.EventManager
		if !c.noLogUserEvent.Load() {
			_, err := methods.LogUserEvent(ctx, vc, &types.LogUserEvent{This: em, Entity: vmRef(vmID), Msg: msg})
			if err == nil || !isNotImplemented(err) {
				return err
			}
			c.noLogUserEvent.Store(true) // ask once; PostEvent from now on
		}
		ref := vmRef(vmID)
		_, err := methods.PostEvent(ctx, vc, &types.PostEvent{This: em, EventToPost: &types.GeneralUserEvent{
			GeneralEvent: types.GeneralEvent{Event: types.Event{FullFormattedMessage: msg, Vm: &types.VmEventArgument{Vm: ref}}, Message: msg},
			Entity:       &types.ManagedEntityEventArgument{Entity: ref}}})
		return err
	})
	if err != nil {
		return fmt.Errorf("vsphere: log an event on %s: %w", vmID, classify(err))
	}
	return nil
}

// isNotImplemented reports a server that does not know the method.
func isNotImplemented(err error) bool {
	if soap.IsSoapFault(err) {
		switch soap.ToSoapFault(err).VimFault().(type) {
		case types.NotImplemented, *types.NotImplemented, types.MethodNotFound, *types.MethodNotFound:
			return true
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "NotImplemented") || strings.Contains(msg, "MethodNotFound") || strings.Contains(msg, "not implemented")
}

// PCIPassthrough reports whether a VM has a PCI passthrough device
// (VirtualPCIPassthrough: a GPU, a NIC handed to the guest): such a VM is
// tied to its host's hardware and never moved. It reads one VM's devices,
// which the inventory does not carry (too large to fetch for every VM at
// every tick): callers keep the answer.
func (c *Client) PCIPassthrough(ctx context.Context, vmID string) (bool, error) {
	var found bool
	err := c.do(ctx, func(vc *vim25.Client) error {
		var vm mo.VirtualMachine
		if err := property.DefaultCollector(vc).RetrieveOne(ctx, vmRef(vmID), []string{"config.hardware.device"}, &vm); err != nil {
			return err
		}
		if vm.Config == nil {
			return nil
		}
		for _, d := range vm.Config.Hardware.Device {
			if _, ok := d.(*types.VirtualPCIPassthrough); ok {
				found = true
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("vsphere: devices of %s: %w", vmID, classify(err))
	}
	return found, nil
}
