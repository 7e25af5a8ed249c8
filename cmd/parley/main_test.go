package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	t.Setenv("PARLEY_LOG_LEVEL", "error")
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageAndUnknownCommands(t *testing.T) {
	if code, _, errs := runCLI(t); code != exitUsage || !strings.Contains(errs, "usage: parley") {
		t.Errorf("no args: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, "frobnicate"); code != exitUsage || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, "lcc", "nope"); code != exitUsage || !strings.Contains(errs, `unknown subcommand "nope"`) {
		t.Errorf("unknown sub: %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, "lcc", "check", "--bogus", "x"); code != exitUsage {
		t.Errorf("bad flag: %d", code)
	}
}

func TestLccCheckExitCodes(t *testing.T) {
	good := writeTemp(t, "good.lcc", "r(x, initial)\na(x, X) :: null <- load(L).\n")
	bad := writeTemp(t, "bad.lcc", "r(x, initial)\na(x, X) :: null <- nowhere(X) then m => a(y, X).\n")
	if code, out, _ := runCLI(t, "lcc", "check", good, "--constraint", "load/1"); code != exitOK || out != "" {
		t.Errorf("good: %d %q", code, out)
	}
	code, out, _ := runCLI(t, "lcc", "check", bad)
	if code != exitFailed {
		t.Errorf("bad: exit %d", code)
	}
	for _, want := range []string{bad + ":2:20: error: unknown constraint nowhere/1", bad + ":2:41: error: role y has no clause"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, errs := runCLI(t, "lcc", "check", "/does/not/exist.lcc"); code != exitUsage || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, "lcc", "check", good, "--constraint", "load"); code != exitUsage {
		t.Errorf("bad --constraint: %d", code)
	}
}

func TestLccFmtRewrites(t *testing.T) {
	p := writeTemp(t, "m.lcc", "r(x,initial) a(x,X)::null then null")
	if code, out, _ := runCLI(t, "lcc", "fmt", p); code != exitOK || !strings.Contains(out, "a(x, X) ::\n    null\n    then null.\n") {
		t.Errorf("fmt: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "lcc", "fmt", "-w", p); code != exitOK {
		t.Fatalf("fmt -w: %d", code)
	}
	b, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(b), "r(x, initial)\n\na(x, X) ::") {
		t.Errorf("rewritten file:\n%s", b)
	}
	broken := writeTemp(t, "b.lcc", "a(x, X) :: null then")
	if code, _, _ := runCLI(t, "lcc", "fmt", "-w", broken); code != exitFailed {
		t.Errorf("fmt of a broken file: %d", code)
	}
	if b, _ := os.ReadFile(broken); string(b) != "a(x, X) :: null then" {
		t.Errorf("a broken file was rewritten: %q", b)
	}
}

func TestLccRun(t *testing.T) {
	model := "../../lcc/testdata/conformance/01_then.lcc"
	k := writeTemp(t, "a.facts", "peer(t).\n")
	code, out, errs := runCLI(t, "lcc", "run", model, "--agent", "asker=a", "--agent", "teller=t", "--knowledge", "a="+k, "--trace")
	if code != exitOK {
		t.Fatalf("run: %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"+MS", "answer(42) => a", "answer(42) <= t", "solves 42 == 42", "a      asker   closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// without the knowledge the check refuses peer/1
	if code, out, _ := runCLI(t, "lcc", "run", model, "--agent", "asker=a", "--agent", "teller=t"); code != exitFailed || !strings.Contains(out, "unknown constraint peer/1") {
		t.Errorf("missing knowledge: %d %q", code, out)
	}
	// an agent that fails makes the exit code 1
	failing := "../../lcc/testdata/conformance/05_deadline_fails_role.lcc"
	if code, out, _ := runCLI(t, "lcc", "run", failing, "--agent", "patient=p", "--agent", "silent=s", "--knowledge", "p="+writeTemp(t, "p.facts", "peer(s).")); code != exitFailed || !strings.Contains(out, "timed out") {
		t.Errorf("failing run: %d %q", code, out)
	}
	for _, bad := range [][]string{
		{"lcc", "run", model},
		{"lcc", "run", model, "--agent", "asker"},
		{"lcc", "run", model, "--agent", "nosuchrole=x", "--knowledge", "a=" + k},
		{"lcc", "run", model, "--agent", "asker=a", "--knowledge", "a=/nope"},
		{"lcc", "run", model, "--agent", "asker=a", "--timeout", "-1s"},
	} {
		if code, _, _ := runCLI(t, bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

func TestStoreCommandsUnreachable(t *testing.T) {
	t.Setenv("PARLEY_STORE", "127.0.0.1:1")
	code, _, errs := runCLI(t, "policy", "list", "--timeout", "1s")
	if code != exitUnavailable || !strings.Contains(errs, "no store member could serve") {
		t.Errorf("unreachable store: %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, "policy", "list", "-o", "yaml"); code != exitUsage {
		t.Errorf("bad -o: %d", code)
	}
}
