package worker

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/vsphere"
)

// Arriving VMs. A target reserves room for a VM (cReserve); the migrator
// gives the reservation back once the vMotion ends. This worker's view of
// its host (a watched inventory) shows the VM here some moments later, and
// later still on a loaded machine: in between, the room the VM now takes
// was counted neither as a reservation nor as load, and a second VM could
// be let in over the high threshold (CI saw a target taken to 0.84 by VMs
// it had reserved room for at 0.51 and 0.30). So the worker remembers the
// VMs it reserved room for and counts each until its view shows it here,
// or until arrivalLag after the store stopped listing the reservation (a
// vMotion that failed: the VM will not come).
type arrivals struct {
	mu sync.Mutex
	m  map[string]arrival // by VM name
}

type arrival struct {
	key      string // the reservation's lease key
	cpu, mem int64
	gone     time.Time // when the store was first seen without the reservation
}

// arrivalLag bounds how long a view may take to show a VM that arrived.
const arrivalLag = 5 * time.Second

// reserved records a reservation made for vm.
func (a *arrivals) reserved(vm, key string, cpu, mem int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]arrival{}
	}
	a.m[vm] = arrival{key: key, cpu: cpu, mem: mem}
}

// unseen is the room taken by VMs that arrived (or may still) but that
// neither the store's reservations (held, by key) nor the view (inv, with
// this host's id) count yet; it forgets those the view shows here and
// those the store dropped more than arrivalLag ago.
func (a *arrivals) unseen(now time.Time, held map[string]bool, inv *vsphere.Inventory, host string) (cpu, mem int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for vm, x := range a.m {
		if v, ok := inv.VM(vm); ok && v.Host == host {
			delete(a.m, vm) // the view counts it now
			continue
		}
		if held[x.key] {
			if !x.gone.IsZero() { // a stale read had missed it
				x.gone = time.Time{}
				a.m[vm] = x
			}
			continue // the store still counts it
		}
		if x.gone.IsZero() {
			x.gone = now
			a.m[vm] = x
		}
		if now.Sub(x.gone) > arrivalLag {
			delete(a.m, vm)
			continue
		}
		cpu, mem = cpu+x.cpu, mem+x.mem
	}
	return cpu, mem
}
