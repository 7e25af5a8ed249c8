package worker

import (
	"net/http"

	"github.com/parleyhq/parley/raftstore/pki"
)

// senderProblem checks who sent a message, when the worker runs with TLS:
// the peer's certificate (verified against the cluster's CA by the TLS
// handshake) must name a registered worker, and the message's from must
// be that name. A message anyone could have written is refused: a forged
// negotiation could move VMs. It returns the status and the reason for a
// refusal, or ok.
func (w *Worker) senderProblem(r *http.Request, from string) (status int, reason, msg string, ok bool) {
	if w.cfg.TLS == nil {
		return 0, "", "", true
	}
	peer := pki.PeerName(r.TLS)
	switch {
	case peer == "":
		return http.StatusUnauthorized, "unauthenticated", "a message needs the sending worker's certificate", false
	case peer != from:
		return http.StatusForbidden, "forged", "the message says it is from " + from + " but the certificate is " + peer + "'s", false
	}
	if _, registered := w.tr.addr(r.Context(), peer); !registered {
		return http.StatusForbidden, "unregistered", "worker " + peer + " is not a live registered worker", false
	}
	return 0, "", "", true
}
