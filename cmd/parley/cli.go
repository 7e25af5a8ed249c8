package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/rs/zerolog"
)

type cli struct {
	stdout, stderr io.Writer
	log            zerolog.Logger
}

type command struct {
	name    string
	summary string
	run     func(c *cli, ctx context.Context, args []string) int
}

// commands is filled by the files that define each noun.
var commands = map[string][]command{}

func register(noun string, cmds ...command) { commands[noun] = append(commands[noun], cmds...) }

// topLevel are commands that are a noun alone: parley store, parley demo.
var topLevel = map[string]command{}

func (c *cli) usage() {
	fmt.Fprintln(c.stderr, "usage: parley <command> [arguments]")
	fmt.Fprintln(c.stderr, "\ncommands:")
	var names []string
	for n := range topLevel {
		names = append(names, n)
	}
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if t, ok := topLevel[n]; ok {
			fmt.Fprintf(c.stderr, "  %-28s %s\n", n, t.summary)
			continue
		}
		for _, cmd := range commands[n] {
			fmt.Fprintf(c.stderr, "  %-28s %s\n", n+" "+cmd.name, cmd.summary)
		}
	}
	fmt.Fprintln(c.stderr, "\nRun 'parley <command> -h' for a command's flags.")
}

func (c *cli) dispatch(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		c.usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if t, ok := topLevel[args[0]]; ok {
		return t.run(c, ctx, args[1:])
	}
	cmds, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "parley: unknown command %q\n", args[0])
		c.usage()
		return exitUsage
	}
	if len(args) < 2 {
		fmt.Fprintf(c.stderr, "parley %s: missing subcommand\n", args[0])
		c.usage()
		return exitUsage
	}
	for _, cmd := range cmds {
		if cmd.name == args[1] {
			return cmd.run(c, ctx, args[2:])
		}
	}
	fmt.Fprintf(c.stderr, "parley %s: unknown subcommand %q\n", args[0], args[1])
	c.usage()
	return exitUsage
}

// parseFlags parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlags makes a flag set that reports errors to stderr.
func (c *cli) newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: parley %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and checks the number of positional arguments; on a
// problem it prints usage and returns ok == false with the exit code.
func (c *cli) parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, int, bool) {
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, exitOK, false
	}
	if err != nil {
		return nil, exitUsage, false
	}
	if len(pos) < minPos || (maxPos >= 0 && len(pos) > maxPos) {
		fmt.Fprintf(c.stderr, "parley %s: wrong number of arguments\n", fs.Name())
		fs.Usage()
		return nil, exitUsage, false
	}
	return pos, exitOK, true
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
