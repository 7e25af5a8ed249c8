package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkStartup measures building the simulated inventory and starting
// the SDK server (go test -bench Startup -benchtime 1x).
func BenchmarkStartup(b *testing.B) {
	for _, size := range []struct{ hosts, vms int }{{8, 64}, {64, 1000}} {
		b.Run(fmt.Sprintf("hosts=%d/vms=%d", size.hosts, size.vms), func(b *testing.B) {
			for b.Loop() {
				s, err := New(Config{Hosts: size.hosts, VMs: size.vms, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(s.BuildTime.Milliseconds())/float64(max(size.vms, 1)), "ms/vm")
				s.Close()
			}
		})
	}
}

func TestNewRejectsBadSizes(t *testing.T) {
	if _, err := New(Config{Hosts: 0, VMs: 1}); err == nil {
		t.Fatal("accepted zero hosts")
	}
}

func TestAuditFindsViolations(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	clean := []Relocation{
		{VM: "a", From: "h1", To: "h2", Start: at(0), End: at(2), Result: "success", TargetLoad: 0.5},
		{VM: "a", From: "h2", To: "h3", Start: at(2), End: at(4), Result: "success", TargetLoad: 0.6},
		{VM: "b", From: "h1", To: "h3", Start: at(1), End: at(3), Result: "success", TargetLoad: 0.6},
	}
	if v := Audit(clean, 2, 0.7, 0); len(v) != 0 {
		t.Fatalf("clean record flagged: %v", v)
	}
	half := 500 * time.Millisecond
	dirty := append(clean,
		Relocation{VM: "a", From: "h3", To: "h1", Start: at(3), End: at(5), Result: "success", TargetLoad: 0.9},
		Relocation{VM: "c", From: "h3", To: "h4", Start: at(2).Add(half), End: at(3).Add(half), Result: "success", TargetLoad: 0.5})
	v := Audit(dirty, 2, 0.7, 0)
	want := []string{"overlap: a", "oversubscription: h1 took a", "slots: host h3 took part in 3"}
	if len(v) != len(want) {
		t.Fatalf("got %v", v)
	}
	for i, w := range want {
		if !strings.HasPrefix(v[i], w) {
			t.Errorf("violation %d = %q, want prefix %q", i, v[i], w)
		}
	}
}
