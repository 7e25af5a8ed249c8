package lcc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The benchmarks below report the time per element at two sizes an order
// of magnitude apart: near-linear work keeps ns/element about the same,
// quadratic work multiplies it by ten.

// chainModel is n roles, each receiving from the one before and sending to
// the one after, or passing on by a role change.
func chainModel(n int) string {
	var b strings.Builder
	b.WriteString("r(r0, initial)\n")
	for k := 0; k < n; k++ {
		prev, next := (k+n-1)%n, (k+1)%n
		fmt.Fprintf(&b, "a(r%d, X) ::\n    ( m%d(V) <= a(r%d, P) within 5 then null <- W is V + 1 then m%d(W) => a(r%d, peer_%d) )\n    or null <- V = 0 then a(r%d, X).\n",
			k, k, prev, next, next, next, next)
	}
	return b.String()
}

func BenchmarkCheckChainedRoles(b *testing.B) {
	for _, n := range []int{200, 2000} {
		src := []byte(chainModel(n))
		b.Run(fmt.Sprintf("roles=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				m, errs := Parse("chain.lcc", src)
				if errs.HasErrors() {
					b.Fatal(errs)
				}
				if errs := Check(m, nil); errs.HasErrors() {
					b.Fatal(errs)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/role")
		})
	}
}

func BenchmarkQueuedMessages(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			src := `r(sink, initial)
a(sink, S) :: null <- hold then a(drain(0), S).
a(drain(N), S) :: null <- N >= ` + fmt.Sprint(n) + ` or ( m(N) <= a(src, P) then null <- N1 is N + 1 then a(drain(N1), S) ).
a(src, P) :: m(0) => a(sink, s).`
			for i := 0; i < b.N; i++ {
				release := make(chan struct{})
				reg := NewRegistry()
				reg.MustRegister("hold", 0, "waits until the messages are queued", func(ctx context.Context, _ *Goal) (bool, error) {
					<-release
					return true, nil
				})
				prog := mustProgram(b, "q", src, reg.Known())
				node := NewNode(NodeConfig{ID: "s", Registry: reg})
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				h, err := node.Start(ctx, prog, "i", A("sink"))
				if err != nil {
					b.Fatal(err)
				}
				for k := 0; k < n; k++ { // queued before the receiving role runs
					if err := node.Deliver(ctx, Message{Interaction: "i", Policy: prog.Ref, FromID: "p", FromRole: A("src"), ToID: "s", ToRole: A("sink"), Body: C("m", I(int64(k)))}); err != nil {
						b.Fatal(err)
					}
				}
				close(release)
				if o := h.Wait(); o.Status != Closed {
					b.Fatalf("%s: %s", o.Status, o.Reason)
				}
				cancel()
				node.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/message")
		})
	}
}

func BenchmarkAccumulateList(b *testing.B) {
	for _, n := range []int{4000, 40000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			src := `r(acc, initial)
a(acc, A) :: a(grow(0, []), A).
a(grow(N, L), A) :: null <- N >= ` + fmt.Sprint(n) + ` and length(L, Len) and Len == N
    or ( null <- N1 is N + 1 and L1 = [N | L] then a(grow(N1, L1), A) ).`
			prog := mustProgram(b, "acc", src, nil)
			for i := 0; i < b.N; i++ {
				outs, err := RunLocal(context.Background(), LocalConfig{Program: prog, Agents: []AgentSpec{{Role: A("acc"), ID: "a"}}, Timeout: 5 * time.Minute})
				if err != nil || outs[0].Status != Closed {
					b.Fatalf("%v %+v", err, outs)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
}
