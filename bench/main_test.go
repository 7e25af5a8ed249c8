package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestStoreBenchReportsEverySystem(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three 3-member clusters")
	}
	var out, errw bytes.Buffer
	if rc := run(context.Background(), []string{"store", "-o", "json", "--pairs", "32", "--rounds", "1", "--clients", "1,4"}, &out, &errw); rc != 0 {
		t.Fatalf("rc=%d: %s", rc, errw.String())
	}
	var res map[string]map[string]Figures
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for _, sys := range []string{"parley", "raft", "etcd"} {
		for _, k := range []string{"clients_1", "clients_4"} {
			f := res[sys][k]
			if f.PairsPerS <= 0 || f.P50Ms <= 0 || f.Pairs < 8 {
				t.Errorf("%s %s: %+v", sys, k, f)
			}
		}
	}
}

func TestStoreBenchRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"stor"}, {"store", "-o", "yaml"}, {"store", "--clients", "0"}, {"store", "--systems", "consul"}, {"store", "--pairs", "-1"}} {
		var out, errw bytes.Buffer
		if rc := run(context.Background(), args, &out, &errw); rc != 2 || errw.Len() == 0 || out.Len() != 0 {
			t.Errorf("%q: rc=%d stdout=%q stderr=%q", args, rc, out.String(), errw.String())
		}
	}
	var out, errw bytes.Buffer
	run(context.Background(), []string{"store", "--systems", "consul"}, &out, &errw)
	if !strings.Contains(errw.String(), `"consul"`) {
		t.Errorf("the error does not name the system: %q", errw.String())
	}
}
