package sim

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Zoned storage, as many datacentres have it: a second datastore mounted
// on the first half of each cluster's hosts only, holding the disks of
// some of the VMs placed there. Such a VM can move only to a host that
// sees its datastore; the simulator refuses anything else, as vCenter
// does.

const zoneDatastore = "LocalDS_1"

// zoneStorage unmounts the zone datastore from the second half of each
// cluster's hosts and puts every third VM of the first half on it.
func (s *Sim) zoneStorage() error {
	reg := s.model.Map()
	var ds *simulator.Datastore
	for _, o := range reg.All("Datastore") {
		if d := o.(*simulator.Datastore); d.Name == zoneDatastore {
			ds = d
		}
	}
	if ds == nil {
		return fmt.Errorf("sim: no datastore %s to zone", zoneDatastore)
	}
	per := len(s.Layout.Hosts) / max(1, s.cfg.Clusters)
	zone := map[string]bool{}
	for i := range s.Layout.Hosts {
		id := s.byName[s.Layout.Hosts[i].Name]
		h := s.hosts[id]
		if i%per < (per+1)/2 {
			zone[id] = true
			continue
		}
		h.Datastore = removeRef(h.Datastore, ds.Self)
		var mounts []types.DatastoreHostMount
		for _, m := range ds.Host {
			if m.Key != h.Self {
				mounts = append(mounts, m)
			}
		}
		ds.Host = mounts
	}
	n := 0
	for _, spec := range s.Layout.VMs {
		id := s.byName[spec.Name]
		if !zone[s.vmHost[id]] {
			continue
		}
		if n++; n%3 == 1 {
			s.vms[id].Datastore = []types.ManagedObjectReference{ds.Self}
		}
	}
	return nil
}

// storageFault refuses a move to a host that does not see every datastore
// of the VM.
func (s *Sim) storageFault(vm *simulator.VirtualMachine, target string) (string, types.BaseMethodFault) {
	h := s.hosts[target]
	for _, d := range vm.Datastore {
		seen := false
		for _, x := range h.Datastore {
			seen = seen || x == d
		}
		if !seen {
			return fmt.Sprintf("host %s cannot see datastore %s, which holds %s's disks", h.Name, d.Value, vm.Name),
				&types.InaccessibleDatastore{InvalidDatastore: types.InvalidDatastore{Datastore: &d}}
		}
	}
	return "", nil
}
