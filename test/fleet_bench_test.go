package test

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// TestBenchFleetHeartbeatsCostNothing runs 'parley bench fleet' with its
// baseline: the same fleet with every heartbeat written to the log, then
// as parley runs. At steady state the store must write far less than one
// entry per heartbeat, and each run reports its members and latency.
func TestBenchFleetHeartbeatsCostNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	out, err := exec.Command(parleyBin, "bench", "fleet", "--workers", "12", "--warmup", "6s", "--duration", "6s", "--interval", "1s", "--baseline", "-o", "json").Output()
	if err != nil {
		t.Fatalf("bench fleet: %v\n%s", err, exitStderr(err))
	}
	var r struct {
		AppliesPerS     float64 `json:"applies_per_s"`
		StoreCPUPercent float64 `json:"store_cpu_percent"`
		Members         []struct {
			ID     string  `json:"id"`
			Leader bool    `json:"leader"`
			RSSMB  float64 `json:"rss_mb"`
		} `json:"members"`
		NegotiationP99MS *float64           `json:"negotiation_p99_ms"`
		ByCommand        map[string]float64 `json:"applies_by_command_per_s"`
		Baseline         *struct {
			AppliesPerS float64            `json:"applies_per_s"`
			ByCommand   map[string]float64 `json:"applies_by_command_per_s"`
		} `json:"baseline"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	t.Logf("applies/s %.2f (baseline %.2f), leader CPU %.1f%%", r.AppliesPerS, r.Baseline.AppliesPerS, r.StoreCPUPercent)
	leaders := 0
	for _, m := range r.Members {
		if m.Leader {
			leaders++
		}
		if m.RSSMB <= 0 {
			t.Errorf("member %s: no memory figure", m.ID)
		}
	}
	if len(r.Members) != 3 || leaders != 1 || r.NegotiationP99MS == nil || r.StoreCPUPercent <= 0 {
		t.Fatalf("report incomplete: %s", out)
	}
	// 12 workers beating every second: the baseline writes about 12 heartbeats a second
	if r.Baseline == nil || r.Baseline.ByCommand["worker.heartbeat"] < 6 {
		t.Fatalf("the baseline wrote %v heartbeats a second for 12 workers beating every second", r.Baseline)
	}
	if hb := r.ByCommand["worker.heartbeat"]; hb > 0 {
		t.Fatalf("%.2f heartbeats a second reached the log (all writes: %v)", hb, r.ByCommand)
	}
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
