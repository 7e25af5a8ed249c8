package raftstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// TestHclogIntoZerolog: raft's structured arguments become zerolog fields
// in one JSON stream, levels map across, and errors from a transport that
// is shutting down are not reported as errors.
func TestHclogIntoZerolog(t *testing.T) {
	var buf bytes.Buffer
	l := newHclog(zerolog.New(&buf), "raft").Named("transport").With("member", "s1")
	l.Warn("heartbeat timeout reached", "last-leader-id", "s2", "term", 7)
	l.Error("failed to decode incoming command", "error", errors.New("transport shutdown"))
	l.Info("initial configuration", "servers", hclog.Fmt("%d servers", 3))
	out := buf.String()
	for _, want := range []string{`"level":"warn"`, `"component":"raft.transport"`, `"member":"s1"`, `"last-leader-id":"s2"`, `"term":7`, `"servers":"3 servers"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "transport shutdown") {
		t.Errorf("a shutdown error was logged at error level:\n%s", out)
	}
}
