package main

import (
	"context"
	"errors"
	"fmt"
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
}

func (c *cli) leaseList(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("lease list", "lease list [--prefix P] [--store ADDRS] [-o table|json]")
	prefix := fs.String("prefix", "", "only keys with this prefix")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0, nil)
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
	fs, sf := c.storeCmd("lease acquire", "lease acquire KEY --holder H --ttl D [--store ADDRS]")
	holder := fs.String("holder", "", "who holds the lease")
	ttl := fs.Duration("ttl", 30*time.Second, "how long the lease lasts unless renewed")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, func([]string) error {
		if *holder == "" || *ttl <= 0 {
			return errors.New("--holder and a positive --ttl are required")
		}
		return nil
	})
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
	fs, sf := c.storeCmd("lease release", "lease release KEY --holder H --token T [--store ADDRS]")
	holder := fs.String("holder", "", "who holds the lease")
	token := fs.Uint64("token", 0, "the fencing token of the grant")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, func([]string) error {
		if *holder == "" || *token == 0 {
			return errors.New("--holder and --token are required")
		}
		return nil
	})
	if !ok {
		return code
	}
	if err := cl.Release(ctx, raftstore.RenewRequest{Keys: []string{pos[0]}, Holder: *holder, Token: *token}); err != nil {
		return c.storeErr("lease release", err)
	}
	fmt.Fprintf(c.stdout, "released %s\n", pos[0])
	return exitOK
}
