// Command parley runs the parts of parley: the policy store, the worker
// agents, the simulator and the demo, and the operators' CLI.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Exit codes, so that scripts can tell kinds of failure apart.
const (
	exitOK          = 0 // success
	exitFailed      = 1 // the operation ran and failed: model errors, an agent failed, a refused request
	exitUsage       = 2 // bad usage or unreadable input files
	exitUnavailable = 3 // the store could not be reached or has no quorum
	exitServer      = 4 // the store answered with an internal error
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// newLogger sets up the one zerolog logger the process uses. Logs go to
// stderr as JSON, or as console text when PARLEY_LOG_FORMAT=console.
func newLogger(stderr io.Writer) zerolog.Logger {
	level := zerolog.InfoLevel
	if l, err := zerolog.ParseLevel(os.Getenv("PARLEY_LOG_LEVEL")); err == nil && l != zerolog.NoLevel {
		level = l
	}
	var w io.Writer = stderr
	if os.Getenv("PARLEY_LOG_FORMAT") == "console" {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// run is the whole program, testable: it takes the arguments and the
// output streams and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, log: newLogger(stderr)}
	return c.dispatch(ctx, args)
}
