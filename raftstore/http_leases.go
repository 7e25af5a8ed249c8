package raftstore

import (
	"net/http"
	"time"
)

func (h *server) leaseRoutes(rt *router) {
	rt.handleFunc("POST /v1/leases/acquire", workers, h.acquire)
	rt.handleFunc("POST /v1/leases/renew", workers, h.renewOrRelease(cmdRenew))
	rt.handleFunc("POST /v1/leases/release", releasers, h.renewOrRelease(cmdRelease))
	rt.handleFunc("GET /v1/leases", readers, h.read(func(r *http.Request, s *State) (any, *Error) {
		return s.listLeases(r.URL.Query().Get("prefix"), time.Now().UnixNano()), nil
	}))
}

func (h *server) acquire(w http.ResponseWriter, r *http.Request) {
	var req AcquireRequest
	raw, ok := readRequest(w, r, bodyRule{limit: leaseBody}, &req)
	if !ok {
		return
	}
	if !h.prepare(w, r, &req) {
		return
	}
	h.write(w, r, raw, cmdAcquire, req)
}

func (h *server) renewOrRelease(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req RenewRequest
		raw, ok := readRequest(w, r, bodyRule{limit: leaseBody}, &req)
		if !ok {
			return
		}
		if h.prepare(w, r, &req) {
			h.write(w, r, raw, typ, req)
		}
	}
}
