package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/parleyhq/parley/raftstore"
)

func init() {
	register("lease",
		command{"list", "list held leases (and VM leases that need reconciling)", (*cli).leaseList},
		command{"acquire", "take a lease and print its fencing token", (*cli).leaseAcquire},
		command{"release", "release a lease held under a token", (*cli).leaseRelease},
	)
	register("cluster",
		command{"status", "members, leader, term, commit and applied index", (*cli).clusterStatus},
		command{"join", "add a member: join ID RAFT_ADDR HTTP_ADDR", (*cli).clusterJoin},
		command{"remove", "remove a member: remove ID", (*cli).clusterRemove},
		command{"transfer", "transfer leadership: transfer [ID]", (*cli).clusterTransfer},
		command{"snapshot", "download a backup of the whole state to FILE", (*cli).clusterSnapshot},
		command{"restore", "replace the whole state with the backup in FILE", (*cli).clusterRestore},
	)
	topLevel["journal"] = command{"journal", "print negotiation and migration events", (*cli).journal}
}

func (c *cli) leaseList(ctx context.Context, args []string) int {
	fs := c.newFlags("lease list", "lease list [--prefix P] [--store ADDRS] [-o table|json]")
	sf := addStoreFlags(fs)
	prefix := fs.String("prefix", "", "only keys with this prefix")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0)
	if !ok {
		return code
	}
	ls, err := cl.Leases(ctx, *prefix, false)
	if err != nil {
		return c.storeErr("lease list", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, ls)
		return exitOK
	}
	t := newTable(c.stdout, "KEY", "HOLDER", "TOKEN", "STATE", "EXPIRES IN", "ATTRS")
	for _, l := range ls {
		left := time.Until(time.Unix(0, l.Expiry)).Round(time.Second)
		if l.State != "held" {
			left = 0
		}
		attrs := ""
		for k, v := range l.Attrs {
			attrs += k + "=" + v + " "
		}
		t.row(l.Key, l.Holder, strconv.FormatUint(l.Token, 10), l.State, left.String(), attrs)
	}
	t.flush()
	return exitOK
}

func (c *cli) leaseAcquire(ctx context.Context, args []string) int {
	fs := c.newFlags("lease acquire", "lease acquire KEY --holder H --ttl D [--store ADDRS]")
	sf := addStoreFlags(fs)
	holder := fs.String("holder", "", "who holds the lease")
	ttl := fs.Duration("ttl", 30*time.Second, "how long the lease lasts unless renewed")
	pos, code, ok := c.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *holder == "" || *ttl <= 0 {
		fmt.Fprintln(c.stderr, "parley lease acquire: --holder and a positive --ttl are required")
		return exitUsage
	}
	cl, code, ok := c.storeClient(sf)
	if !ok {
		return code
	}
	g, err := cl.Acquire(ctx, raftstore.AcquireRequest{Holder: *holder, TTLMillis: ttl.Milliseconds(), Items: []raftstore.AcquireItem{{Key: pos[0]}}})
	if err != nil {
		return c.storeErr("lease acquire", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, g)
		return exitOK
	}
	fmt.Fprintln(c.stdout, g.Token)
	if len(g.NeedsReconcile) > 0 {
		fmt.Fprintf(c.stderr, "parley lease acquire: %s expired under its previous holder: check the VM's real state first\n", pos[0])
	}
	return exitOK
}

func (c *cli) leaseRelease(ctx context.Context, args []string) int {
	fs := c.newFlags("lease release", "lease release KEY --holder H --token T [--store ADDRS]")
	sf := addStoreFlags(fs)
	holder := fs.String("holder", "", "who holds the lease")
	token := fs.Uint64("token", 0, "the fencing token of the grant")
	pos, code, ok := c.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *holder == "" || *token == 0 {
		fmt.Fprintln(c.stderr, "parley lease release: --holder and --token are required")
		return exitUsage
	}
	cl, code, ok := c.storeClient(sf)
	if !ok {
		return code
	}
	if err := cl.Release(ctx, raftstore.RenewRequest{Keys: []string{pos[0]}, Holder: *holder, Token: *token}); err != nil {
		return c.storeErr("lease release", err)
	}
	fmt.Fprintf(c.stdout, "released %s\n", pos[0])
	return exitOK
}

func (c *cli) printStatus(sf storeFlags, st *raftstore.Status) int {
	if *sf.output == "json" {
		writeJSON(c.stdout, st)
		return exitOK
	}
	fmt.Fprintf(c.stdout, "leader %s (%s), term %d, commit %d, applied %d (as seen by %s, last contact %s)\n\n",
		st.Leader, st.LeaderAddr, st.Term, st.CommitIndex, st.Applied, st.ID, st.LastContact)
	t := newTable(c.stdout, "ID", "RAFT", "HTTP", "SUFFRAGE", "LEADER")
	for _, m := range st.Members {
		mark := ""
		if m.Leader {
			mark = "*"
		}
		t.row(m.ID, m.RaftAddr, m.HTTPAddr, m.Suffrage, mark)
	}
	t.flush()
	return exitOK
}

