package worker

import (
	"fmt"
	"sort"
)

// capabilities are the optional parts of the worker's vCenter connection
// and store, found once when the worker is made rather than at each use,
// so that what is missing is said (at start, and in the worker's status)
// instead of switching a check off silently. govmomi's client (vsphere)
// and raftstore's Client have them all; unit tests' fakes may not.
type capabilities struct {
	relocate    relocateChecker    // vCenter's CheckRelocate before a bid is made good
	events      eventLogger        // an event on the VM saying why parley moves it
	passthrough passthroughChecker // VMs with PCI passthrough are never offered
	stats       statsReader        // --stats realtime: the performance manager's 20 s samples
	peers       peerSetter         // peers' loads from heartbeats, into the vCenter client
	waiter      policyWaiter       // blocking queries for policy changes
}

func findCapabilities(vs VSphere, st Store) capabilities {
	var c capabilities
	c.relocate, _ = vs.(relocateChecker)
	c.events, _ = vs.(eventLogger)
	c.passthrough, _ = vs.(passthroughChecker)
	c.stats, _ = vs.(statsReader)
	c.peers, _ = vs.(peerSetter)
	c.waiter, _ = st.(policyWaiter)
	return c
}

// missing names each capability the worker lacks, with what is off for it.
func (c capabilities) missing() []string {
	var out []string
	add := func(has bool, name, off string) {
		if !has {
			out = append(out, fmt.Sprintf("%s (%s)", name, off))
		}
	}
	add(c.relocate != nil, "check_relocate", "awards are not checked with vCenter's CheckRelocate")
	add(c.events != nil, "vm_events", "no event is posted on a moved VM")
	add(c.passthrough != nil, "pci_passthrough", "VMs with passthrough devices are not recognised")
	add(c.stats != nil, "realtime_stats", "only quickStats loads")
	add(c.peers != nil, "peer_loads", "peers' loads are read from vCenter")
	add(c.waiter != nil, "policy_watch", "policy changes are seen at the next tick")
	sort.Strings(out)
	return out
}
