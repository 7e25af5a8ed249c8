package sim

import (
	"encoding/json"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// notifyEvery is how often the simulator looks for changes vcsim makes
// without telling watchers.
const notifyEvery = 300 * time.Millisecond

// notify sends the property updates vcsim leaves out: a cluster's
// configurationEx after ReconfigureComputeResource_Task (rules, groups,
// DRS settings), a host's runtime.inMaintenanceMode after entering or
// leaving maintenance, and a VM's config.template after MarkAsTemplate.
// vcsim changes these fields in place; a watcher (WaitForUpdatesEx) would
// never learn of them, as it would from a real vCenter. It compares what
// it saw last, every notifyEvery.
func (s *Sim) notify(seen map[string]string) {
	defer s.wg.Done()
	t := time.NewTicker(notifyEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx := s.ctx()
		for _, u := range s.changes(ctx, seen) {
			s.update(ctx, u.obj.(mo.Reference), u.changes)
		}
	}
}

// changes compares clusters' configurationEx, hosts' maintenance mode and
// VMs' template flag with what seen holds, records them, and returns the
// updates for what changed.
func (s *Sim) changes(ctx *simulator.Context, seen map[string]string) []update {
	var ups []update
	changed := func(key, now string) bool {
		old, ok := seen[key]
		seen[key] = now
		return ok && old != now
	}
	for _, o := range ctx.Map.All("ClusterComputeResource") {
		c, ok := o.(*simulator.ClusterComputeResource)
		if !ok {
			continue
		}
		var cfg types.BaseComputeResourceConfigInfo
		var sig []byte
		ctx.Map.WithLock(ctx, c, func() {
			cfg = c.ConfigurationEx
			sig, _ = json.Marshal(cfg)
		})
		if changed(c.Self.Value, string(sig)) {
			ups = append(ups, update{obj: c, changes: []types.PropertyChange{{Name: "configurationEx", Op: types.PropertyChangeOpAssign, Val: cfg}}})
		}
	}
	for _, o := range ctx.Map.All("HostSystem") {
		h, ok := o.(*simulator.HostSystem)
		if !ok {
			continue
		}
		var on bool
		ctx.Map.WithLock(ctx, h, func() { on = h.Runtime.InMaintenanceMode })
		if changed(h.Self.Value, boolText(on)) {
			ups = append(ups, update{obj: h, changes: []types.PropertyChange{{Name: "runtime.inMaintenanceMode", Op: types.PropertyChangeOpAssign, Val: on}}})
		}
	}
	s.mu.Lock()
	vms := make([]*simulator.VirtualMachine, 0, len(s.vms))
	for _, vm := range s.vms {
		vms = append(vms, vm)
	}
	s.mu.Unlock()
	for _, vm := range vms {
		var tmpl bool
		ctx.Map.WithLock(ctx, vm, func() {
			if vm.Config != nil {
				tmpl = vm.Config.Template
			}
		})
		if changed(vm.Self.Value, boolText(tmpl)) {
			ups = append(ups, update{obj: vm, changes: []types.PropertyChange{{Name: "config.template", Op: types.PropertyChangeOpAssign, Val: tmpl}}})
		}
	}
	return ups
}

func boolText(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
