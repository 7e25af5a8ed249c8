package raftstore

import (
	"net/http"
	"strconv"
)

func (h *server) journalRoutes(rt *router) {
	rt.handleFunc("POST /v1/journal", workers, h.appendJournal)
	rt.handleFunc("GET /v1/journal", readers, h.read(h.journal))
}

func (h *server) appendJournal(w http.ResponseWriter, r *http.Request) {
	var req JournalRequest
	raw, ok := readRequest(w, r, bodyRule{limit: h.s.cfg.MaxBodyBytes}, &req)
	if !ok {
		return
	}
	if !h.prepare(w, r, &req) {
		return
	}
	h.write(w, r, raw, cmdJournal, req)
}

func (h *server) journal(r *http.Request, s *State) (any, *Error) {
	q := r.URL.Query()
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, badRequest("since", "since %q is not a journal index", v)
		}
		since = n
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return nil, badRequest("limit", "limit must be between 1 and 100000")
		}
		limit = n
	}
	return s.journalSince(since, limit), nil
}
