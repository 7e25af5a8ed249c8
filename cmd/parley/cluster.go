package main

import (
	"context"
	"fmt"
	"os"

	"github.com/parleyhq/parley/raftstore"
)

func init() {
	register("cluster",
		command{"status", "members, leader, term, commit and applied index", (*cli).clusterStatus},
		command{"join", "add a member: join ID RAFT_ADDR HTTP_ADDR", (*cli).clusterJoin},
		command{"remove", "remove a member: remove ID", (*cli).clusterRemove},
		command{"transfer", "transfer leadership: transfer [ID]", (*cli).clusterTransfer},
		command{"snapshot", "download a backup of the whole state to FILE", (*cli).clusterSnapshot},
		command{"restore", "replace the whole state with the backup in FILE", (*cli).clusterRestore},
	)
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
	fs, sf := c.storeCmd("cluster status", "cluster status [--store ADDRS] [-o table|json]")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0, nil)
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
	fs, sf := c.storeCmd("cluster join", "cluster join ID RAFT_ADDR HTTP_ADDR [--store ADDRS]")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 3, 3, nil)
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
	fs, sf := c.storeCmd("cluster remove", "cluster remove ID [--store ADDRS]")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, nil)
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
	fs, sf := c.storeCmd("cluster transfer", "cluster transfer [ID] [--store ADDRS]")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 0, 1, nil)
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
	fs, sf := c.storeCmd("cluster snapshot", "cluster snapshot FILE [--store ADDRS]")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, nil)
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
	fs, sf := c.storeCmd("cluster restore", "cluster restore FILE [--store ADDRS]")
	var b []byte
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, func(pos []string) (err error) { b, err = os.ReadFile(pos[0]); return err })
	if !ok {
		return code
	}
	if err := cl.Restore(ctx, b); err != nil {
		return c.storeErr("cluster restore", err)
	}
	fmt.Fprintf(c.stdout, "restored the store from %s\n", pos[0])
	return exitOK
}
