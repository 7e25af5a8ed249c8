package main

import (
	"context"
	"fmt"
	"strconv"
)

func init() {
	topLevel["journal"] = command{"journal", "print negotiation and migration events", (*cli).journal}
}

func (c *cli) journal(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("journal", "journal [--since N] [--limit N] [--store ADDRS] [-o table|json]")
	since := fs.Uint64("since", 0, "entries after this index")
	limit := fs.Int("limit", 1000, "at most this many entries")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0, nil)
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
