package raftstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// servedAgain marks a request this member serves a second time, having
// become the leader while it waited to forward it.
type servedAgain struct{}

// forward passes a request to the leader. With no leader known (an
// election under way), or a leader that refuses the connection (gone: the
// request never reached it), it waits for the next leader, for up to
// leaderWait, so that a client is answered as soon as an election ends
// rather than after its own backoff; when this member is the one elected,
// it serves the request itself. It answers 503 when no leader comes, and
// to a request another member already forwarded (that member retries).
func (h *server) forward(w http.ResponseWriter, r *http.Request, b []byte) {
	if from := r.Header.Get(headerForwarded); from != "" {
		if !h.s.isMember(from) {
			writeErr(w, badRequest(headerForwarded, "the %s header is set by store members only", headerForwarded))
			return
		}
		writeErr(w, unavailable("member %s was sent a forwarded request but is not the leader", h.s.cfg.ID))
		return
	}
	gone := ""
	for {
		addr, self, ok := h.s.awaitLeader(r.Context(), gone)
		switch {
		case !ok:
			writeErr(w, unavailable("no leader is known to member %s", h.s.cfg.ID))
			return
		case self && r.Context().Value(servedAgain{}) == nil:
			again := r.Clone(context.WithValue(r.Context(), servedAgain{}, true))
			again.Body = io.NopCloser(bytes.NewReader(b))
			h.root.ServeHTTP(w, again)
			return
		case self:
			writeErr(w, unavailable("member %s became the leader and lost it again", h.s.cfg.ID))
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, scheme(h.s.cfg.TLS)+addr+r.URL.RequestURI(), bytes.NewReader(b))
		if err != nil {
			writeErr(w, errf(CodeInternal, "", "forward: %v", err))
			return
		}
		req.Header = r.Header.Clone()
		req.Header.Set(headerForwarded, h.s.cfg.ID)
		resp, err := h.fwd.Do(req)
		if err != nil {
			if gone == "" && notDialed(err) {
				gone = addr // the leader is gone: wait for the next
				continue
			}
			writeErr(w, unavailable("forward to leader %s: %v", addr, err))
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs // the leader's headers replace any set here
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body) // the client may have gone; nothing to do about it
		return
	}
}

// notDialed reports whether a request failed before a connection was
// made, so that it certainly did not reach the server.
func notDialed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// leaderWait bounds how long a member waits for a leader before it
// answers 503: time enough for a follower to notice the leader is gone
// and for an election.
func (s *Store) leaderWait() time.Duration {
	return 2 * (s.cfg.HeartbeatTimeout + s.cfg.ElectionTimeout)
}

// awaitLeader returns the leader's HTTP address, waiting while none is
// known or while the one known is gone (its address). self says this
// member is the leader.
func (s *Store) awaitLeader(ctx context.Context, gone string) (addr string, self, ok bool) {
	deadline := time.Now().Add(s.leaderWait())
	for {
		if s.IsLeader() {
			return s.cfg.HTTPAdvertise, true, true
		}
		if addr, ok := s.LeaderHTTP(); ok && addr != gone && addr != s.cfg.HTTPAdvertise {
			return addr, false, true
		}
		if time.Now().After(deadline) {
			return "", false, false
		}
		select {
		case <-ctx.Done():
			return "", false, false
		case <-s.stop:
			return "", false, false
		case <-time.After(10 * time.Millisecond):
		}
	}
}
