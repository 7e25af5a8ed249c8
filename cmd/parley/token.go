package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/pki"
)

func init() {
	register("token",
		command{"create", "create a token with a role; prints its secret once, as the last line", (*cli).tokenCreate},
		command{"list", "list tokens (names and roles, never secrets)", (*cli).tokenList},
		command{"revoke", "revoke a token: its secret stops working at once", (*cli).tokenRevoke},
	)
}

func (c *cli) tokenCreate(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("token create", "token create --role admin|operator|worker|reader --name NAME")
	role := fs.String("role", "", "admin, operator, worker or reader")
	name := fs.String("name", "", "the token's name; a worker's token is named as the worker (and its certificate)")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0, func([]string) error {
		if err := pki.ValidName(*name); err != nil {
			return fmt.Errorf("--name: %v", err)
		}
		for _, r := range raftstore.Roles {
			if *role == r {
				return nil
			}
		}
		return fmt.Errorf("--role must be one of %s", strings.Join(raftstore.Roles, ", "))
	})
	if !ok {
		return code
	}
	secret := raftstore.NewToken() // made here, so that a retried create is the same token
	t, err := cl.CreateToken(ctx, *name, *role, secret)
	if err != nil {
		return c.storeErr("token create", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, raftstore.TokenCreated{Name: t.Name, Role: t.Role, Token: secret})
		return exitOK
	}
	fmt.Fprintf(c.stdout, "created %s token %q; its secret is shown only now:\n%s\n", t.Role, t.Name, secret)
	return exitOK
}

func (c *cli) tokenList(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("token list", "token list [-o table|json]")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0, nil)
	if !ok {
		return code
	}
	ts, err := cl.Tokens(ctx)
	if err != nil {
		return c.storeErr("token list", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, ts)
		return exitOK
	}
	tb := newTable(c.stdout, "NAME", "ROLE", "CREATED", "BY")
	for _, t := range ts {
		tb.row(t.Name, t.Role, fmtTime(t.Created), t.CreatedBy)
	}
	tb.flush()
	return exitOK
}

func (c *cli) tokenRevoke(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("token revoke", "token revoke NAME")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, nil)
	if !ok {
		return code
	}
	t, err := cl.RevokeToken(ctx, pos[0])
	if err != nil {
		return c.storeErr("token revoke", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, t)
		return exitOK
	}
	fmt.Fprintf(c.stdout, "revoked %s token %q\n", t.Role, t.Name)
	return exitOK
}
