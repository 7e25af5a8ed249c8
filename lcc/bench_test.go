package lcc

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// model500 builds a model of about 500 lines from the auction's clauses.
func model500(b *testing.B) []byte {
	b.Helper()
	base := readFile(b, "testdata/auction_counted.lcc")
	var sb strings.Builder
	sb.WriteString("r(overloaded, initial)\nr(underloaded, necessary, 1)\n")
	i := 0
	for strings.Count(sb.String(), "\n") < 500 {
		// rename roles so that every copy is a distinct set of clauses
		body := base[strings.Index(base, "a(overloaded"):]
		for _, role := range []string{"overloaded", "underloaded", "ask_all", "tell_all", "collect"} {
			body = strings.ReplaceAll(body, role, fmt.Sprintf("%s_%d", role, i))
		}
		sb.WriteString(body)
		i++
	}
	return []byte(sb.String())
}

func BenchmarkParse500Lines(b *testing.B) {
	src := model500(b)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := Parse("bench.lcc", src); errs.HasErrors() {
			b.Fatal(errs)
		}
	}
}

func BenchmarkCheck500Lines(b *testing.B) {
	src := model500(b)
	m, _ := Parse("bench.lcc", src)
	known := (&auctionHost{}).registry().Known()
	b.ReportAllocs()
	for b.Loop() {
		Check(m, known)
	}
}

// BenchmarkAuction runs one full auction (call for proposals, bids,
// award, reservation, migration, notices to the losers) among N responders
// on the in-memory transport. Every responder bids.
func BenchmarkAuction(b *testing.B) {
	for _, n := range []int{8, 64, 512} {
		b.Run(fmt.Sprintf("responders=%d", n), func(b *testing.B) {
			src := readFile(b, "testdata/auction_counted.lcc")
			host := &auctionHost{refuse: map[string]bool{}, scores: map[string]float64{}}
			ids := []string{"o"}
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("p%d", i)
				ids = append(ids, id)
				host.peers = append(host.peers, id)
				host.scores[id] = float64(i%97) / 100
			}
			reg := host.registry()
			prog := mustProgram(b, "auction", src, reg.Known())
			c := newCluster(b, ids, reg, prog, nil)
			b.ReportAllocs()
			i := 0
			cpu0 := cpuTime()
			for b.Loop() {
				i++
				h, err := c.nodes["o"].Start(context.Background(), prog, fmt.Sprintf("i%d", i), A("overloaded"))
				if err != nil {
					b.Fatal(err)
				}
				if o := h.Wait(); o.Status != Closed {
					b.Fatalf("%s: %s", o.Status, o.Reason)
				}
			}
			// responders end just after the initiator: drain them all
			c.waitOutcomes(b, (n+1)*i, time.Minute)
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(i), "cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoopStep is one step of a recursive role, for reference.
func BenchmarkLoopStep(b *testing.B) {
	src := `r(looper, initial)
a(looper, L) :: a(loop(0), L).
a(loop(N), L) :: null <- N >= 100000 or ( null <- N1 is N + 1 then a(loop(N1), L) ).`
	prog := mustProgram(b, "loop", src, nil)
	b.ReportAllocs()
	for b.Loop() {
		outs, err := RunLocal(context.Background(), LocalConfig{Program: prog, Agents: []AgentSpec{{Role: A("looper"), ID: "l"}}})
		if err != nil || outs[0].Status != Closed {
			b.Fatal(err, outs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100000, "ns/step")
}
