package main

import (
	"bytes"
	"encoding/json"
	"log"
	"os"
	"testing"

	"github.com/rs/zerolog"
)

// TestVCSimLinesBecomeDebugLines: what vcsim writes through the standard
// logger comes out as one structured debug line marked as vcsim's, and
// not at all above debug.
func TestVCSimLinesBecomeDebugLines(t *testing.T) {
	defer func() { log.SetOutput(os.Stderr); log.SetFlags(log.LstdFlags) }()
	var buf bytes.Buffer
	routeVCSimLog(zerolog.New(&buf).Level(zerolog.DebugLevel))
	log.Printf("EventManager:EventManager does not implement: %s\n", "LogUserEvent")
	var line struct{ Level, Component, Message string }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v in %q", err, buf.String())
	}
	if line.Level != "debug" || line.Component != "vcsim" || line.Message != "EventManager:EventManager does not implement: LogUserEvent" {
		t.Fatalf("got %+v", line)
	}
	buf.Reset()
	routeVCSimLog(zerolog.New(&buf).Level(zerolog.InfoLevel))
	log.Print("quiet")
	if buf.Len() != 0 {
		t.Fatalf("at info level: %q", buf.String())
	}
}
