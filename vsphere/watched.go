package vsphere

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Watch calls fn with a fresh inventory every time hosts or VMs change
// (WaitForUpdatesEx over a container view), until ctx is cancelled. The
// first call carries the whole inventory. Cancel ctx with a cancel
// function: a deadline alone can leave the simulator's wait hanging.
func (c *Client) Watch(ctx context.Context, fn func(*Inventory)) error {
	vc := c.client()
	v, err := c.newView(ctx, vc)
	if err != nil {
		return fmt.Errorf("vsphere: watch: %w", classify(err))
	}
	defer v.Destroy(context.WithoutCancel(ctx))
	return c.watch(ctx, vc, filterSpec(v), nil, fn)
}

// WatchHost calls fn with the host, the VMs on it and its cluster every
// time one of them changes (WaitForUpdatesEx over a filter that starts
// at the host and follows its vm property, and the cluster), until ctx
// is cancelled: what vCenter sends grows with the host, not with the
// inventory. A VM that left the host is kept with the host vCenter last
// reported for it, or dropped when vCenter says it left the filter.
func (c *Client) WatchHost(ctx context.Context, hostID, clusterID string, fn func(*Inventory)) error {
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: hostRef(hostID), SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{
			Type: "HostSystem", Path: "vm"}}}},
		PropSet: []types.PropertySpec{{Type: "HostSystem", PathSet: append([]string{"vm"}, hostProps...)}, {Type: "VirtualMachine", PathSet: vmProps},
			{Type: "ClusterComputeResource", PathSet: clusterProps}},
	}
	if clusterID != "" {
		spec.ObjectSet = append(spec.ObjectSet, types.ObjectSpec{Obj: types.ManagedObjectReference{Type: "ClusterComputeResource", Value: clusterID}})
	}
	// the host's vm list says which VMs are on it: one that left is
	// dropped even where vCenter keeps sending its updates
	var on map[string]bool
	seen := func(u types.ObjectUpdate) {
		if u.Obj.Type != "HostSystem" || u.Obj.Value != hostID {
			return
		}
		for _, ch := range u.ChangeSet {
			if ch.Name != "vm" {
				continue
			}
			on = map[string]bool{}
			if refs, ok := ch.Val.(types.ArrayOfManagedObjectReference); ok {
				for _, r := range refs.ManagedObjectReference {
					on[r.Value] = true
				}
			}
		}
	}
	return c.watch(ctx, c.client(), spec, seen, func(inv *Inventory) {
		if on != nil {
			kept := inv.VMs[:0]
			for _, v := range inv.VMs {
				if on[v.ID] || v.Host != hostID {
					kept = append(kept, v)
				}
			}
			inv.VMs = kept
		}
		fn(inv)
	})
}

// watch keeps one filter open and calls fn with the state after each
// batch of updates.
func (c *Client) watch(ctx context.Context, vc *vim25.Client, spec types.PropertyFilterSpec, seen func(types.ObjectUpdate), fn func(*Inventory)) error {
	pc, err := property.DefaultCollector(vc).Create(ctx)
	if err != nil {
		return fmt.Errorf("vsphere: watch: %w", classify(err))
	}
	defer pc.Destroy(context.WithoutCancel(ctx))
	if _, err := pc.CreateFilter(ctx, types.CreateFilter{Spec: spec, PartialUpdates: false}); err != nil {
		return fmt.Errorf("vsphere: watch: %w", classify(err))
	}
	st := newState()
	onUpdates := func(updates []types.ObjectUpdate) bool {
		for _, u := range updates {
			if seen != nil {
				seen(u)
			}
			if u.Kind == types.ObjectUpdateKindLeave {
				st.remove(u.Obj)
				continue
			}
			var props []types.DynamicProperty
			for _, ch := range u.ChangeSet {
				props = append(props, types.DynamicProperty{Name: ch.Name, Val: ch.Val})
			}
			st.set(u.Obj, props)
		}
		fn(st.inventory())
		return false
	}
	// A wait returns after 30 s without news (so that a dead connection
	// is noticed); the filter stays, and the next wait starts over from
	// its whole content.
	for ctx.Err() == nil {
		if err = pc.WaitForUpdatesEx(ctx, &property.WaitOptions{Options: &types.WaitOptions{MaxWaitSeconds: types.NewInt32(watchMaxWait)}}, onUpdates); err != nil {
			break
		}
	}
	if err != nil && ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vsphere: watch: %w", classify(err))
	}
	return nil
}

