package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
)

func init() {
	register("policy",
		command{"list", "list policies with their active and latest versions", (*cli).policyList},
		command{"show", "print a policy's active (or a given) version", (*cli).policyShow},
		command{"history", "list a policy's versions and activations", (*cli).policyHistory},
		command{"push", "validate and push a new version (active unless --no-activate)", (*cli).policyPush},
		command{"validate", "check a policy file with the store's checker, writing nothing", (*cli).policyValidate},
		command{"diff", "unified diff between two versions", (*cli).policyDiff},
		command{"activate", "make a version active", (*cli).policyActivate},
		command{"rollback", "go back to the previously active version", (*cli).policyRollback},
		command{"params", "list the parameters a policy may set with param(Name, Value)", (*cli).policyParams},
	)
}

func whoami() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

func (c *cli) policyList(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy list", "policy list [--store ADDRS] [-o table|json]")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0, nil)
	if !ok {
		return code
	}
	list, err := cl.ListPolicies(ctx)
	if err != nil {
		return c.storeErr("policy list", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, list)
		return exitOK
	}
	t := newTable(c.stdout, "NAME", "ACTIVE", "LATEST", "SHA256", "MODIFIED")
	for _, p := range list {
		sha := p.SHA256
		if len(sha) > 12 {
			sha = sha[:12]
		}
		t.row(p.Name, strconv.Itoa(p.Active), strconv.Itoa(p.Latest), sha, fmtTime(p.Modified))
	}
	t.flush()
	return exitOK
}

func (c *cli) policyShow(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy show", "policy show NAME [--version N] [--store ADDRS] [-o table|json]")
	version := fs.Int("version", 0, "show this version instead of the active one")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, nil)
	if !ok {
		return code
	}
	var v *raftstore.PolicyVersion
	var err error
	if *version > 0 {
		v, err = cl.PolicyVersion(ctx, pos[0], *version)
	} else {
		v, err = cl.ActivePolicy(ctx, pos[0], false)
	}
	if err != nil {
		return c.storeErr("policy show", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, v)
		return exitOK
	}
	fmt.Fprintf(c.stdout, "// %s version %d, sha256 %s, by %s at %s: %s\n", pos[0], v.Version, v.SHA256, v.Author, fmtTime(v.Time), v.Message)
	fmt.Fprint(c.stdout, v.Text)
	return exitOK
}

func (c *cli) policyHistory(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy history", "policy history NAME [--store ADDRS] [-o table|json]")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, nil)
	if !ok {
		return code
	}
	h, err := cl.History(ctx, pos[0])
	if err != nil {
		return c.storeErr("policy history", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, h)
		return exitOK
	}
	t := newTable(c.stdout, "VERSION", "ACTIVE", "SHA256", "AUTHOR", "TIME", "MESSAGE")
	for _, v := range h.Versions {
		mark := ""
		if v.Version == h.Active {
			mark = "*"
		}
		t.row(strconv.Itoa(v.Version), mark, v.SHA256[:12], v.Author, fmtTime(v.Time), v.Message)
	}
	t.flush()
	fmt.Fprintln(c.stdout)
	t = newTable(c.stdout, "ACTIVATED", "FROM", "TO", "WHO", "REASON")
	for _, a := range h.Activations {
		t.row(fmtTime(a.Time), strconv.Itoa(a.From), strconv.Itoa(a.To), a.Who, a.Reason)
	}
	t.flush()
	return exitOK
}

