package worker

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/vsphere"
)

// TestArrivingVMsCountUntilTheViewShowsThem: room reserved for a VM is
// counted while the store holds the reservation (not twice), then while
// the view does not show the VM here yet, and no more once it does; a VM
// that never comes stops counting arrivalLag after its reservation went.
func TestArrivingVMsCountUntilTheViewShowsThem(t *testing.T) {
	var a arrivals
	t0 := time.Unix(1_700_000_000, 0)
	a.reserved("vm1", "reserve/h1/vm1", 3000, 1024)
	a.reserved("vm2", "reserve/h1/vm2", 500, 256)
	elsewhere := &vsphere.Inventory{VMs: []vsphere.VM{{ID: "v1", Name: "vm1", Host: "host-2"}, {ID: "v2", Name: "vm2", Host: "host-2"}}}
	held := map[string]bool{"reserve/h1/vm1": true, "reserve/h1/vm2": true}
	if c, m := a.unseen(t0, held, elsewhere, "host-1"); c != 0 || m != 0 {
		t.Errorf("while the store holds both reservations: %d MHz %d MB counted again, want 0", c, m)
	}
	// both vMotions ended and the reservations were given back; the view lags
	if c, m := a.unseen(t0.Add(time.Second), map[string]bool{}, elsewhere, "host-1"); c != 3500 || m != 1280 {
		t.Errorf("reservations gone, VMs not in the view yet: %d MHz %d MB, want 3500 MHz 1280 MB", c, m)
	}
	// vm1 shows up here; vm2's vMotion had failed and it never comes
	arrived := &vsphere.Inventory{VMs: []vsphere.VM{{ID: "v1", Name: "vm1", Host: "host-1"}, {ID: "v2", Name: "vm2", Host: "host-2"}}}
	if c, _ := a.unseen(t0.Add(2*time.Second), map[string]bool{}, arrived, "host-1"); c != 500 {
		t.Errorf("vm1 in the view: %d MHz counted, want vm2's 500", c)
	}
	if c, _ := a.unseen(t0.Add(time.Second+arrivalLag+time.Millisecond), map[string]bool{}, arrived, "host-1"); c != 0 {
		t.Errorf("vm2 gone from the store for longer than %v: still %d MHz counted", arrivalLag, c)
	}
	if len(a.m) != 0 {
		t.Errorf("arrivals not forgotten: %v", a.m)
	}
	// a stale read that missed a held reservation does not start its clock for good
	a.reserved("vm3", "reserve/h1/vm3", 100, 1)
	a.unseen(t0, map[string]bool{}, elsewhere, "host-1")
	a.unseen(t0.Add(10*time.Second), map[string]bool{"reserve/h1/vm3": true}, elsewhere, "host-1")
	if c, _ := a.unseen(t0.Add(11*time.Second), map[string]bool{}, elsewhere, "host-1"); c != 100 {
		t.Errorf("vm3 after its reservation was seen again and then given back: %d MHz, want 100", c)
	}
}
