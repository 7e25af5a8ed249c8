package test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/vsphere/sim"
)

// TestSoakMigrations runs until PARLEY_SOAK_MIGRATIONS relocations have
// succeeded (1000 for the soak), with drifting demand, the lease
// and policy traffic, and a fault every 20 seconds in turn: the leader
// killed and restarted, a worker killed and restarted, and (where network
// namespaces can be made) the leader cut off from its followers for 5
// seconds. It ends with the suite's checks over the whole run. Skipped
// unless PARLEY_SOAK_MIGRATIONS is set: it takes long.
func TestSoakMigrations(t *testing.T) {
	want, _ := strconv.Atoi(os.Getenv("PARLEY_SOAK_MIGRATIONS"))
	if want <= 0 {
		t.Skip("set PARLEY_SOAK_MIGRATIONS=N (1000 for the full soak) to run it")
	}
	lab := labReason() == ""
	s := startScenario(t, envConfig{hosts: 8, vms: 96, seed: 31, migrateTime: 300 * time.Millisecond, lab: lab})
	deadline := time.Now().Add(time.Minute + time.Duration(want)*3*time.Second)
	fault := 0
	next := time.Now().Add(20 * time.Second)
	succeeded := func() int {
		n := 0
		for _, r := range s.e.relocations() {
			if r.Result == "success" {
				n++
			}
		}
		return n
	}
	// a hot spot that moves: every few seconds the VMs of one host demand
	// most of its capacity, and the others little, so that the fleet
	// always has something to balance
	layout := sim.Generate(8, 96, 31, 0.5, 0.45)
	capacity := map[string]int64{}
	for _, h := range layout.Hosts {
		capacity[h.Name] = h.CPUCapacity()
	}
	hot, nextHot := 0, time.Now()
	heat := func() {
		name := layout.Hosts[hot%len(layout.Hosts)].Name
		hot += 3
		place := s.e.placement()
		var on []string
		for vm, h := range place {
			if h == name {
				on = append(on, vm)
			}
		}
		for vm, h := range place {
			cpu := int64(300)
			if h == name {
				cpu = capacity[h] * 9 / 10 / int64(len(on))
			}
			body := fmt.Sprintf(`{"cpu_mhz": %d, "mem_mb": 2048}`, cpu)
			if resp, err := s.e.ctl.Post(s.e.control+"/vms/"+vm+"/demand", "application/json", strings.NewReader(body)); err == nil {
				resp.Body.Close()
			}
		}
	}
	for succeeded() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d relocations of %d before the deadline", succeeded(), want)
		}
		time.Sleep(time.Second)
		if time.Now().After(nextHot) {
			heat()
			nextHot = time.Now().Add(6 * time.Second)
		}
		if time.Now().Before(next) {
			continue
		}
		next = time.Now().Add(20 * time.Second)
		switch fault % 3 {
		case 0:
			l := s.e.waitLeader(30 * time.Second)
			s.e.killStore(l)
			time.Sleep(time.Second)
			s.e.stores[l].restart()
		case 1:
			w := s.e.workers[fault%len(s.e.workers)]
			w.restart()
		case 2:
			if lab {
				l := s.e.waitLeader(30 * time.Second)
				var rest []string
				for i := range s.e.stores {
					if i != l {
						rest = append(rest, storeName(i))
					}
				}
				s.e.lab.cut(storeName(l), true, rest...)
				time.Sleep(5 * time.Second)
				s.e.lab.heal(storeName(l))
			}
		}
		fault++
		t.Logf("%d relocations so far, %d faults", succeeded(), fault)
	}
	t.Logf("%d successful relocations under %d faults", succeeded(), fault)
	s.finish()
}
