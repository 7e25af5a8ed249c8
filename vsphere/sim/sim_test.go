package sim

import (
	"fmt"
	"testing"
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
