package test

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// TestBenchVCenterWatchIsLighterThanPoll runs 'parley bench vcenter' on a
// sample of the hosts (--workers), once following the inventory with
// watches and once polling it, against the simulator: both report the
// sample's size, and a watching worker is served a small share of the
// objects a polling one is.
func TestBenchVCenterWatchIsLighterThanPoll(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	type load struct {
		Hosts, VMs, Workers int
		Inventory           string             `json:"inventory"`
		ObjectsPerWorkerS   float64            `json:"objects_per_worker_s"`
		ByMethod            map[string]float64 `json:"by_method_per_s"`
	}
	run := func(inventory string) load {
		out, err := exec.Command(parleyBin, "bench", "vcenter", "--hosts", "16", "--vms", "200", "--workers", "3",
			"--warmup", "6s", "--duration", "6s", "--inventory", inventory, "-o", "json").Output()
		if err != nil {
			t.Fatalf("bench vcenter --inventory %s: %v\n%s", inventory, err, exitStderr(err))
		}
		var r load
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		if r.Hosts != 16 || r.VMs != 200 || r.Workers != 3 || r.Inventory != inventory {
			t.Fatalf("asked for 3 workers on 16 hosts with 200 VMs by %s, got %s", inventory, out)
		}
		return r
	}
	poll, watch := run("poll"), run("watch")
	t.Logf("objects per worker a second: poll %.1f, watch %.2f", poll.ObjectsPerWorkerS, watch.ObjectsPerWorkerS)
	// polling, each worker reads 16 hosts and 200 VMs every 2 s
	if poll.ObjectsPerWorkerS < 50 || poll.ByMethod["RetrievePropertiesEx"] <= 0 {
		t.Fatalf("polling workers were served %.1f objects a second each (%v)", poll.ObjectsPerWorkerS, poll.ByMethod)
	}
	if watch.ObjectsPerWorkerS > poll.ObjectsPerWorkerS/5 || watch.ByMethod["WaitForUpdatesEx"] <= 0 {
		t.Fatalf("watching workers were served %.2f objects a second each, polling ones %.1f (%v)", watch.ObjectsPerWorkerS, poll.ObjectsPerWorkerS, watch.ByMethod)
	}
}
