package raftstore

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Hosts (drain requests and reports) and workers (heartbeats, liveness).
func (h *server) hostRoutes(rt *router) {
	rt.handleFunc("GET /v1/hosts", readers, h.read(func(_ *http.Request, s *State) (any, *Error) { return s.hostList(), nil }))
	rt.handleFunc("POST /v1/hosts/{name}/drain", operators, h.drain(true))
	rt.handleFunc("POST /v1/hosts/{name}/undrain", operators, h.drain(false))
	rt.handleFunc("POST /v1/hosts/{name}/report", workers, h.hostReport)
	rt.handleFunc("POST /v1/workers/heartbeat", workers, h.heartbeat)
	rt.handleFunc("GET /v1/workers", readers, h.read(func(_ *http.Request, s *State) (any, *Error) {
		return s.liveWorkers(time.Now().UnixNano(), 0), nil // the leader marks workers down (liveness.go)
	}))
	rt.handleFunc("GET /v1/roster", readers, h.read(func(r *http.Request, s *State) (any, *Error) {
		q := r.URL.Query()
		return compactJSON{s.roster(time.Now().UnixNano(), 0, q.Has("cluster"), q.Get("cluster"))}, nil
	}))
}

func (h *server) drain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req HostRequest
		raw, ok := readRequest(w, r, bodyRule{limit: smallBody, optional: true}, &req)
		if !ok {
			return
		}
		req.Name, req.Drain = r.PathValue("name"), on
		if !h.prepare(w, r, &req) {
			return
		}
		h.write(w, r, raw, cmdHostDrain, req)
	}
}

func (h *server) hostReport(w http.ResponseWriter, r *http.Request) {
	var req HostReport
	raw, ok := readRequest(w, r, bodyRule{limit: smallBody}, &req)
	if !ok {
		return
	}
	req.Name = r.PathValue("name") // a worker's own host: the state machine decides (authorise)
	h.write(w, r, raw, cmdHostReport, req)
}

func (h *server) heartbeat(w http.ResponseWriter, r *http.Request) {
	var req HeartbeatRequest
	raw, ok := readRequest(w, r, bodyRule{limit: smallBody}, &req)
	if !ok || !h.prepare(w, r, &req) {
		return
	}
	// a request with an idempotency key asks for the log's deduplication: written
	if wk, kept := h.s.beat(req); kept && r.Header.Get(HeaderRequestID) == "" {
		// the leader keeps it: nothing changed, nothing written
		reply := HeartbeatReply{Worker: wk}
		h.s.fsm.read(func(st *State) { reply.RosterIndex = st.RosterIndex })
		if req.Load == nil {
			writeCompactJSON(w, http.StatusOK, reply)
			return
		}
		writeKeptReply(w, reply, h.s.peerLoads(req.ID, req.Load.Cluster, time.Now(), h.s.cfg.WorkerTTL))
		return
	}
	req.Load = nil                        // loads live in the leader's memory, never in the log
	h.write(w, r, raw, cmdHeartbeat, req) // new, moved, or back: written (a follower forwards it)
}

// badLoad checks the load a heartbeat carries.
func badLoad(req *HeartbeatRequest) *Error {
	l := req.Load
	switch {
	case l == nil:
		return nil
	case l.Host != req.Host:
		return errf(CodeBadRequest, "load.host", "a worker reports the load of its own host (%q), not %q", req.Host, l.Host)
	case l.CPUUsedMHz < 0 || l.CPUCapacityMHz < 0 || l.MemUsedMB < 0 || l.MemCapacityMB < 0:
		return errf(CodeBadRequest, "load", "load figures must not be negative")
	}
	return badText("load.cluster", l.Cluster, maxShortString, false)
}

// writeKeptReply writes reply with PeersKnown set and peers' loads as
// each was encoded when it arrived: a thousand workers' heartbeats would
// otherwise encode every load again for each of its cluster's peers.
func writeKeptReply(w http.ResponseWriter, reply HeartbeatReply, peers [][]byte) {
	reply.PeersKnown, reply.Peers = false, nil
	head, err := json.Marshal(reply)
	if err != nil { // a HeartbeatReply always encodes
		writeErr(w, unavailable("encode the reply: %v", err))
		return
	}
	n := len(head) + 40
	for _, p := range peers {
		n += len(p) + 1
	}
	b := append(make([]byte, 0, n), head[:len(head)-1]...) // without its closing brace
	if len(head) > 2 {
		b = append(b, ',')
	}
	b = append(b, `"peers_known":true`...)
	if len(peers) > 0 {
		b = append(b, `,"peers":[`...)
		for i, p := range peers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, p...)
		}
		b = append(b, ']')
	}
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b))) // one write, not chunks
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