// Watched is a Client for one host's worker whose Inventory costs vCenter
// what changes on that host, not the whole inventory at every tick. It
// keeps one WaitForUpdatesEx filter open on the host, the VMs on it and
// its cluster (WatchHost: loads, placements, maintenance, rules as they
// change), and reads the whole inventory (the peers' hosts and VMs) only
// every FullEvery, or, while the peers' workers report their hosts
// (SetPeers, through the store), only when it must. Inventory returns the whole read with the watched
// objects put in place. While the watch is down (a lost connection, an
// expired session) it reads directly, as Client.Inventory does, logging
// in again when it must, until the watch is back.
type Watched struct {
	*Client
	host      string // name
	fullEvery time.Duration

	mu      sync.Mutex
	hostID  string
	cluster string
	full    *Inventory // the last whole read
	fullAt  time.Time
	own     *Inventory // the watched host, its VMs and its cluster
	healthy bool
	peers   map[string]Host // by name: the peers' hosts as their workers report them (SetPeers)
	peersAt time.Time
	done    chan struct{}
}

// SetPeers gives the client the peers' hosts as their workers last
// reported them (through the store): their load, capacity, connection and
// maintenance replace the whole read's. While reports keep coming (within
// FullEvery of each other), the whole inventory is read only when it must
// be: at the start, when a VM left the watched host, when the watch was
// opened again, and when a peer reports a host the last whole read did
// not have. Hosts with no worker reporting keep what the last whole read
// said of them.
func (w *Watched) SetPeers(peers []Host, at time.Time) {
	m := make(map[string]Host, len(peers))
	for _, h := range peers {
		m[h.Name] = h
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.peers, w.peersAt = m, at
	if w.full != nil {
		for name := range m {
			if _, ok := w.full.Host(name); !ok {
				w.fullAt = time.Time{} // a host the whole read does not have: read again
			}
		}
	}
}

// DefaultFullEvery is how often a Watched client reads the whole inventory.
const DefaultFullEvery = 30 * time.Second

// watchMaxWait is how long, in seconds, one WaitForUpdatesEx waits for news.
var watchMaxWait int32 = 30

// watchRetry bounds the wait before a failed watch is opened again.
const watchRetry = 5 * time.Second

// NewWatched starts watching host (a name); it stops when ctx ends.
// fullEvery <= 0 means DefaultFullEvery.
func NewWatched(ctx context.Context, c *Client, host string, fullEvery time.Duration) *Watched {
	if fullEvery <= 0 {
		fullEvery = DefaultFullEvery
	}
	w := &Watched{Client: c, host: host, fullEvery: fullEvery, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *Watched) run(ctx context.Context) {
	defer close(w.done)
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		if _, err := w.readFull(ctx); err != nil { // where the host is, and its cluster
			w.Client.log.Warn().Err(err).Str("host", w.host).Msg("vCenter inventory unreadable; watching later")
		} else {
			w.mu.Lock()
			id, cluster := w.hostID, w.cluster
			w.mu.Unlock()
			started := time.Now()
			err = w.Client.WatchHost(ctx, id, cluster, func(inv *Inventory) {
				w.mu.Lock()
				defer w.mu.Unlock()
				if w.own != nil {
					for _, v := range w.own.VMsOn(id) {
						if _, ok := inv.VM(v.ID); !ok {
							w.fullAt = time.Time{} // a VM left: the next read says where it went
						}
					}
				}
				w.own, w.healthy = inv, true
			})
			w.mu.Lock()
			w.healthy = false
			w.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			w.Client.log.Warn().Err(err).Str("host", w.host).Msg("vCenter watch ended; reading the inventory directly until it is back")
			if time.Since(started) > time.Minute {
				backoff = 250 * time.Millisecond
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchRetry)
	}
}

// readFull reads the whole inventory and notes where the host is.
func (w *Watched) readFull(ctx context.Context) (*Inventory, error) {
	inv, err := w.Client.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	h, ok := inv.Host(w.host)
	if !ok {
		return nil, fmt.Errorf("vsphere: host %s is not in vCenter", w.host)
	}
	w.mu.Lock()
	w.full, w.fullAt, w.hostID, w.cluster = inv, time.Now(), h.ID, h.Cluster
	w.mu.Unlock()
	return inv, nil
}

// Inventory is the last whole read (again when it is older than
// FullEvery) with the watched host, VMs and cluster in place; a direct
// read while the watch is not delivering.
func (w *Watched) Inventory(ctx context.Context) (*Inventory, error) {
	w.mu.Lock()
	reported := !w.peersAt.IsZero() && time.Since(w.peersAt) < w.fullEvery
	fresh := !w.fullAt.IsZero() && (reported || time.Since(w.fullAt) < w.fullEvery)
	full, own, ok := w.full, w.own, w.healthy
	w.mu.Unlock()
	if !ok || own == nil {
		return w.readFull(ctx)
	}
	if full == nil || !fresh {
		var err error
		if full, err = w.readFull(ctx); err != nil {
			return nil, err
		}
	}
	return w.merge(full, own), nil
}

// merge puts the watched objects into the whole read: the host and its
// cluster replace theirs; every VM the watch knows is where it says; a VM
// the whole read placed on this host that the watch no longer knows has
// left it (the watch then asks for a whole read at the next call, which
// says where it went).
func (w *Watched) merge(full, own *Inventory) *Inventory {
	w.mu.Lock()
	hostID, peers := w.hostID, w.peers
	if time.Since(w.peersAt) >= w.fullEvery {
		peers = nil // reports stopped: the whole read is the fresher
	}
	w.mu.Unlock()
	out := &Inventory{Hosts: make([]Host, 0, len(full.Hosts)), Clusters: make([]Cluster, 0, len(full.Clusters)), VMs: make([]VM, 0, len(full.VMs))}
	for _, h := range full.Hosts {
		if o, ok := own.Host(h.ID); ok && h.ID == hostID {
			h = o
		} else if p, ok := peers[h.Name]; ok && h.ID != hostID {
			h.ConnectionState, h.InMaintenance = p.ConnectionState, p.InMaintenance
			h.CPUUsedMHz, h.CPUCapacityMHz, h.MemUsedMB, h.MemCapacityMB = p.CPUUsedMHz, p.CPUCapacityMHz, p.MemUsedMB, p.MemCapacityMB
		}
		out.Hosts = append(out.Hosts, h)
	}
	for _, c := range full.Clusters {
		for _, o := range own.Clusters {
			if o.ID == c.ID {
				c = o
			}
		}
		out.Clusters = append(out.Clusters, c)
	}
	known := make(map[string]bool, len(own.VMs))
	for _, v := range own.VMs {
		known[v.ID] = true
		out.VMs = append(out.VMs, v)
	}
	for _, v := range full.VMs {
		if !known[v.ID] && v.Host != hostID {
			out.VMs = append(out.VMs, v)
		}
	}
	sort.Slice(out.VMs, func(i, j int) bool { return out.VMs[i].Name < out.VMs[j].Name })
	return out
}

// Done is closed when the watch has stopped for good (its ctx ended).
func (w *Watched) Done() <-chan struct{} { return w.done }
