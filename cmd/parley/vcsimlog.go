package main

import (
	"bytes"
	"log"

	"github.com/rs/zerolog"
)

// vcsimLog is where the in-process simulator's messages go: vcsim writes
// through the standard library's logger (one line per client for each
// method it lacks, such as EventManager.LogUserEvent, which parley knows
// and answers with PostEvent). They become zerolog lines at debug level,
// marked as vcsim's, instead of unstructured lines among the demo's.
type vcsimLog struct{ log zerolog.Logger }

func (v vcsimLog) Write(p []byte) (int, error) {
	v.log.Debug().Str("component", "vcsim").Msg(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// routeVCSimLog sends the standard logger's lines to l at debug level.
func routeVCSimLog(l zerolog.Logger) {
	log.SetFlags(0)
	log.SetOutput(vcsimLog{l})
}
