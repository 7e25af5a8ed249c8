package worker

import (
	"context"
	"sync"
	"time"

	"github.com/parleyhq/parley/raftstore"
)

// leaseGuard tracks when the leases of a migration were last renewed, on
// this worker's monotonic clock, and whether they are to be counted lost.
// A renewal's time is taken before its request is sent, so the guard never
// believes a lease lives longer than the store does.
type leaseGuard struct {
	ttl time.Duration

	mu     sync.Mutex
	lastOK time.Time // the start of the last renewal that succeeded
	isLost bool
}

func newLeaseGuard(ttl time.Duration) *leaseGuard {
	return &leaseGuard{ttl: ttl, lastOK: time.Now()}
}

func (g *leaseGuard) renewedAt(t time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.isLost && t.After(g.lastOK) {
		g.lastOK = t
	}
}

func (g *leaseGuard) renewed() { g.renewedAt(time.Now()) }

func (g *leaseGuard) sinceRenewed() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Since(g.lastOK)
}

// expiring reports whether the leases are within a third of their TTL of
// expiring: time to give up the relocation. It then counts them lost.
func (g *leaseGuard) expiring() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.lastOK) >= g.ttl-g.ttl/3 {
		g.isLost = true
	}
	return g.isLost
}

func (g *leaseGuard) lost() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.isLost
}

// renewAll renews every lease of a migration; false if any renewal failed.
func (w *Worker) renewAll(ctx context.Context, ttl time.Duration, ls ...leaseRef) bool {
	ok := true
	for _, l := range ls {
		if l.token == 0 || len(l.keys) == 0 {
			continue
		}
		if _, err := w.store.Renew(ctx, raftstore.RenewRequest{Keys: l.keys, Holder: l.holder, Token: l.token, TTLMillis: ttl.Milliseconds()}); err != nil {
			if ctx.Err() == nil {
				w.log.Warn().Err(err).Strs("keys", l.keys).Uint64("token", l.token).Msg("renew lease")
			}
			ok = false
			w.mx.renewFailed.Inc()
		}
	}
	return ok
}

// keepLeases renews the leases every ttl/3 until ctx ends. When they are
// about to expire unrenewed it calls lost once and returns. Each renewal
// is bounded so that a store that does not answer cannot hold it past the
// point where the relocation must be cancelled.
func (w *Worker) keepLeases(ctx context.Context, g *leaseGuard, ttl time.Duration, lease, res leaseRef, lost func()) {
	every := max(ttl/3, 10*time.Millisecond)
	check := max(ttl/20, 10*time.Millisecond)
	next := time.Now().Add(every)
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if g.expiring() {
			lost()
			return
		}
		if time.Now().Before(next) {
			continue
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		ok := w.renewAll(rctx, ttl, lease, res)
		cancel()
		if ok {
			g.renewedAt(start)
			next = start.Add(every)
		} else {
			next = time.Now().Add(max(ttl/10, 100*time.Millisecond)) // try again soon
		}
	}
}

// journalLater appends an entry, and when the store cannot be reached
// keeps trying in the background for a while (a worker cut off from the
// store journals what it did once it reaches it again).
func (w *Worker) journalLater(ctx context.Context, e raftstore.JournalEntry) {
	w.mx.journaled(e)
	if err := w.store.AppendJournal(ctx, e); err == nil {
		return
	}
	go func() {
		backoff := time.Second
		deadline := time.Now().Add(10 * time.Minute)
		for time.Now().Before(deadline) {
			time.Sleep(backoff)
			jctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := w.store.AppendJournal(jctx, e)
			cancel()
			if err == nil {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
		}
		w.log.Warn().Str("interaction", e.Interaction).Str("vm", e.VM).Str("outcome", e.Outcome).Msg("journal entry lost: the store stayed out of reach")
	}()
}
