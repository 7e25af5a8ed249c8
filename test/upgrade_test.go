package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// previousRelease is the commit of the release before this one (stop 27's
// landing, tagged v0.2.0 where tags are kept): the rolling upgrade starts
// from it. Move it forward at each release.
const previousRelease = "c75c632f52cb7a10de381b5660db7e2e731c3f7c"

// buildRelease builds parley at commit from this repository's history
// into dir, skipping (and saying why) where the history does not hold it
// (a shallow clone).
func buildRelease(t *testing.T, commit, dir string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("the previous release %s is not in this clone's history (a shallow clone?): %v %s", commit[:12], err, out)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", root, commit, src))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, out)
	}
	bin := filepath.Join(dir, "parley-"+commit[:12])
	build := exec.Command("go", "build", "-o", bin, "./cmd/parley")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release %s: %v\n%s", commit[:12], err, out)
	}
	return bin
}

// TestRollingUpgrade: a 3-member store, the simulator and half the
// workers start on the previous release, the other half on this build.
// Under lease and policy traffic, each store member in turn is stopped
// (SIGTERM) and started again on this build with its data folder, while
// workers of both versions negotiate and move VMs. Nothing acknowledged is
// lost (porcupine over the lease history, every pushed version and journal
// entry), no VM had two overlapping relocations, every VM is on one host,
// and old and new workers moved VMs to each other.
func TestRollingUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and starts real processes")
	}
	old := buildRelease(t, previousRelease, t.TempDir())
	oldNodes := map[string]bool{"s1": true, "s2": true, "s3": true, "w0": true, "w1": true, "w2": true, "w3": true}
	s := startScenario(t, envConfig{hosts: 8, vms: 64, seed: 21, migrateTime: time.Second, drift: true,
		binFor: func(node string) string {
			if oldNodes[node] {
				return old
			}
			return ""
		}})
	upgradeStart := time.Now()
	for i, p := range s.e.stores {
		time.Sleep(3 * time.Second)
		p.kill(syscall.SIGTERM)
		p.bin = "" // this build, on the same data folder and flags
		fmt.Fprintf(p.log, "\n---- upgraded ----\n")
		p.run()
		s.e.waitReady(s.e.storeHTTP[i], 30*time.Second)
		waitFor(t, time.Minute, fmt.Sprintf("s%d back among 3 members", i+1), func() bool {
			st, err := s.e.client.Status(s.ctx)
			return err == nil && st.Leader != "" && len(st.Members) == 3
		})
		t.Logf("s%d upgraded", i+1)
	}
	upgradeEnd := time.Now()
	time.Sleep(5 * time.Second) // workers of both versions on the upgraded store
	s.waitBalanced(60 * time.Second)
	// moves between workers of the two versions, in vCenter's record
	workerOf := func(host string) string { return "w" + strings.TrimPrefix(host, "DC0_C0_H") }
	mixed, during := 0, 0
	for _, r := range s.e.relocations() {
		if r.Result == "success" && oldNodes[workerOf(r.From)] != oldNodes[workerOf(r.To)] {
			mixed++
		}
		if r.Start.After(upgradeStart) && r.End.Before(upgradeEnd) {
			during++
		}
	}
	if mixed == 0 {
		t.Error("no VM moved between a worker of the previous release and one of this build")
	}
	t.Logf("%d relocations, %d between workers of different versions, %d during the upgrade of the store", len(s.e.relocations()), mixed, during)
	s.finish()
}
