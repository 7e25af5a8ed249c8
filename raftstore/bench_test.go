package raftstore

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load runs total operations on n workers and returns the throughput and
// the latencies of each operation.
func load(n, total int, op func(worker, i int) error) (perSec float64, lat []time.Duration, err error) {
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	lat = make([]time.Duration, 0, total)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					break
				}
				t0 := time.Now()
				if e := op(w, i); e != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = e
					}
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(total) / time.Since(start).Seconds(), lat, firstErr
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkStoreLeases measures lease acquire+release pairs through the Go
// client on a 3-member cluster with fsync on, against a baseline measured
// in the same run on the same cluster: two bare raft.Apply calls of a
// command of the same size (one per half of a pair). ratio = pairs/s
// divided by baseline pairs/s.
func BenchmarkStoreLeases(b *testing.B) {
	c := startCluster(b, 3)
	l := c.waitLeader()
	leader := c.members[l]
	cl, _ := testClient(b, []string{c.cfgs[l].HTTPAddr})
	ctx := context.Background()
	// a same-sized command that the FSM skips
	sample, _ := encodeCommand(cmdAcquire, NewRequestID(), "", time.Now().UnixNano(), AcquireRequest{Holder: "worker-00", TTLMillis: 30000, Items: []AcquireItem{{Key: "vm/vm-0000000"}}})
	raw := []byte(fmt.Sprintf(`{"v":1,"type":"bench.noop","flags":1,"body":"%s"}`, make([]byte, 0)))
	for len(raw) < len(sample) {
		raw = append(raw[:len(raw)-2], []byte(`x"}`)...)
	}
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			total := 300 * max(n/8, 1)
			var rate, base float64
			var lat []time.Duration
			var rounds int
			for b.Loop() {
				rounds++
				r, _, err := load(n, total, func(w, i int) error {
					if err := leader.ApplyRaw(raw); err != nil {
						return err
					}
					return leader.ApplyRaw(raw)
				})
				if err != nil {
					b.Fatal(err)
				}
				base += r
				r, ls, err := load(n, total, func(w, i int) error {
					key := fmt.Sprintf("vm/vm-%07d", i)
					holder := fmt.Sprintf("worker-%02d", w)
					g, err := cl.Acquire(ctx, AcquireRequest{Holder: holder, TTLMillis: 30000, Items: []AcquireItem{{Key: key}}})
					if err != nil {
						return err
					}
					return cl.Release(ctx, RenewRequest{Keys: []string{key}, Holder: holder, Token: g.Token})
				})
				if err != nil {
					b.Fatal(err)
				}
				rate += r
				lat = append(lat, ls...)
			}
			b.ReportMetric(rate/float64(rounds), "pairs/s")
			b.ReportMetric(base/float64(rounds), "raw-pairs/s")
			b.ReportMetric(rate/base, "ratio")
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkFailover stops the leader of a 3-member cluster and measures
// the time until the next write succeeds through the client (failover-ms,
// p50 and p99), against the baseline measured in the same run: the time
// until a member is leader (election-ms); ratio = failover p50 / election
// p50. "default" runs DefaultConfig's heartbeat, election and leader lease
// timeouts, as production does; "1s" the 1 s timeouts (500 ms lease) that
// were the default before, for comparison.
func BenchmarkFailover(b *testing.B) {
	def := DefaultConfig()
	b.Run("default", func(b *testing.B) {
		benchFailover(b, def.HeartbeatTimeout, def.ElectionTimeout, def.LeaderLeaseTimeout)
	})
	b.Run("1s", func(b *testing.B) { benchFailover(b, time.Second, time.Second, 500*time.Millisecond) })
}

func benchFailover(b *testing.B, heartbeat, electionTimeout, lease time.Duration) {
	production := func(c *Config) {
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = heartbeat, electionTimeout, lease
	}
	var failover, election []time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		c := startCluster(b, 3, production)
		l := c.waitLeader()
		ctx := context.Background()
		if _, err := c.client.Push(ctx, PushRequest{Name: "p", Text: okPolicy}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		c.stop(l)
		elected := make(chan time.Duration, 1)
		go func() {
			for {
				for _, m := range c.members {
					if m != nil && m.IsLeader() {
						elected <- time.Since(start)
						return
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		for {
			_, err := c.client.Acquire(ctx, AcquireRequest{Holder: "w", TTLMillis: 1000, Items: []AcquireItem{{Key: fmt.Sprintf("vm/%d", n)}}})
			if err == nil {
				break
			}
		}
		failover = append(failover, time.Since(start))
		election = append(election, <-elected)
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(failover, 0.5)), "failover-p50-ms")
	b.ReportMetric(ms(percentile(failover, 0.99)), "failover-p99-ms")
	b.ReportMetric(ms(percentile(election, 0.5)), "election-p50-ms")
	b.ReportMetric(float64(percentile(failover, 0.5))/float64(percentile(election, 0.5)), "ratio")
}

// insecure makes a test cluster plaintext, with no tokens: the baseline of
// what TLS costs.
func insecure(c *Config) { c.TLS, c.AdminToken, c.Token, c.Insecure = nil, "", "", true }

// BenchmarkStoreLeasesTLS measures what security costs: lease
// acquire+release pairs through the Go client, at 1 and 64 clients, on a
// TLS cluster (API over TLS with a token, raft over mutual TLS) and on a
// plaintext one started in the same run. ratio = TLS pairs/s divided by
// plaintext pairs/s.
func BenchmarkStoreLeasesTLS(b *testing.B) {
	secure, plain := startCluster(b, 3), startCluster(b, 3, insecure)
	ctx := context.Background()
	pairs := func(c *testCluster, n, total, round int) (float64, error) {
		l := c.waitLeader()
		cl := c.client
		if l >= 0 {
			cl, _ = testClient(b, []string{c.cfgs[l].HTTPAddr})
			if c.cfgs[l].Insecure {
				cl, _ = NewClient([]string{c.cfgs[l].HTTPAddr})
			}
		}
		r, _, err := load(n, total, func(w, i int) error {
			key := fmt.Sprintf("vm/r%d-%07d", round, i)
			holder := fmt.Sprintf("worker-%02d", w)
			g, err := cl.Acquire(ctx, AcquireRequest{Holder: holder, TTLMillis: 30000, Items: []AcquireItem{{Key: key}}})
			if err != nil {
				return err
			}
			return cl.Release(ctx, RenewRequest{Keys: []string{key}, Holder: holder, Token: g.Token})
		})
		return r, err
	}
	round := 0
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			total := 300 * max(n/8, 1)
			var tlsRate, plainRate float64
			var rounds int
			for b.Loop() {
				rounds++
				round++
				p, err := pairs(plain, n, total, round)
				if err != nil {
					b.Fatal(err)
				}
				s, err := pairs(secure, n, total, round)
				if err != nil {
					b.Fatal(err)
				}
				plainRate += p
				tlsRate += s
			}
			b.ReportMetric(tlsRate/float64(rounds), "tls-pairs/s")
			b.ReportMetric(plainRate/float64(rounds), "plain-pairs/s")
			b.ReportMetric(tlsRate/plainRate, "ratio")
		})
	}
}
