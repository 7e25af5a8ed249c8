package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicySimulateNeedsNoStore(t *testing.T) {
	t.Setenv("PARLEY_STORE", "127.0.0.1:1") // nothing there: FILE needs no store
	code, out, errs := runCLI(t, "policy", "simulate", "balance", "../../policies/balance.lcc", "--hosts", "8", "--vms", "64", "-o", "json")
	if code != exitOK {
		t.Fatalf("simulate: %d %s", code, errs)
	}
	var res struct {
		Before, After struct {
			StdDev  float64 `json:"stddev"`
			MaxLoad float64 `json:"max_load"`
		}
		Migrations []struct {
			VM, From, To string
			Tick         int
		}
		Ticks int
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Ticks < 1 || len(res.Migrations) == 0 || res.After.StdDev >= res.Before.StdDev || res.After.MaxLoad > 0.7 {
		t.Errorf("simulation: %+v", res)
	}
	for _, m := range res.Migrations {
		if m.VM == "" || m.From == "" || m.To == "" || m.Tick < 1 || m.Tick > res.Ticks {
			t.Errorf("migration %+v", m)
		}
	}
	code, out, _ = runCLI(t, "policy", "simulate", "evacuate", "../../policies/evacuate.lcc", "--hosts", "4", "--vms", "12", "--skew", "0.25", "--util", "0.3", "--drain", "DC0_C0_H1")
	if code != exitOK || !strings.Contains(out, "maintenance") {
		t.Errorf("simulate a drain: %d\n%s", code, out)
	}
	bad := writeTemp(t, "bad.lcc", "r(x, initial)\na(x, X) :: null <- nowhere(X).\n")
	if code, out, _ := runCLI(t, "policy", "simulate", "bad", bad); code != exitFailed || !strings.Contains(out, ":2:") {
		t.Errorf("simulate an invalid policy: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "policy", "simulate", "balance", "../../policies/balance.lcc", "--hosts", "1"); code != exitUsage {
		t.Errorf("one host: %d", code)
	}
	if code, _, errs := runCLI(t, "policy", "simulate", "balance", "../../policies/balance.lcc", "--drain", "nowhere"); code != exitFailed || !strings.Contains(errs, "no such host") {
		t.Errorf("drain of an unknown host: %d %q", code, errs)
	}
}

func TestPolicyTestCommand(t *testing.T) {
	code, out, errs := runCLI(t, "policy", "test", "../../policies")
	if code != exitOK || !strings.Contains(out, "0 failed") {
		t.Fatalf("shipped scenarios: %d\n%s%s", code, out, errs)
	}
	// a copy of balance whose bids skip fits fails its tests, with what
	// happened instead
	dir := t.TempDir()
	text, _ := os.ReadFile("../../policies/balance.lcc")
	broken := strings.Replace(string(text), "<- fits(VM, CPU, Mem) and bid_score(", "<- bid_score(", 1)
	os.WriteFile(filepath.Join(dir, "balance.lcc"), []byte(broken), 0o644)
	tests, _ := os.ReadFile("../../policies/balance.tests.json")
	os.WriteFile(filepath.Join(dir, "balance.tests.json"), tests, 0o644)
	code, out, _ = runCLI(t, "policy", "test", dir)
	if code != exitFailed || !strings.Contains(out, "FAIL  balance:") || !strings.Contains(out, "expected") {
		t.Errorf("a broken balance: %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "policy", "test", t.TempDir()); code != exitUsage {
		t.Errorf("a folder without tests: %d", code)
	}
}
