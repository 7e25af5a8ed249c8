package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/vsphere"
)

// vSphere's own say: a worker sees and negotiates within its host's
// cluster only (Observe scopes the inventory to it), leaves a cluster that
// DRS balances to DRS unless told to coexist, never offers a VM that
// cannot or may not move, and keeps vCenter's mandatory rules.

// leftToDRS reports whether DRS balances this host's cluster (enabled and
// fully automated) and the worker was not told to coexist with it.
func (w *Worker) leftToDRS(inv *vsphere.Inventory, h vsphere.Host) (bool, vsphere.Cluster) {
	c, ok := inv.Cluster(h.Cluster)
	return ok && c.BalancedByDRS() && !w.cfg.CoexistDRS, c
}

// noteDRS says, when it changes, that this host's balancing is left to
// DRS: in the log, the journal and the host list. Observe calls it. A
// report the store did not take (it was electing, or does not know this
// worker yet) is sent again at the next observation.
func (w *Worker) noteDRS(ctx context.Context, inv *vsphere.Inventory, h vsphere.Host) {
	left, c := w.leftToDRS(inv, h)
	w.mu.Lock()
	changed := left != w.drsLeft
	w.drsLeft = left
	w.mu.Unlock()
	if changed {
		state, reason := "", ""
		if left {
			behavior := c.DRSBehavior
			if behavior == "" {
				behavior = "fullyAutomated (vCenter's default)"
			}
			reason = fmt.Sprintf("DRS (%s) balances cluster %s; parley acts there only with --coexist-drs, and still drains", behavior, c.Name)
			state = api.HostDRS
			w.log.Warn().Str("cluster", c.Name).Str("drs", behavior).Msg("leaving this cluster's balancing to DRS")
		} else {
			reason = "parley balances this host"
			w.log.Info().Str("cluster", c.Name).Msg("parley balances this cluster")
		}
		w.journal(ctx, raftstore.JournalEntry{Kind: api.KindDRS, From: w.cfg.Host, Outcome: map[bool]string{true: api.OutcomeLeftToDRS, false: api.OutcomeBalancedByParley}[left], Reason: reason})
		w.mu.Lock()
		w.drsReport = &raftstore.HostReport{Name: w.cfg.Host, State: state, Reason: reason}
		w.mu.Unlock()
	}
	w.mu.Lock()
	report, draining := w.drsReport, w.drain != nil
	if draining {
		w.drsReport = nil // the drain's state is the host's until it ends
	}
	w.mu.Unlock()
	if report == nil || draining {
		return
	}
	if err := w.store.ReportHost(ctx, *report); err != nil {
		w.log.Warn().Err(err).Msg("report the DRS state (again at the next observation)")
		return
	}
	w.mu.Lock()
	if w.drsReport == report {
		w.drsReport = nil
	}
	w.mu.Unlock()
}

// movable says whether a VM may be offered: vSphere lets it move
// (vsphere.VM.Movable) and no per-VM DRS override keeps it in place.
func movable(inv *vsphere.Inventory, h vsphere.Host, v vsphere.VM) (bool, string) {
	if ok, why := v.Movable(); !ok {
		return false, why
	}
	if c, ok := inv.Cluster(h.Cluster); ok && c.VMExcluded(v.ID) {
		return false, "a DRS override for it is " + c.VMOverrides[v.ID]
	}
	return true, ""
}

// violations are the VMs on this host that break one of vCenter's
// mandatory rules where they are (a rule made after they were placed),
// movable and not already moving or cooling down. As DRS does, they are
// moved first: the host counts as overloaded while it has one, and
// pick_vm offers them before anything else.
func (w *Worker) violations(s snapshot, skip func(name string) bool) []vsphere.VM {
	if left, _ := w.leftToDRS(s.inv, s.host); left {
		return nil // DRS corrects its own rules
	}
	var out []vsphere.VM
	for _, v := range s.inv.VMsOn(s.host.ID) {
		if ok, _ := movable(s.inv, s.host, v); !ok || (skip != nil && skip(v.Name)) {
			continue
		}
		if s.inv.RuleProblem(v.ID, s.host.ID) != "" {
			out = append(out, v)
		}
	}
	return out
}

// negotiatingVM reports whether a negotiation for the VM is under way.
func (w *Worker) negotiatingVM(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.negotiating[name]
	return ok
}

// relocateChecker is a vCenter that answers CheckRelocate_Task.
type relocateChecker interface {
	CheckRelocate(ctx context.Context, vmID, hostID string) error
}

// checkRelocate asks vCenter whether the VM can run on this host, once an
// award is made (a bid is decided on what the inventory shows, so as not
// to ask vCenter for every offer). It returns the problem, or "".
func (w *Worker) checkRelocate(ctx context.Context, vm string) string {
	rc := w.caps.relocate
	if rc == nil {
		return ""
	}
	s, err := w.snap()
	if err != nil {
		return err.Error()
	}
	v, ok := s.inv.VM(vm)
	if !ok {
		return "VM " + vm + " is not in this cluster's inventory"
	}
	if err := rc.CheckRelocate(ctx, v.ID, s.host.ID); err != nil {
		return err.Error()
	}
	return ""
}

// eventLogger is a vCenter that takes user events on a VM.
type eventLogger interface {
	LogUserEvent(ctx context.Context, vmID, msg string) error
}

// logEvent tells vCenter, on the VM, why parley moves it: an
// administrator reading the VM's events sees the policy, its version and
// the interaction. A failure is logged and does not stop the move.
func (w *Worker) logEvent(ctx context.Context, g *lcc.Goal, vmID, target string) {
	el := w.caps.events
	if el == nil {
		return
	}
	msg := fmt.Sprintf("parley moves this VM from %s to %s: policy %s, interaction %s, worker %s", w.cfg.Host, target, g.Policy.String(), g.Interaction, w.cfg.ID)
	if err := el.LogUserEvent(ctx, vmID, msg); err != nil {
		w.log.Warn().Err(err).Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("vm", vmID).Msg("post the migration's event on the VM")
	}
}

// passthroughChecker is a vCenter that says which VMs have a PCI
// passthrough device.
type passthroughChecker interface {
	PCIPassthrough(ctx context.Context, vmID string) (bool, error)
}

type pinnedVM struct {
	has bool
	at  time.Time
}

// passthroughTTL is how long vCenter's answer about a VM's devices is kept:
// devices change rarely, and asking costs a call per VM.
const passthroughTTL = 10 * time.Minute

// pinned reports whether a VM has a PCI passthrough device, which ties it
// to its host's hardware: such a VM is never offered. vCenter is asked
// once per VM and passthroughTTL; a VM it cannot answer for is not
// offered this time.
func (w *Worker) pinned(ctx context.Context, v vsphere.VM) bool {
	pc := w.caps.passthrough
	if pc == nil {
		return false
	}
	w.mu.Lock()
	e, known := w.passthrough[v.ID]
	w.mu.Unlock()
	if known && time.Since(e.at) < passthroughTTL {
		return e.has
	}
	has, err := pc.PCIPassthrough(ctx, v.ID)
	if err != nil {
		w.log.Warn().Err(err).Str("vm", v.Name).Msg("could not read the VM's devices: not offering it this time")
		return true
	}
	w.mu.Lock()
	w.passthrough[v.ID] = pinnedVM{has: has, at: time.Now()}
	w.mu.Unlock()
	if has && !known {
		w.log.Info().Str("vm", v.Name).Msg("the VM has a PCI passthrough device: it is never moved")
	}
	return has
}
