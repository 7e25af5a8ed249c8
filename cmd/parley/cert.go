package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/parleyhq/parley/raftstore/pki"
)

func init() {
	register("cert",
		command{"init", "make a cluster CA in DIR (ca.pem, ca-key.pem)", (*cli).certInit},
		command{"issue", "issue DIR/NAME.pem and DIR/NAME-key.pem, signed by DIR's CA", (*cli).certIssue},
		command{"ensure", "make DIR's CA and each NAME's certificate where missing (idempotent: a deployment's init step)", (*cli).certEnsure},
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

// certEnsure is cert init and cert issue made idempotent, for an init
// container run at every start of a deployment: the CA is made when DIR
// has none, and a certificate for each NAME that has none; what exists is
// kept (a rerun changes nothing, and never replaces the CA).
func (c *cli) certEnsure(_ context.Context, args []string) int {
	fs := c.newFlags("cert ensure", "cert ensure DIR NAME... [--host ADDR ...]")
	var hosts stringList
	fs.Var(&hosts, "host", "a DNS name or IP address every certificate made is valid for, besides its NAME (repeatable)")
	pos, code, ok := c.parse(fs, args, 2, -1)
	if !ok {
		return code
	}
	dir, names := pos[0], pos[1:]
	for _, name := range names {
		if err := pki.ValidName(name); err != nil {
			fmt.Fprintln(c.stderr, "parley cert ensure:", err)
			return exitUsage
		}
	}
	if _, err := os.Stat(filepath.Join(dir, pki.CAFile)); errors.Is(err, iofs.ErrNotExist) {
		if err := pki.InitCA(dir); err != nil {
			fmt.Fprintln(c.stderr, "parley cert ensure:", err)
			return exitFailed
		}
		fmt.Fprintf(c.stdout, "wrote %s/%s and %s/%s\n", dir, pki.CAFile, dir, pki.CAKeyFile)
	} else if err != nil {
		fmt.Fprintln(c.stderr, "parley cert ensure:", err)
		return exitFailed
	}
	for _, name := range names {
		if _, err := os.Stat(pki.CertFile(dir, name)); err == nil {
			if _, err := os.Stat(pki.KeyFile(dir, name)); err != nil {
				fmt.Fprintf(c.stderr, "parley cert ensure: %s exists without its key %s: remove it or issue it again with cert issue --force\n", pki.CertFile(dir, name), pki.KeyFile(dir, name))
				return exitFailed
			}
			continue
		}
		if err := pki.Issue(dir, name, hosts, false); err != nil {
			fmt.Fprintln(c.stderr, "parley cert ensure:", err)
			return exitFailed
		}
		fmt.Fprintf(c.stdout, "wrote %s and %s (common name %q)\n", pki.CertFile(dir, name), pki.KeyFile(dir, name), name)
	}
	return exitOK
}