func (c *cli) policyPush(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy push", "policy push NAME FILE [-m MSG] [--author A] [--expect-version N] [--no-activate] [--no-verify] [--simulate [--inventory FILE]]")
	simulate := fs.Bool("simulate", false, "first print what the pushed text would do on a copy of the datacentre (policy simulate)")
	invFile := fs.String("inventory", "", "with --simulate: a datacentre recorded with 'parley inventory export' (default: a generated one)")
	msg := fs.String("m", "", "message recorded with the version")
	author := fs.String("author", whoami(), "author recorded with the version")
	expect := fs.Int("expect-version", -1, "refuse the push unless the latest version is N (compare-and-set)")
	noActivate := fs.Bool("no-activate", false, "store the version without making it active")
	noVerify := fs.Bool("no-verify", false, "push without first verifying the policy (parley lcc verify) among 1 initiator and 3 responders")
	var text []byte
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 2, 2, func(pos []string) (err error) { text, err = os.ReadFile(pos[1]); return err })
	if !ok {
		return code
	}
	// Check locally first, so that errors name the file.
	if diags := policyValidator(pos[1], text); diags.HasErrors() {
		for _, e := range diags.Errors() {
			fmt.Fprintln(c.stderr, e.Error())
		}
		fmt.Fprintf(c.stderr, "parley policy push: %s has errors; nothing was pushed\n", pos[1])
		return exitFailed
	}
	if !*noVerify {
		rep, err := policies.Verify(ctx, pos[1], text, policies.PushResponders)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley policy push: verify:", err)
			return exitFailed
		}
		if rep.Errors() > 0 {
			rep.WriteText(c.stderr, pos[1])
			fmt.Fprintf(c.stderr, "parley policy push: %s fails verification with the fleet's domain and properties; nothing was pushed (parley lcc verify %s shows it; --no-verify pushes anyway)\n", pos[1], pos[1])
			return exitFailed
		}
	}
	if *simulate {
		res, err := c.simulateOn(ctx, pos[0], string(text), *invFile)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley policy push --simulate:", err)
			return exitUsage
		}
		c.printSimulation(res)
		fmt.Fprintln(c.stdout)
	}
	req := raftstore.PushRequest{Name: pos[0], Text: string(text), Author: *author, Message: *msg, NoActivate: *noActivate}
	if *expect >= 0 {
		req.ExpectVersion = expect
	}
	res, err := cl.Push(ctx, req)
	if err != nil {
		return c.storeErr("policy push", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, res)
		return exitOK
	}
	switch {
	case res.Unchanged:
		fmt.Fprintf(c.stdout, "%s: unchanged, identical to the active version %d\n", res.Name, res.Version)
	case res.Active == res.Version:
		fmt.Fprintf(c.stdout, "%s: pushed version %d, now active\n", res.Name, res.Version)
	default:
		fmt.Fprintf(c.stdout, "%s: pushed version %d; version %d stays active\n", res.Name, res.Version, res.Active)
	}
	return exitOK
}

func (c *cli) policyValidate(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy validate", "policy validate NAME FILE [--store ADDRS]")
	var text []byte
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 2, 2, func(pos []string) (err error) { text, err = os.ReadFile(pos[1]); return err })
	if !ok {
		return code
	}
	res, err := cl.Validate(ctx, pos[0], string(text))
	if err != nil {
		return c.storeErr("policy validate", err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, res)
	} else {
		for _, d := range res.Diagnostics {
			fmt.Fprintf(c.stdout, "%s:%d:%d: %s: %s\n", pos[1], d.Line, d.Col, d.Severity, d.Message)
		}
	}
	if !res.Valid {
		return exitFailed
	}
	return exitOK
}

func (c *cli) policyDiff(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy diff", "policy diff NAME V1 V2 [--simulate [--inventory FILE]] [--store ADDRS]")
	simulate := fs.Bool("simulate", false, "also show how the two versions would differ on one copy of the datacentre")
	invFile := fs.String("inventory", "", "with --simulate: a datacentre recorded with 'parley inventory export' (default: a generated one)")
	var v1, v2 int
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 3, 3, func(pos []string) error {
		var err1, err2 error
		v1, err1 = strconv.Atoi(pos[1])
		v2, err2 = strconv.Atoi(pos[2])
		if err1 != nil || err2 != nil {
			return errors.New("versions must be numbers")
		}
		return nil
	})
	if !ok {
		return code
	}
	d, err := cl.Diff(ctx, pos[0], v1, v2)
	if err != nil {
		return c.storeErr("policy diff", err)
	}
	fmt.Fprint(c.stdout, d)
	if *simulate {
		return c.diffSimulations(ctx, cl, pos[0], v1, v2, *invFile)
	}
	return exitOK
}

func (c *cli) policyActivate(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy activate", "policy activate NAME VERSION [--store ADDRS]")
	var v int
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 2, 2, func(pos []string) (err error) {
		if v, err = strconv.Atoi(pos[1]); err != nil {
			return errors.New("version must be a number")
		}
		return nil
	})
	if !ok {
		return code
	}
	res, err := cl.Activate(ctx, pos[0], v, whoami())
	if err != nil {
		return c.storeErr("policy activate", err)
	}
	return c.printActivation(sf, res)
}

func (c *cli) policyRollback(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("policy rollback", "policy rollback NAME [--store ADDRS]")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, nil)
	if !ok {
		return code
	}
	res, err := cl.Rollback(ctx, pos[0], whoami())
	if err != nil {
		return c.storeErr("policy rollback", err)
	}
	return c.printActivation(sf, res)
}

func (c *cli) printActivation(sf storeFlags, res *raftstore.ActivateResult) int {
	if *sf.output == "json" {
		writeJSON(c.stdout, res)
		return exitOK
	}
	if res.Unchanged {
		fmt.Fprintf(c.stdout, "%s: version %d was already active\n", res.Name, res.Active)
	} else {
		fmt.Fprintf(c.stdout, "%s: version %d active (was %d)\n", res.Name, res.Active, res.From)
	}
	return exitOK
}
