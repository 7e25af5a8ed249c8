package raftstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"
)

// FSM is the raft state machine: it decodes a command, hands it to the
// State, and returns the Result. A command that cannot be decoded is
// refused as a Result too (it was written by a broken or newer member);
// the FSM never panics on a command's content.
type FSM struct {
	mu    sync.RWMutex
	state *State
	log   zerolog.Logger
	// changed is closed (and replaced) after every apply that may change
	// a policy's active version (policyCommands) and every snapshot
	// restore: blocking queries wait on it (http_policies.go). Other
	// applies leave it alone: a thousand workers each wait on a policy,
	// and waking them all at every lease and journal write cost each
	// member more than the writes did.
	changed chan struct{}
}

// NewFSM returns an empty state machine.
func NewFSM(log zerolog.Logger) *FSM {
	return &FSM{state: newState(), log: log, changed: make(chan struct{})}
}

// policyCommands are the commands that may change a policy's active
// version.
var policyCommands = map[string]bool{cmdPush: true, cmdActivate: true, cmdRestore: true}

// notify wakes the blocking queries; f.mu is held.
func (f *FSM) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// changes returns a channel closed at the next change that may touch a
// policy's active version.
func (f *FSM) changes() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := decodeCommand(l.Data)
	if err != nil {
		f.log.Error().Err(err).Uint64("index", l.Index).Msg("refusing undecodable command")
		return refused(badRequest("", "%v", err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if policyCommands[c.Type] {
		defer f.notify()
	}
	return f.applyRecovered(l.Index, c)
}

// applyRecovered applies a command and turns a panic into a refusal, so
// that no accepted log entry can crash every member on every restart. A
// panic is a bug: it is logged with the command. Every member panics at
// the same point of the same entry, so they stay alike.
func (f *FSM) applyRecovered(index uint64, c *Command) (r *Result) {
	defer func() {
		if p := recover(); p != nil {
			f.log.Error().Uint64("index", index).Str("type", c.Type).Str("request_id", c.RequestID).
				Interface("panic", p).Msg("the state machine panicked applying a command; refused")
			r = refused(errf(CodeInternal, "", "the store could not apply this %s command (a bug, logged at index %d)", c.Type, index))
		}
	}()
	return f.state.apply(index, c)
}

// read runs fn under the read lock.
func (f *FSM) read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Snapshot implements raft.FSM: it encodes the state now (fast, in memory)
// and leaves the writing to Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(f.state) // V is stateVersion: newState and decodeState set it
	if err != nil {
		return nil, fmt.Errorf("raftstore: encode snapshot: %w", err)
	}
	return &fsmSnapshot{data: b}, nil
}

// Restore implements raft.FSM: it replaces the whole state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := decodeState(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state = s
	f.notify()
	f.mu.Unlock()
	return nil
}

// stateVersion is the version of the State encoding this build writes.
// A later build reads every earlier version; this one refuses later ones.
const stateVersion = 1

// ErrNewerVersion is returned for an encoding (a command, a snapshot, a
// backup) written by a newer release than this member.
var ErrNewerVersion = errors.New("raftstore: written by a newer release: upgrade this member")

func decodeState(r io.Reader) (*State, error) {
	s := &State{}
	dec := json.NewDecoder(r)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("raftstore: decode snapshot: %w", err)
	}
	if s.V > stateVersion || s.V < 0 {
		return nil, fmt.Errorf("%w: the state's encoding is version %d, this member reads up to %d", ErrNewerVersion, s.V, stateVersion)
	}
	s.V = stateVersion  // read as this version from here on
	if s.Hosts == nil { // snapshots from before host drains
		s.Hosts = map[string]*HostState{}
	}
	s.indexTokens()
	if err := validateState(s); err != nil {
		return nil, fmt.Errorf("raftstore: snapshot: %w", err)
	}
	// Snapshots from before result codes kept each remembered refusal's
	// HTTP status; the state machine keeps codes only.
	for _, r := range s.Requests {
		if r != nil && r.Error != nil {
			r.Error.Status = 0
		}
	}
	return s, nil
}

type fsmSnapshot struct{ data []byte }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// storeCounts are the state machine's sizes, for metrics.
type storeCounts struct{ policies, versions, leases, journal, workers int }

func (f *FSM) counts(now time.Time, workerTTL time.Duration) (n storeCounts) {
	f.read(func(s *State) {
		n.policies, n.journal = len(s.Policies), len(s.Journal)
		for _, p := range s.Policies {
			n.versions += len(p.Versions)
		}
		for _, l := range s.Leases {
			if l.Expiry > now.UnixNano() {
				n.leases++
			}
		}
		for _, w := range s.Workers {
			if w.live(now.UnixNano(), workerTTL) {
				n.workers++
			}
		}
	})
	return
}
