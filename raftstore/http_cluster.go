package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/raftstore/pki"
	"time"
)

func (h *server) clusterRoutes(rt *router) {
	rt.handleFunc("GET /v1/cluster/status", readers, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, h.s.Status()) })
	rt.handleFunc("POST /v1/cluster/join", admins, h.join)
	rt.handleFunc("POST /v1/cluster/remove", admins, h.remove)
	rt.handleFunc("POST /v1/cluster/transfer", admins, h.transfer)
	rt.handleFunc("GET /v1/cluster/snapshot", admins, h.snapshot)
	rt.handleFunc("POST /v1/cluster/restore", admins, h.restore)
	rt.handleFunc("GET /readyz", anyone, h.ready)
}

func (h *server) ready(w http.ResponseWriter, r *http.Request) {
	st := h.s.Status()
	if st.Leader == "" {
		writeErr(w, unavailable("no leader"))
		return
	}
	if stalled, since := h.s.appliesStalled(); stalled {
		writeErr(w, unavailable("this member leads but has applied nothing for %s", since.Round(time.Millisecond)))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "leader": st.Leader})
}

func (h *server) clusterOp(w http.ResponseWriter, r *http.Request, op func(req MemberRequest) error) {
	var req MemberRequest
	raw, ok := readRequest(w, r, bodyRule{limit: smallBody, optional: true}, &req)
	if !ok {
		return
	}
	if peer := pki.PeerName(r.TLS); r.URL.Path == "/v1/cluster/join" && req.ID != "" && h.s.cfg.TLS != nil && peer != req.ID && !h.s.isMember(peer) {
		// checked where the joiner connects, before any forwarding: raft
		// would refuse the new member's traffic anyway; say why now
		writeErr(w, errf(CodeForbidden, "id", "a member joins with its own certificate: member %q presented %q", req.ID, peer))
		return
	}
	if !h.s.IsLeader() {
		h.forward(w, r, raw)
		return
	}
	if err := op(req); err != nil {
		var ae *Error
		switch {
		case errors.As(err, &ae):
			writeErr(w, ae)
		case errors.Is(err, ErrNotLeader):
			h.forward(w, r, raw)
		default:
			writeErr(w, unavailable("%v", err))
		}
		return
	}
	if id := identityOf(r); id.Name != "" {
		what := fmt.Sprintf("%s id=%s", strings.TrimPrefix(r.URL.Path, "/v1/cluster/"), req.ID)
		if _, err := h.s.ApplyAs(cmdAudit, "", id, AuditRequest{What: what}); err != nil {
			h.s.log.Warn().Err(err).Str("who", id.Name).Str("what", what).Msg("audit of a membership change")
		}
	}
	writeJSON(w, http.StatusOK, h.s.Status())
}

func (h *server) join(w http.ResponseWriter, r *http.Request) {
	h.clusterOp(w, r, func(req MemberRequest) error {
		if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
			return badRequest("id", "join needs id, raft_addr and http_addr")
		}
		if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
			return badRequest("raft_addr", "raft_addr %q: %v", req.RaftAddr, err)
		}
		return h.s.Join(req.ID, req.RaftAddr, req.HTTPAddr)
	})
}

func (h *server) remove(w http.ResponseWriter, r *http.Request) {
	h.clusterOp(w, r, func(req MemberRequest) error {
		if req.ID == "" {
			return badRequest("id", "remove needs the member id")
		}
		return h.s.Remove(req.ID)
	})
}

func (h *server) transfer(w http.ResponseWriter, r *http.Request) {
	h.clusterOp(w, r, func(req MemberRequest) error { return h.s.Transfer(req.ID) })
}

// snapshot downloads the whole state. It is encoded under the read lock
// (a copy) and written after, so a slow download never holds up writes.
func (h *server) snapshot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Disposition", "attachment; filename=parley-store.json")
	h.read(func(_ *http.Request, s *State) (any, *Error) {
		c := *s
		c.Tokens = nil // credentials are not data: a restore keeps the cluster's own
		b, err := json.Marshal(&c)
		if err != nil {
			return nil, errf(CodeInternal, "", "encode snapshot: %v", err)
		}
		return rawJSON(append(b, '\n')), nil
	})(w, r)
}

func (h *server) restore(w http.ResponseWriter, r *http.Request) {
	raw, e := readBody(r, maxRestoreBytes)
	if e != nil {
		writeErr(w, e)
		return
	}
	if _, err := decodeState(bytes.NewReader(raw)); err != nil {
		writeErr(w, badRequest("body", "not a parley store snapshot: %v", err))
		return
	}
	h.write(w, r, raw, cmdRestore, json.RawMessage(raw))
}
