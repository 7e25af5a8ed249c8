package raftstore

import (
	"net/http"
	"time"
)

func (h *api) leaseRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/leases/acquire", h.acquire)
	mux.HandleFunc("POST /v1/leases/renew", h.renewOrRelease(cmdRenew))
	mux.HandleFunc("POST /v1/leases/release", h.renewOrRelease(cmdRelease))
	mux.HandleFunc("GET /v1/leases", h.read(func(r *http.Request, s *State) (any, *Error) {
		return s.listLeases(r.URL.Query().Get("prefix"), time.Now().UnixNano()), nil
	}))
}

func (h *api) acquire(w http.ResponseWriter, r *http.Request) {
	var req AcquireRequest
	raw, ok := readRequest(w, r, bodyRule{limit: leaseBody}, &req)
	if !ok {
		return
	}
	req.LockDelayMillis = h.s.cfg.LeaseLockDelay.Milliseconds()
	if !bindWorker(w, r, "holder", &req.Holder) {
		return
	}
	h.write(w, r, raw, cmdAcquire, req)
}

func (h *api) renewOrRelease(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req RenewRequest
		if raw, ok := readRequest(w, r, bodyRule{limit: leaseBody}, &req); ok && bindWorker(w, r, "holder", &req.Holder) {
			h.write(w, r, raw, typ, req)
		}
	}
}
