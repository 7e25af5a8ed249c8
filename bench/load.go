package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// measure is what rounds of one system at one client count add up to.
type measure struct {
	n       int
	elapsed time.Duration
	lat     []time.Duration
}

func (m *measure) add(o measure) {
	m.n += o.n
	m.elapsed += o.elapsed
	m.lat = append(m.lat, o.lat...)
}

func (m *measure) figures() Figures {
	slices.Sort(m.lat)
	at := func(p float64) float64 {
		if len(m.lat) == 0 {
			return 0
		}
		return float64(m.lat[min(len(m.lat)-1, int(float64(len(m.lat))*p))].Microseconds()) / 1000
	}
	return Figures{PairsPerS: float64(m.n) / m.elapsed.Seconds(), P50Ms: at(0.5), P99Ms: at(0.99), Pairs: m.n}
}

// load runs total pairs on n clients, each taking the next number, and
// times every pair and the whole.
func load(ctx context.Context, n, total int, pair func(c, i int) error) (measure, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	lat := make([]time.Duration, 0, total)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, total/n+1)
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= total {
					break
				}
				t0 := time.Now()
				if err := pair(c, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
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
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return measure{n: len(lat), elapsed: time.Since(start), lat: lat}, firstErr
}
