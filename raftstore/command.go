package raftstore

import (
	"encoding/json"
	"fmt"
)

// Command types. A newer member may add types; an older one skips those
// sent with FlagIgnoreUnknown (as Consul's IgnoreUnknownTypeFlag) and
// refuses the rest.
const (
	cmdPush         = "policy.push"
	cmdActivate     = "policy.activate"
	cmdAcquire      = "lease.acquire"
	cmdRenew        = "lease.renew"
	cmdRelease      = "lease.release"
	cmdHeartbeat    = "worker.heartbeat"
	cmdJournal      = "journal.append"
	cmdMember       = "member.set"
	cmdRemoveMember = "member.remove"
	cmdLeaderExtend = "lease.leader_extend"
	cmdSweep        = "lease.sweep"
	cmdHostDrain    = "host.drain"
	cmdHostReport   = "host.report"
)

// FlagIgnoreUnknown lets a member that does not know a command type skip
// it instead of refusing it.
const FlagIgnoreUnknown = 1

// envelopeVersion is the version of the Command encoding.
const envelopeVersion = 1

// DefaultJournalLimit bounds the journal when no limit is configured.
const DefaultJournalLimit = 10000

// Command is the envelope of every raft log entry. Time is the leader's
// clock when it proposed the command, so that the FSM never reads a clock.
type Command struct {
	V         int             `json:"v"`
	Type      string          `json:"type"`
	Flags     int             `json:"flags,omitempty"`
	RequestID string          `json:"req,omitempty"`
	Time      int64           `json:"time"`
	Body      json.RawMessage `json:"body,omitempty"`
}

func encodeCommand(typ, reqID string, now int64, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Command{V: envelopeVersion, Type: typ, RequestID: reqID, Time: now, Body: b})
}

func decodeCommand(data []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("raftstore: decode command: %w", err)
	}
	if c.V < 1 || c.V > envelopeVersion {
		return nil, fmt.Errorf("raftstore: command envelope version %d is not supported (this member knows up to %d)", c.V, envelopeVersion)
	}
	return &c, nil
}
