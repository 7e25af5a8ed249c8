package raftstore

import (
	"net/http"
	"strings"
	"time"
)

func (h *api) leaseRoutes(rt *router) {
	rt.handleFunc("POST /v1/leases/acquire", workers, h.acquire)
	rt.handleFunc("POST /v1/leases/renew", workers, h.renewOrRelease(cmdRenew))
	rt.handleFunc("POST /v1/leases/release", releasers, h.renewOrRelease(cmdRelease))
	rt.handleFunc("GET /v1/leases", readers, h.read(func(r *http.Request, s *State) (any, *Error) {
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
		raw, ok := readRequest(w, r, bodyRule{limit: leaseBody}, &req)
		if !ok {
			return
		}
		if !h.s.IsLeader() {
			h.forward(w, r, raw) // the leader checks, on the latest state
			return
		}
		if h.migratorOfReservations(r, &req) || bindWorker(w, r, "holder", &req.Holder) {
			h.write(w, r, raw, typ, req)
		}
	}
}

// migratorOfReservations is the one case where a worker renews or
// releases a lease it does not hold: a target's reservations for a VM
// (reserve/HOST/VM) are kept alive and given back by the worker that
// migrates the VM, which holds the VM's lease (vm/VM).
func (h *api) migratorOfReservations(r *http.Request, req *RenewRequest) bool {
	id := identityOf(r)
	if id.Role != RoleWorker || req.Holder == id.Name || len(req.Keys) == 0 {
		return false
	}
	now := time.Now().UnixNano()
	ok := true
	h.s.fsm.read(func(s *State) {
		for _, k := range req.Keys {
			rest, isRes := strings.CutPrefix(k, "reserve/")
			_, vm, found := strings.Cut(rest, "/")
			l := s.Leases["vm/"+vm]
			if !isRes || !found || l == nil || l.Holder != id.Name || l.Expiry <= now {
				ok = false
				return
			}
		}
	})
	return ok
}
