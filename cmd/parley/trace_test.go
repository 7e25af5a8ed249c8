package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/worker/local"
)

// TestTraceAndExplain runs a whole parley in the process (TLS, tokens,
// real HTTP between workers), waits for a migration, and reads it back
// with 'parley trace' (the pieces of every worker that took part, in one
// chart), 'parley trace --vm' and 'parley explain'.
func TestTraceAndExplain(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := local.Start(ctx, local.Config{Hosts: 4, VMs: 16, Seed: 3, MigrateTime: 200 * time.Millisecond, Interval: 500 * time.Millisecond, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var vm, iid string
	deadline := time.Now().Add(60 * time.Second)
	for iid == "" {
		if time.Now().After(deadline) {
			t.Fatal("no migration")
		}
		js, _ := l.Store.Journal(ctx, 0, 1000)
		for _, j := range js {
			if j.Kind == "migration" && j.Outcome == "success" {
				vm, iid = j.VM, j.Interaction
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Setenv("PARLEY_STORE", l.Members[0].HTTPAddr())
	t.Setenv("PARLEY_TOKEN", l.AdminToken)
	t.Setenv("PARLEY_TLS_CA", filepath.Join(l.PKI, "ca.pem"))
	t.Setenv("PARLEY_TLS_CERT", filepath.Join(l.PKI, "admin.pem"))
	t.Setenv("PARLEY_TLS_KEY", filepath.Join(l.PKI, "admin-key.pem"))
	code, out, errs := runCLI(t, "trace", iid)
	if code != exitOK {
		t.Fatalf("trace: %d %s", code, errs)
	}
	for _, want := range []string{"interaction " + iid, "cfp('" + vm, "=> w", "<= w", "solves take_leases('" + vm, "ends: closed", "journal: migration " + vm} {
		if !strings.Contains(out, want) {
			t.Errorf("the chart lacks %q:\n%s", want, out)
		}
	}
	agents := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[1], "w") {
			agents[f[1]] = true
		}
	}
	if len(agents) < 2 {
		t.Errorf("the chart holds the steps of %d workers, want the initiator and its peers:\n%s", len(agents), out)
	}
	// without a client certificate the workers refuse their traces
	t.Setenv("PARLEY_TLS_CERT", "")
	t.Setenv("PARLEY_TLS_KEY", "")
	if code, out, _ := runCLI(t, "trace", iid); code != exitOK || !strings.Contains(out, "certificate") {
		t.Errorf("trace without a certificate: %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "trace", "--vm", vm); code != exitOK || !strings.Contains(out, iid) {
		t.Errorf("trace --vm: %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "explain", vm); code != exitOK || !strings.Contains(out, "moved from") || !strings.Contains(out, iid) {
		t.Errorf("explain: %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "trace"); code != exitUsage {
		t.Errorf("trace without an interaction: %d", code)
	}
}

// TestSimulateTheCurrentDatacentre: record a running datacentre with
// 'parley inventory export', simulate on it, push with --simulate and
// compare two versions with 'policy diff --simulate'.
func TestSimulateTheCurrentDatacentre(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := local.Start(ctx, local.Config{Hosts: 4, VMs: 16, Seed: 3, Interval: time.Hour, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("PARLEY_STORE", l.Members[0].HTTPAddr())
	t.Setenv("PARLEY_TOKEN", l.AdminToken)
	t.Setenv("PARLEY_TLS_CA", filepath.Join(l.PKI, "ca.pem"))
	code, out, errs := runCLI(t, "inventory", "export", "--vsphere", l.Sim.URL().String(), "--vsphere-ca", filepath.Join(l.PKI, "vcsim-ca.pem"))
	if code != exitOK || !strings.Contains(out, `"hosts"`) || !strings.Contains(out, "DC0_C0_RP0_VM15") {
		t.Fatalf("inventory export: %d %s\n%s", code, errs, out)
	}
	inv := writeTemp(t, "dc.json", out)
	code, out, errs = runCLI(t, "policy", "simulate", "balance", "../../policies/balance.lcc", "--inventory", inv, "-o", "json")
	if code != exitOK || !strings.Contains(out, `"migrations"`) || !strings.Contains(out, "DC0_C0_H3") {
		t.Fatalf("simulate --inventory: %d %s\n%s", code, errs, out)
	}
	text, _ := os.ReadFile("../../policies/balance.lcc")
	v2 := writeTemp(t, "balance.lcc", strings.Replace(string(text), "param(high_load, 0.7).", "param(high_load, 0.5).", 1))
	code, out, errs = runCLI(t, "policy", "push", "balance", v2, "--simulate", "--inventory", inv, "--no-activate")
	if code != exitOK || !strings.Contains(out, "imbalance") || !strings.Contains(out, "pushed version 2") {
		t.Fatalf("push --simulate: %d %s\n%s", code, errs, out)
	}
	code, out, errs = runCLI(t, "policy", "diff", "balance", "1", "2", "--simulate", "--inventory", inv)
	if code != exitOK || !strings.Contains(out, "simulated on one copy") || !strings.Contains(out, "high_load, 0.5") {
		t.Fatalf("diff --simulate: %d %s\n%s", code, errs, out)
	}
	if code, _, _ := runCLI(t, "policy", "simulate", "balance", "../../policies/balance.lcc", "--inventory", writeTemp(t, "bad.json", `{"hosts": []}`)); code != exitUsage {
		t.Errorf("a bad inventory file: %d", code)
	}
}
