package raftstore

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/parleyhq/parley/raftstore/api"
)

// The web dashboard: its page and assets, embedded and public (they hold
// no data; the page signs in with a token and calls the API like any
// client), and the routes only it needs: who a token is (/v1/whoami), a
// stream of changes (/v1/events, server-sent events), every host as its
// worker sees it (/v1/fleet, http_fleet.go) and one interaction's steps
// from every worker that took part (/v1/interactions/{id}).

//go:embed ui
var uiFiles embed.FS

// contractJS gives the dashboard the contract's words (raftstore/api) as
// the constant W, so that the page spells kinds, outcomes and states as
// the store does.
var contractJS = func() []byte {
	b, _ := json.Marshal(map[string]string{
		"kindMigration":    api.KindMigration,
		"kindWouldMigrate": api.KindWouldMigrate,
		"kindNegotiation":  api.KindNegotiation,
		"kindVCenter":      api.KindVCenter,
		"outcomeSuccess":   api.OutcomeSuccess,
		"outcomeFailed":    api.OutcomeFailed,
		"leaseHeld":        api.LeaseHeld,
	})
	return []byte("'use strict';\n// the store's words (raftstore/api), served by the store\nconst W = Object.freeze(" + string(b) + ");\n")
}()

// maxEventStreams bounds the event streams one member serves at once.
const maxEventStreams = 64

func (h *server) uiRoutes(rt *router) {
	sub, _ := fs.Sub(uiFiles, "ui")
	files := http.StripPrefix("/ui/", http.FileServer(http.FS(sub)))
	rt.handle("GET /ui/", anyone, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		// nothing from elsewhere: scripts, styles and requests stay on this origin
		hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	rt.handle("GET /ui/contract.js", anyone, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(contractJS)
	}))
	rt.handle("GET /ui", anyone, http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	rt.handleFunc("GET /v1/whoami", readers, func(w http.ResponseWriter, r *http.Request) {
		id := identityOf(r)
		role := id.Role
		if id.Member {
			role = "member"
		}
		if h.s.cfg.Insecure {
			role = RoleAdmin // no tokens: anyone may do anything
		}
		writeJSON(w, http.StatusOK, map[string]string{"name": id.Name, "role": role, "member": h.s.cfg.ID})
	})
	rt.handleFunc("GET /v1/events", readers, h.events)
	rt.handleFunc("GET /v1/fleet", readers, h.fleet)
	rt.handleFunc("GET /v1/interactions/{id}", readers, h.interaction)
}

// events streams a "change" event whenever this member's applied index
// moves (at most every 500 ms), with the index, the leader and the term,
// and a comment every 15 s to keep proxies from closing the stream.
func (h *server) events(w http.ResponseWriter, r *http.Request) {
	if n := h.s.streams.Add(1); n > maxEventStreams {
		h.s.streams.Add(-1)
		writeErr(w, unavailable("this member already serves %d event streams", maxEventStreams))
		return
	}
	defer h.s.streams.Add(-1)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var last uint64
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	idle := time.Now()
	send := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second)) // a reader that stops reading is dropped
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: 2000\n\n")) {
		return
	}
	for {
		if applied := h.s.raft.AppliedIndex(); applied != last { // cheap; the status only on a change
			st := h.s.Status()
			last, idle = applied, time.Now()
			b, _ := json.Marshal(map[string]any{"index": st.Applied, "leader": st.Leader, "term": st.Term, "member": st.ID, "state": st.State})
			if !send(fmt.Appendf(nil, "id: %d\nevent: change\ndata: %s\n\n", st.Applied, b)) {
				return
			}
		} else if time.Since(idle) > 15*time.Second {
			idle = time.Now()
			if !send([]byte(": keep-alive\n\n")) {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.s.stop:
			return
		case <-tick.C:
		}
	}
}
