package worker

import (
	"math/rand/v2"
	"sync"
	"time"
)

// After a relocation fails (vCenter's fault, or a stall), the same VM is
// not sent to the same target again for a while, and a target whose
// relocations keep failing is offered nothing for a while: the backoff
// doubles from relocBackoffBase with each failure in a row, with jitter,
// up to relocBackoffMax. A success clears it.
const (
	relocBackoffBase = 30 * time.Second
	relocBackoffMax  = 15 * time.Minute
	// targetFailures is how many failures in a row, of any VM, take a
	// target out of the peers offered to.
	targetFailures = 3
)

type backoffEntry struct {
	failures int
	until    time.Time
}

// relocBackoff is the worker's record of relocations that failed, by VM
// and target host, and by target host. It has its own lock.
type relocBackoff struct {
	mu      sync.Mutex
	pairs   map[[2]string]backoffEntry // (vm, target host)
	targets map[string]backoffEntry    // target host
	rng     *rand.Rand
}

func (b *relocBackoff) delay(n int) time.Duration {
	d := min(relocBackoffBase<<min(n-1, 10), relocBackoffMax)
	if b.rng == nil {
		b.rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	}
	return time.Duration(float64(d) * (0.8 + 0.4*b.rng.Float64()))
}

// failed records a failed relocation of vm to target, and returns how
// long that pair now waits.
func (b *relocBackoff) failed(vm, target string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pairs == nil {
		b.pairs, b.targets = map[[2]string]backoffEntry{}, map[string]backoffEntry{}
	}
	k := [2]string{vm, target}
	p := b.pairs[k]
	p.failures++
	d := b.delay(p.failures)
	p.until = now.Add(d)
	b.pairs[k] = p
	t := b.targets[target]
	t.failures++
	if t.failures >= targetFailures {
		t.until = now.Add(b.delay(t.failures - targetFailures + 1))
	}
	b.targets[target] = t
	if len(b.pairs) > 4096 { // bounded: forget those whose wait is over
		for k, e := range b.pairs {
			if now.After(e.until) {
				delete(b.pairs, k)
			}
		}
	}
	return d
}

// succeeded clears what was held against vm and target.
func (b *relocBackoff) succeeded(vm, target string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pairs, [2]string{vm, target})
	delete(b.targets, target)
}

// waiting says until when vm may not go to target (zero: it may).
func (b *relocBackoff) waiting(vm, target string, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.pairs[[2]string{vm, target}]; ok && now.Before(e.until) {
		return e.until
	}
	return time.Time{}
}

// targetResting says whether target's relocations failed so often of late
// that it is offered nothing now.
func (b *relocBackoff) targetResting(target string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.targets[target]
	return ok && e.failures >= targetFailures && now.Before(e.until)
}
