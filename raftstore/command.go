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
	cmdRestore      = "state.restore" // replaces the state with a backup
	cmdTokenCreate  = "token.create"
	cmdTokenRevoke  = "token.revoke"
	cmdAudit        = "audit" // records an administrative action that is not itself a command
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
	Who       string          `json:"who,omitempty"`  // the authenticated identity that asked
	Role      string          `json:"role,omitempty"` // its role, for the rules the state machine decides (authorise)
	Body      json.RawMessage `json:"body,omitempty"`
}

func encodeCommand(typ, reqID, who string, now int64, body any) ([]byte, error) {
	return encodeCommandBy(typ, reqID, Identity{Name: who}, now, body)
}

// encodeCommandBy encodes a command sent by identity by.
func encodeCommandBy(typ, reqID string, by Identity, now int64, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Command{V: envelopeVersion, Type: typ, RequestID: reqID, Time: now, Who: by.Name, Role: by.Role, Body: b})
}

func decodeCommand(data []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("raftstore: decode command: %w", err)
	}
	if c.V > envelopeVersion {
		return nil, fmt.Errorf("%w: command envelope version %d, this member reads up to %d", ErrNewerVersion, c.V, envelopeVersion)
	}
	if c.V < 1 {
		return nil, fmt.Errorf("raftstore: command envelope version %d is not supported (this member reads 1 to %d)", c.V, envelopeVersion)
	}
	return &c, nil
}

// applied is where and when a command applies: its raft index, the
// leader's time in it (never behind the previous command's), and the
// previous command's time.
type applied struct {
	index     uint64
	now, prev int64
}

// handler applies one command type to the state.
type handler func(s *State, at applied, c *Command) *Result

// handlers is the state machine's command table: one entry per type.
var handlers = map[string]handler{
	cmdPush:     withBody(func(s *State, at applied, r *PushRequest) *Result { return s.push(at.now, r) }),
	cmdActivate: withBody(func(s *State, at applied, r *ActivateRequest) *Result { return s.activate(at.now, r) }),
	cmdAcquire:  withBody(func(s *State, at applied, r *AcquireRequest) *Result { return s.acquire(at.index, at.now, r) }),
	cmdRenew:    withBody(func(s *State, at applied, r *RenewRequest) *Result { return s.renew(at.now, r) }),
	cmdRelease:  withBody(func(s *State, at applied, r *RenewRequest) *Result { return s.release(at.now, r) }),
	cmdHeartbeat: withBody(func(s *State, at applied, r *HeartbeatRequest) *Result {
		return s.heartbeat(at.now, r)
	}),
	cmdJournal: withBody(func(s *State, at applied, r *JournalRequest) *Result { return s.appendJournal(at.now, r) }),
	cmdMember: withBody(func(s *State, _ applied, r *MemberRequest) *Result {
		s.Members[r.ID] = *r
		return okResult(r)
	}),
	cmdRemoveMember: withBody(func(s *State, _ applied, r *MemberRequest) *Result {
		delete(s.Members, r.ID)
		return okResult(r)
	}),
	cmdLeaderExtend: func(s *State, at applied, _ *Command) *Result { return s.extendLeases(at.now, at.prev) },
	cmdSweep: func(s *State, at applied, c *Command) *Result {
		var req SweepRequest
		if len(c.Body) > 0 && string(c.Body) != "null" { // sweeps written before workers went down through them carry none
			if err := json.Unmarshal(c.Body, &req); err != nil {
				return refused(badRequest("body", "cannot decode %s command: %v", c.Type, err))
			}
		}
		return s.sweep(at.now, &req)
	},
	cmdRestore:     func(s *State, at applied, c *Command) *Result { return s.restore(at.index, c) },
	cmdHostDrain:   withBody(func(s *State, at applied, r *HostRequest) *Result { return s.hostDrain(at.now, r) }),
	cmdHostReport:  withBody(func(s *State, at applied, r *HostReport) *Result { return s.hostReport(at.now, r) }),
	cmdTokenCreate: withBody(func(s *State, at applied, r *TokenRequest) *Result { return s.createToken(at.now, r) }),
	cmdTokenRevoke: withBody(func(s *State, at applied, r *TokenRequest) *Result { return s.revokeToken(r) }),
	cmdAudit: withBody(func(s *State, at applied, r *AuditRequest) *Result {
		if e := badText("what", r.What, maxLongString, false); e != nil {
			return refused(e)
		}
		return okResult(r)
	}),
}

// withBody decodes a command's body into T before calling fn; a body that
// does not decode is a refusal.
func withBody[T any](fn func(s *State, at applied, req *T) *Result) handler {
	return func(s *State, at applied, c *Command) *Result {
		var req T
		if err := json.Unmarshal(c.Body, &req); err != nil {
			return refused(badRequest("body", "cannot decode %s command: %v", c.Type, err))
		}
		if e := s.authorise(at, c, &req); e != nil {
			return refused(e)
		}
		return fn(s, at, &req)
	}
}

// dispatch runs a command's handler. A type this member does not know is
// skipped when the command allows it, and refused otherwise.
func (s *State) dispatch(at applied, c *Command) *Result {
	if h, ok := handlers[c.Type]; ok {
		return h(s, at, c)
	}
	if c.Flags&FlagIgnoreUnknown != 0 {
		return okResult(map[string]string{"ignored": c.Type})
	}
	return refused(badRequest("type", "unknown command type %q", c.Type))
}
