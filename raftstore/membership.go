package raftstore

// Membership: the cluster's status as a member sees it, joins (as
// non-voters promoted once caught up), removals and leadership transfer.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// isMember reports whether id is a member of the raft configuration.
func (s *Store) isMember(id string) bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return true
		}
	}
	return false
}

// Status describes the member and the cluster as it sees it.
type Status struct {
	ID          string   `json:"id"`
	State       string   `json:"state"`
	Leader      string   `json:"leader"`
	LeaderAddr  string   `json:"leader_http"`
	Term        uint64   `json:"term"`
	CommitIndex uint64   `json:"commit_index"`
	Applied     uint64   `json:"applied_index"`
	LastIndex   uint64   `json:"last_index"`
	LastContact string   `json:"last_contact"`
	Members     []Server `json:"members"`
}

// Server is one member of the raft configuration, as reported by Status.
type Server struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// Status reports raft's view of the cluster.
func (s *Store) Status() Status {
	st := Status{ID: s.cfg.ID, State: s.raft.State().String(), CommitIndex: s.raft.CommitIndex(), Applied: s.raft.AppliedIndex(), LastIndex: s.raft.LastIndex()}
	stats := s.raft.Stats()
	fmt.Sscan(stats["term"], &st.Term)
	st.LastContact = stats["last_contact"]
	_, lid := s.raft.LeaderWithID()
	st.Leader = string(lid)
	st.LeaderAddr, _ = s.LeaderHTTP()
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		var members map[string]MemberRequest
		s.fsm.read(func(state *State) {
			members = make(map[string]MemberRequest, len(state.Members))
			for k, v := range state.Members {
				members[k] = v
			}
		})
		for _, srv := range f.Configuration().Servers {
			st.Members = append(st.Members, Server{ID: string(srv.ID), RaftAddr: string(srv.Address), HTTPAddr: members[string(srv.ID)].HTTPAddr,
				Suffrage: srv.Suffrage.String(), Leader: srv.ID == lid})
		}
	}
	return st
}

// Join adds a member (on the leader). A member that is already in the
// configuration with the same raft address joins again harmlessly (a
// restarted member does); an id that exists at another address, or an
// address another id uses, is refused: replacing a member is an explicit
// remove, then join. A new member joins as a non-voter and is promoted
// once it has caught up with the log, so that an address nobody answers
// at can never cost the quorum.
func (s *Store) Join(id, raftAddr, httpAddr string) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if e := validMember(id, raftAddr, httpAddr); e != nil {
		return e
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	var recorded MemberRequest
	s.fsm.read(func(st *State) { recorded = st.Members[id] })
	for _, srv := range f.Configuration().Servers {
		switch {
		case srv.ID == raft.ServerID(id) && srv.Address == raft.ServerAddress(raftAddr):
			if recorded.HTTPAddr != "" && recorded.HTTPAddr != httpAddr {
				return errf(CodeConflict, "http_addr", "member %s serves its API at %s; remove it first to change that", id, recorded.HTTPAddr)
			}
			if recorded.HTTPAddr == "" {
				if _, err := s.Apply(cmdMember, "", MemberRequest{ID: id, HTTPAddr: httpAddr, RaftAddr: raftAddr}); err != nil {
					return err
				}
			}
			if srv.Suffrage == raft.Nonvoter {
				go s.promoteWhenCaughtUp(id, raftAddr, httpAddr, 30*time.Second)
			}
			return nil // already a member: nothing to change
		case srv.ID == raft.ServerID(id):
			return errf(CodeConflict, "id", "member %s is at raft address %s; remove it first to replace it", id, srv.Address)
		case srv.Address == raft.ServerAddress(raftAddr):
			return errf(CodeConflict, "raft_addr", "raft address %s belongs to member %s", raftAddr, srv.ID)
		}
	}
	if _, err := s.Apply(cmdMember, "", MemberRequest{ID: id, HTTPAddr: httpAddr, RaftAddr: raftAddr}); err != nil {
		return err
	}
	if err := s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return err
	}
	s.log.Info().Str("joining", id).Str("raft_addr", raftAddr).Msg("added a non-voter; it becomes a voter once it has caught up")
	// Promote at once when the member catches up quickly (the usual case),
	// so that join returns with a voter; the leader keeps trying after.
	s.promoteWhenCaughtUp(id, raftAddr, httpAddr, min(10*time.Second, s.cfg.ApplyTimeout))
	return nil
}

// validMember checks a join's id and addresses.
func validMember(id, raftAddr, httpAddr string) *Error {
	if id == "" {
		return badRequest("id", "a member id is required")
	}
	if e := badText("id", id, maxShortString, false); e != nil {
		return e
	}
	for _, a := range []struct{ field, v string }{{"raft_addr", raftAddr}, {"http_addr", httpAddr}} {
		host, port, err := net.SplitHostPort(a.v)
		if err != nil || host == "" || strings.ContainsAny(host, " /") {
			return badRequest(a.field, "%s %q must be host:port", a.field, a.v)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return badRequest(a.field, "%s %q: the port must be 1 to 65535", a.field, a.v)
		}
	}
	return nil
}

// promoteWhenCaughtUp asks a non-voter for its status until it has
// applied everything committed when it joined, then makes it a voter. It
// gives up after wait (the leader's sweep tries again later).
func (s *Store) promoteWhenCaughtUp(id, raftAddr, httpAddr string, wait time.Duration) {
	target := s.raft.CommitIndex()
	deadline := time.Now().Add(wait)
	for first := true; (first || time.Now().Before(deadline)) && s.IsLeader(); first = false {
		if st, err := s.peerStatus(httpAddr); err == nil && st.ID == id && st.Applied >= target {
			if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
				s.log.Warn().Err(err).Str("member", id).Msg("promote to voter")
				return
			}
			s.log.Info().Str("member", id).Uint64("applied", st.Applied).Msg("promoted to voter: caught up")
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// promoteNonvoters runs on the leader's sweep: any non-voter that has
// caught up since it joined becomes a voter.
func (s *Store) promoteNonvoters() {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	var members map[string]MemberRequest
	s.fsm.read(func(st *State) { members = maps.Clone(st.Members) })
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Nonvoter {
			if m, ok := members[string(srv.ID)]; ok && m.HTTPAddr != "" {
				s.promoteWhenCaughtUp(string(srv.ID), string(srv.Address), m.HTTPAddr, 0)
			}
		}
	}
}

// peerStatus asks another member for its status.
func (s *Store) peerStatus(httpAddr string) (*Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme(s.cfg.TLS)+httpAddr+"/v1/cluster/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Remove takes a member out of the configuration (on the leader).
func (s *Store) Remove(id string) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return err
	}
	_, err := s.Apply(cmdRemoveMember, "", MemberRequest{ID: id})
	return err
}

// Transfer hands leadership to id, or to any member when id is empty.
func (s *Store) Transfer(id string) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if id == "" {
		return s.raft.LeadershipTransfer().Error()
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return s.raft.LeadershipTransferToServer(srv.ID, srv.Address).Error()
		}
	}
	return errf(CodeNotFound, "id", "no member %s", id)
}
