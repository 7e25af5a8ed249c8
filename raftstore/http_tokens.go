package raftstore

import (
	"net/http"
)

func (h *server) tokenRoutes(rt *router) {
	rt.handleFunc("GET /v1/tokens", admins, h.read(func(_ *http.Request, s *State) (any, *Error) { return s.tokenList(), nil }))
	rt.handleFunc("POST /v1/tokens", admins, h.createToken)
	rt.handleFunc("POST /v1/tokens/{name}/revoke", admins, h.revokeToken)
}

// createToken records a token. A client that sends the hash of a secret
// it made (as parley token create does) can retry safely; without a hash,
// the member makes the secret and returns it in this one answer.
func (h *server) createToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	raw, ok := readRequest(w, r, bodyRule{limit: smallBody}, &req)
	if !ok {
		return
	}
	req.By = identityOf(r).Name
	if req.Hash != "" || !h.s.IsLeader() {
		// forwarded as received: the leader makes the secret
		h.write(w, r, raw, cmdTokenCreate, req)
		return
	}
	secret := NewToken()
	req.Hash = HashToken(secret)
	rec := &bodyCapture{ResponseWriter: w}
	h.write(rec, r, raw, cmdTokenCreate, req)
	if rec.code != http.StatusOK {
		rec.flush()
		return
	}
	writeJSON(w, http.StatusOK, TokenCreated{Name: req.Name, Role: req.Role, Token: secret})
}

func (h *server) revokeToken(w http.ResponseWriter, r *http.Request) {
	req := TokenRequest{Name: r.PathValue("name"), By: identityOf(r).Name}
	raw, ok := readRequest(w, r, bodyRule{limit: smallBody, optional: true}, &struct{}{})
	if ok {
		h.write(w, r, raw, cmdTokenRevoke, req)
	}
}

// bodyCapture holds a response so that a handler can replace a success.
type bodyCapture struct {
	http.ResponseWriter
	code int
	body []byte
}

func (b *bodyCapture) WriteHeader(c int)           { b.code = c }
func (b *bodyCapture) Write(p []byte) (int, error) { b.body = append(b.body, p...); return len(p), nil }
func (b *bodyCapture) flush() {
	b.ResponseWriter.WriteHeader(b.code)
	b.ResponseWriter.Write(b.body)
}