func (c *cli) clusterStatus(ctx context.Context, args []string) int {
	fs := c.newFlags("cluster status", "cluster status [--store ADDRS] [-o table|json]")
	sf := addStoreFlags(fs)
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0)
	if !ok {
		return code
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return c.storeErr("cluster status", err)
	}
	return c.printStatus(sf, st)
}

func (c *cli) clusterJoin(ctx context.Context, args []string) int {
	fs := c.newFlags("cluster join", "cluster join ID RAFT_ADDR HTTP_ADDR [--store ADDRS]")
	sf := addStoreFlags(fs)
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 3, 3)
	if !ok {
		return code
	}
	st, err := cl.Join(ctx, pos[0], pos[1], pos[2])
	if err != nil {
		return c.storeErr("cluster join", err)
	}
	return c.printStatus(sf, st)
}

func (c *cli) clusterRemove(ctx context.Context, args []string) int {
	fs := c.newFlags("cluster remove", "cluster remove ID [--store ADDRS]")
	sf := addStoreFlags(fs)
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1)
	if !ok {
		return code
	}
	st, err := cl.Remove(ctx, pos[0])
	if err != nil {
		return c.storeErr("cluster remove", err)
	}
	return c.printStatus(sf, st)
}

func (c *cli) clusterTransfer(ctx context.Context, args []string) int {
	fs := c.newFlags("cluster transfer", "cluster transfer [ID] [--store ADDRS]")
	sf := addStoreFlags(fs)
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 0, 1)
	if !ok {
		return code
	}
	id := ""
	if len(pos) == 1 {
		id = pos[0]
	}
	st, err := cl.Transfer(ctx, id)
	if err != nil {
		return c.storeErr("cluster transfer", err)
	}
	return c.printStatus(sf, st)
}

func (c *cli) clusterSnapshot(ctx context.Context, args []string) int {
	fs := c.newFlags("cluster snapshot", "cluster snapshot FILE [--store ADDRS]")
	sf := addStoreFlags(fs)
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1)
	if !ok {
		return code
	}
	b, err := cl.Snapshot(ctx)
	if err != nil {
		return c.storeErr("cluster snapshot", err)
	}
	if err := writeFileAtomic(pos[0], b); err != nil {
		fmt.Fprintln(c.stderr, "parley cluster snapshot:", err)
		return exitFailed
	}
	fmt.Fprintf(c.stdout, "wrote %d bytes to %s\n", len(b), pos[0])
	return exitOK
}

func (c *cli) clusterRestore(ctx context.Context, args []string) int {
	fs := c.newFlags("cluster restore", "cluster restore FILE [--store ADDRS]")
	sf := addStoreFlags(fs)
	pos, code, ok := c.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintln(c.stderr, "parley cluster restore:", err)
		return exitUsage
	}
	cl, code, ok := c.storeClient(sf)
	if !ok {
		return code
	}
	if err := cl.Restore(ctx, b); err != nil {
		return c.storeErr("cluster restore", err)
	}
	fmt.Fprintf(c.stdout, "restored the store from %s\n", pos[0])
	return exitOK
}

func (c *cli) journal(ctx context.Context, args []string) int {
	fs := c.newFlags("journal", "journal [--since N] [--limit N] [--store ADDRS] [-o table|json]")
	sf := addStoreFlags(fs)
	since := fs.Uint64("since", 0, "entries after this index")
	limit := fs.Int("limit", 1000, "at most this many entries")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0)
	if !ok {
		return code
	}
	es, err := cl.Journal(ctx, *since, *limit)
	if err != nil {
		return c.storeErr("journal", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, es)
		return exitOK
	}
	t := newTable(c.stdout, "INDEX", "TIME", "KIND", "INTERACTION", "POLICY", "VM", "FROM", "TO", "OUTCOME", "MS", "REASON")
	for _, e := range es {
		pol := ""
		if e.Policy != "" {
			pol = fmt.Sprintf("%s@v%d", e.Policy, e.Version)
		}
		t.row(strconv.FormatUint(e.Index, 10), fmtTime(e.Time), e.Kind, e.Interaction, pol, e.VM, e.From, e.To, e.Outcome, strconv.FormatInt(e.DurationMS, 10), e.Reason)
	}
	t.flush()
	return exitOK
}
