package vsphere

import (
	"context"
	"sync"
	"time"
)

// Watched is a Client whose Inventory comes from one WaitForUpdatesEx
// filter kept open (Watch): vCenter sends what changed, with a version,
// and no container view is built and no inventory retrieved at every
// tick. When the watch fails (a lost connection, an expired session) the
// client reads the inventory directly, as Client.Inventory does (logging
// in again when it must), until the watch is back with a whole inventory.
type Watched struct {
	*Client
	mu      sync.Mutex
	inv     *Inventory
	healthy bool
	done    chan struct{}
}

// watchRetry bounds the wait before a failed watch is opened again.
const watchRetry = 5 * time.Second

// NewWatched starts watching; it stops when ctx ends.
func NewWatched(ctx context.Context, c *Client) *Watched {
	w := &Watched{Client: c, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *Watched) run(ctx context.Context) {
	defer close(w.done)
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := w.Client.Watch(ctx, func(inv *Inventory) {
			w.mu.Lock()
			w.inv, w.healthy = inv, true
			w.mu.Unlock()
		})
		w.mu.Lock()
		w.healthy = false
		w.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		w.Client.log.Warn().Err(err).Msg("vCenter watch ended; reading the inventory directly until it is back")
		// a direct read logs in again when the session expired
		if _, err := w.Client.Inventory(ctx); err == nil && time.Since(started) > time.Minute {
			backoff = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchRetry)
	}
}

// Inventory is the watched inventory, or a direct read while the watch is
// not delivering.
func (w *Watched) Inventory(ctx context.Context) (*Inventory, error) {
	w.mu.Lock()
	inv, ok := w.inv, w.healthy
	w.mu.Unlock()
	if ok && inv != nil {
		return inv, nil
	}
	return w.Client.Inventory(ctx)
}

// Done is closed when the watch has stopped for good (its ctx ended).
func (w *Watched) Done() <-chan struct{} { return w.done }
