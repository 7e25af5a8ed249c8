package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"

	"github.com/parleyhq/parley/raftstore/pki"
)

func init() {
	register("cert",
		command{"init", "make a cluster CA in DIR (ca.pem, ca-key.pem)", (*cli).certInit},
		command{"issue", "issue DIR/NAME.pem and DIR/NAME-key.pem, signed by DIR's CA", (*cli).certIssue},
	)
}

func (c *cli) certInit(_ context.Context, args []string) int {
	fs := c.newFlags("cert init", "cert init DIR")
	pos, code, ok := c.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if err := pki.InitCA(pos[0]); err != nil {
		fmt.Fprintln(c.stderr, "parley cert init:", err)
		return exitFailed
	}
	fmt.Fprintf(c.stdout, "wrote %s/%s and %s/%s (keep the key private: it signs every certificate of the cluster)\n", pos[0], pki.CAFile, pos[0], pki.CAKeyFile)
	return exitOK
}

func (c *cli) certIssue(_ context.Context, args []string) int {
	fs := c.newFlags("cert issue", "cert issue DIR NAME [--host ADDR ...] [--force]")
	var hosts stringList
	fs.Var(&hosts, "host", "a DNS name or IP address the certificate is valid for (repeatable)")
	force := fs.Bool("force", false, "replace an existing certificate (a rotation)")
	pos, code, ok := c.parse(fs, args, 2, 2)
	if !ok {
		return code
	}
	dir, name := pos[0], pos[1]
	if err := pki.ValidName(name); err != nil {
		fmt.Fprintln(c.stderr, "parley cert issue:", err)
		return exitUsage
	}
	if err := pki.Issue(dir, name, hosts, *force); err != nil {
		fmt.Fprintln(c.stderr, "parley cert issue:", err)
		if errors.Is(err, iofs.ErrNotExist) {
			return exitUsage
		}
		return exitFailed
	}
	fmt.Fprintf(c.stdout, "wrote %s and %s (common name %q)\n", pki.CertFile(dir, name), pki.KeyFile(dir, name), name)
	return exitOK
}
