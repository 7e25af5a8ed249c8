package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/worker/placement"
)

func init() {
	register("policy",
		command{"test", "run the scenarios of NAME.tests.json files against NAME.lcc beside them", (*cli).policyTest},
	)
}

// testFiles finds the tests files named by args: files as they are,
// folders for every *.tests.json in them; "policies" when none is named.
func testFiles(args []string) ([]string, error) {
	if len(args) == 0 {
		args = []string{"policies"}
	}
	var out []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "*.tests.json"))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("%s holds no *.tests.json file", a)
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}

func (c *cli) policyTest(ctx context.Context, args []string) int {
	fs := c.newFlags("policy test", "policy test [DIR|FILE ...] [--run SUBSTRING] [-v] [-o table|json]")
	run := fs.String("run", "", "run only the scenarios whose name contains this")
	verbose := fs.Bool("v", false, "print every scenario's moves, passed or not")
	output := fs.String("o", "table", "output format: table or json")
	pos, code, ok := c.parse(fs, args, 0, -1)
	if !ok {
		return code
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(c.stderr, "parley: -o must be table or json, not %q\n", *output)
		return exitUsage
	}
	files, err := testFiles(pos)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley policy test:", err)
		return exitUsage
	}
	evac, _ := policies.Source("evacuate")
	var all []placement.ScenarioResult
	failed := 0
	for _, f := range files {
		sf, err := placement.LoadScenarios(f)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley policy test:", err)
			return exitUsage
		}
		name := sf.Policy
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(f), ".tests.json")
		}
		lccFile := filepath.Join(filepath.Dir(f), name+".lcc")
		text, err := os.ReadFile(lccFile)
		if err != nil {
			fmt.Fprintf(c.stderr, "parley policy test: %s: the policy beside it: %v\n", f, err)
			return exitUsage
		}
		if _, diags := policies.Check(lccFile, text); diags.HasErrors() {
			c.printDiags(diags)
			return exitFailed
		}
		extra := map[string]string{}
		if name != "evacuate" {
			extra["evacuate"] = string(evac)
		}
		for _, s := range sf.Scenarios {
			if *run != "" && !strings.Contains(s.Name, *run) {
				continue
			}
			r := placement.RunScenario(ctx, name, string(text), extra, s)
			if !r.Pass {
				failed++
			}
			if *output == "table" {
				status := "PASS"
				if !r.Pass {
					status = "FAIL"
				}
				fmt.Fprintf(c.stdout, "%s  %s: %s\n", status, name, r.Name)
				for _, why := range r.Failures {
					fmt.Fprintf(c.stdout, "      %s\n", why)
				}
				if *verbose && r.Sim != nil {
					for _, m := range r.Sim.Migrations {
						fmt.Fprintf(c.stdout, "      tick %d: %s %s -> %s\n", m.Tick, m.VM, m.From, m.To)
					}
				}
			}
			r.Sim = nil
			all = append(all, r)
		}
	}
	if *output == "json" {
		writeJSON(c.stdout, all)
	} else {
		fmt.Fprintf(c.stdout, "%d scenarios, %d failed\n", len(all), failed)
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}
