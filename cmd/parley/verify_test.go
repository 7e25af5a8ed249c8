package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLccVerifyAndReplay(t *testing.T) {
	firstFit, _ := filepath.Abs("../../policies/first-fit.lcc")
	dir := t.TempDir()
	t.Chdir(dir)
	stuck := writeTemp(t, "stuck.lcc", `r(a, initial)
r(b, initial)
a(a, X) :: hello <= a(b, Y) then hello => a(b, Y).
a(b, Y) :: null <- fits(vm1, 1, 1) then hello => a(a, h1) or hello <= a(a, X).
`)
	code, out, errs := runCLI(t, "lcc", "verify", stuck, "--agent", "a=h1", "--agent", "b=h2")
	if code != exitFailed || !strings.Contains(out, "error: deadlock: h1 (a) waits for hello from b with no deadline [") ||
		!strings.Contains(out, "h2 (b) finds fits(vm1, 1, 1) false") || !strings.Contains(out, "replay: stuck.replay.json") {
		t.Fatalf("verify of a model that deadlocks: %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "complete: ") || !strings.Contains(out, "states/s") {
		t.Errorf("no summary: %s", out)
	}
	code, out, errs = runCLI(t, "lcc", "run", "--replay", "stuck.replay.json")
	if code != exitOK || !strings.Contains(out, "deadlock: h1 (a) waits for hello") || !strings.Contains(out, "replayed 1 steps") {
		t.Fatalf("replay: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "lcc", "verify", stuck, "--agent", "a=h1", "--agent", "b=h2", "--format", "json")
	var rep struct {
		Complete bool `json:"complete"`
		Findings []struct {
			Kind  string `json:"kind"`
			Steps []any  `json:"steps"`
		} `json:"findings"`
		Replay string `json:"replay_file"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFailed || !rep.Complete || rep.Findings[0].Kind != "deadlock" || rep.Replay == "" {
		t.Fatalf("json: %d %v %s", code, err, out)
	}
	if code, out, _ := runCLI(t, "lcc", "verify", stuck, "--agent", "a=h1", "--agent", "b=h2", "--format", "msc"); code != exitFailed || !strings.Contains(out, "|----->|  hello") && !strings.Contains(out, "|<-") {
		t.Errorf("msc: %d %s", code, out)
	}

	// A replay that no longer fits the model says which step diverged.
	var rf map[string]any
	b, _ := os.ReadFile("stuck.replay.json")
	json.Unmarshal(b, &rf)
	rf["model"].(map[string]any)["text"] = "r(a, initial)\nr(b, initial)\na(a, X) :: null.\na(b, Y) :: null.\n"
	b, _ = json.Marshal(rf)
	os.WriteFile("changed.replay.json", b, 0o644)
	if code, _, errs := runCLI(t, "lcc", "run", "--replay", "changed.replay.json"); code != exitFailed || !strings.Contains(errs, "step 1: h2") {
		t.Errorf("a replay for another model: %d %q", code, errs)
	}

	// The shipped policy passes with the fleet's defaults.
	if code, out, errs := runCLI(t, "lcc", "verify", firstFit); code != exitOK || !strings.Contains(out, "property migrates (sometimes): holds") {
		t.Errorf("first-fit: %d\n%s\n%s", code, out, errs)
	}

	// Bad input names what is wrong and where.
	badDomain := writeTemp(t, "bad.domain", "fits(_, _, _).\nfits(_, _ <- fail.\n")
	badProps := writeTemp(t, "bad.props", "never x :: send(_, _).\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{stuck, "--timeouts", "sometimes"}, "--timeouts must be any or quiescent"},
		{[]string{stuck, "--format", "xml"}, "--format must be"},
		{[]string{stuck, "--domain", filepath.Join(dir, "missing.domain")}, "missing.domain"},
		{[]string{stuck, "--domain", badDomain}, "bad.domain:2:"},
		{[]string{stuck, "--property", badProps}, "bad.props:1:12: error: expected an event"},
		{[]string{stuck, "--agent", "a"}, "want ROLE=ID"},
		{[]string{stuck, "--agent", "nobody=h1"}, "role nobody has no clause"},
		{[]string{stuck, "--bound", "0"}, "must be positive"},
	} {
		code, _, errs := runCLI(t, append([]string{"lcc", "verify"}, c.args...)...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("lcc verify %v: %d %q, want %q", c.args, code, errs, c.want)
		}
	}
}
