package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	fs, sf := c.storeCmd("token create", "token create --role admin|operator|worker|reader --name NAME [--secret-dir DIR]")
	role := fs.String("role", "", "admin, operator, worker or reader")
	name := fs.String("name", "", "the token's name; a worker's token is named as the worker (and its certificate); with --secret-dir, several names comma-separated")
	secretDir := fs.String("secret-dir", "", "write each secret to DIR/NAME.token (mode 0600) instead of printing it; a name whose file exists is created with that file's secret, and one the store already has is left as it is (idempotent: a deployment's init step)")
	var names []string
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0, func([]string) error {
		names = []string{*name}
		if *secretDir != "" {
			names = strings.Split(*name, ",")
		}
		for _, n := range names {
			if err := pki.ValidName(n); err != nil {
				return fmt.Errorf("--name: %v", err)
			}
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
	if *secretDir != "" {
		return c.tokenCreateInto(ctx, cl, *role, names, *secretDir)
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

// tokenCreateInto creates a token for each name with its secret kept in
// dir/NAME.token. The file is written (0600, never replaced) before the
// store is asked, so a create that fails or is retried uses the same
// secret; a token of that name the store already has counts as done.
func (c *cli) tokenCreateInto(ctx context.Context, cl *raftstore.Client, role string, names []string, dir string) int {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintln(c.stderr, "parley token create: --secret-dir:", err)
		return exitUsage
	}
	for _, n := range names {
		path := filepath.Join(dir, n+".token")
		secret, err := readSecret(path, "token file")
		if errors.Is(err, os.ErrNotExist) {
			secret = raftstore.NewToken()
			err = writeSecretFile(path, secret)
		}
		if err != nil {
			fmt.Fprintln(c.stderr, "parley token create:", err)
			return exitFailed
		}
		_, err = cl.CreateToken(ctx, n, role, secret)
		var ae *raftstore.Error
		switch {
		case errors.As(err, &ae) && ae.Code == raftstore.CodeConflict && ae.Field == "name":
			fmt.Fprintf(c.stdout, "%s token %q exists; kept (its secret in %s)\n", role, n, path)
		case err != nil:
			return c.storeErr("token create", err)
		default:
			fmt.Fprintf(c.stdout, "created %s token %q; its secret is in %s\n", role, n, path)
		}
	}
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
