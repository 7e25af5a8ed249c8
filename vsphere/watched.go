package vsphere

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
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
func (c *Client) WatchHost(ctx context.Context, hostID, clusterID string, fn func(*Inventory), alive ...func(time.Time)) error {
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
	}, alive...)
}

// watch keeps one filter open and calls fn with the state after each
// batch of updates; alive, when set, is called each time vCenter answers
// a wait (with news or without), which is how fresh the state is known to
// be. Each wait returns after watchMaxWait seconds without news, and a wait
// with no answer watchGrace after that ends the watch (a vCenter that
// hangs is noticed, not waited on forever). The version is kept from wait
// to wait, so vCenter sends only what changed.
func (c *Client) watch(ctx context.Context, vc *vim25.Client, spec types.PropertyFilterSpec, seen func(types.ObjectUpdate), fn func(*Inventory), alive ...func(time.Time)) error {
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	pc, err := property.DefaultCollector(vc).Create(cctx)
	if err == nil {
		_, err = pc.CreateFilter(cctx, types.CreateFilter{Spec: spec, PartialUpdates: false})
		if err != nil {
			pc.Destroy(context.WithoutCancel(cctx))
		}
	}
	cancel()
	if err != nil {
		return fmt.Errorf("vsphere: watch: %w", classify(err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CallTimeout)
		pc.Destroy(dctx)
		cancel()
	}()
	st := newState()
	req := types.WaitForUpdatesEx{This: pc.Reference(), Options: &types.WaitOptions{MaxWaitSeconds: types.NewInt32(watchMaxWait)}}
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(watchMaxWait)*time.Second+watchGrace)
		res, werr := methods.WaitForUpdatesEx(wctx, vc, &req)
		cancel()
		if werr != nil {
			err = werr
			break
		}
		for _, a := range alive {
			a(time.Now())
		}
		set := res.Returnval
		if set == nil {
			continue // no news within the wait
		}
		req.Version = set.Version
		for _, fs := range set.FilterSet {
			for _, u := range fs.ObjectSet {
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
		}
		fn(st.inventory())
	}
	if ctx.Err() != nil {
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
	// answered is when vCenter last answered the watch (its waits end at
	// least every watchMaxWait): how fresh the watched host is known to be
	answered time.Time
	down     bool            // the last attempt to read or watch failed (logged once per change)
	kick     chan struct{}   // a direct read succeeded: vCenter is back, try the watch now
	peers    map[string]Host // by name: the peers' hosts as their workers report them (SetPeers)
	peersAt  time.Time
	done     chan struct{}
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

// watchMaxWait is how long, in seconds, one WaitForUpdatesEx waits for
// news: vCenter answers at least this often, which bounds how old a
// watched view can be while vCenter is well (a worker's max_view_age).
var watchMaxWait int32 = 10

// watchGrace is how long past watchMaxWait a wait may go unanswered
// before the watch gives up on it.
const watchGrace = 5 * time.Second

// CallTimeout bounds one vCenter call made without a deadline of the
// caller's (a watch's set-up and tear-down, a whole read by the watcher).
const CallTimeout = 20 * time.Second

// watchRetryFirst and watchRetry bound the wait before a failed watch is
// opened again (doubling from the first to the second); a direct read that
// finds vCenter back cuts it short.
const (
	watchRetryFirst = 30 * time.Second
	watchRetry      = time.Minute
)

// NewWatched starts watching host (a name); it stops when ctx ends.
// fullEvery <= 0 means DefaultFullEvery.
func NewWatched(ctx context.Context, c *Client, host string, fullEvery time.Duration) *Watched {
	if fullEvery <= 0 {
		fullEvery = DefaultFullEvery
	}
	w := &Watched{Client: c, host: host, fullEvery: fullEvery, done: make(chan struct{}), kick: make(chan struct{}, 1)}
	go w.run(ctx)
	return w
}

func (w *Watched) run(ctx context.Context) {
	defer close(w.done)
	backoff := watchRetryFirst
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, CallTimeout)
		_, err := w.readFull(rctx) // where the host is, and its cluster
		cancel()
		if err != nil {
			w.noteDown(err, "vCenter inventory unreadable; watching later")
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
			}, func(at time.Time) {
				w.mu.Lock()
				w.answered = at
				wasDown := w.down
				w.down = false
				w.mu.Unlock()
				if wasDown {
					w.Client.log.Info().Str("host", w.host).Msg("vCenter watch answering again")
				}
			})
			w.mu.Lock()
			w.healthy = false
			w.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			w.noteDown(err, "vCenter watch ended; reading the inventory directly until it is back")
			if time.Since(started) > time.Minute {
				backoff = watchRetryFirst
			}
		}
		// While vCenter does not answer, the worker's own reads (backed off
		// in turn) find out when it is back: this loop then tries again at
		// once (kick), and otherwise only after its own, longer backoff, so
		// that an outage does not cost vCenter two readers' retries.
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchRetry)
	}
}

// noteDown logs the watch's failure once, when it starts failing, and at
// debug level after that: a vCenter that is away for half an hour does not
// fill the log (the worker says so once per change, in its journal too).
func (w *Watched) noteDown(err error, msg string) {
	w.mu.Lock()
	first := !w.down
	w.down = true
	w.mu.Unlock()
	ev := w.Client.log.Debug()
	if first {
		ev = w.Client.log.Warn()
	}
	ev.Err(err).Str("host", w.host).Msg(msg)
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
	full, own, ok, answered := w.full, w.own, w.healthy, w.answered
	w.mu.Unlock()
	if !ok || own == nil {
		inv, err := w.readFull(ctx)
		if err == nil {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
		return inv, err
	}
	if full == nil || !fresh {
		var err error
		if full, err = w.readFull(ctx); err != nil {
			return nil, err
		}
	}
	inv := w.merge(full, own)
	inv.ReadAt = answered // the watched host is as fresh as vCenter's last answer
	return inv, nil
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
