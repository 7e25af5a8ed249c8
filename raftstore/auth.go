package raftstore

import (
	"context"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/raftstore/pki"
)

// Who may call what. Every route names the roles that may call it; a
// member of the raft group, recognised by its certificate, may call any
// (members forward writes and ask each other how far they have caught
// up). Handlers bind what a worker may do to its own name (bindWorker).

// access is the rule of one route.
type access struct {
	public bool     // no token needed
	roles  []string // roles allowed; admin always is
}

var (
	anyone    = access{public: true}
	readers   = access{roles: []string{RoleOperator, RoleWorker, RoleReader}}
	operators = access{roles: []string{RoleOperator}}
	workers   = access{roles: []string{RoleWorker}}
	releasers = access{roles: []string{RoleWorker, RoleOperator}} // an operator's release of another's lease is forced, and audited
	admins    = access{}
)

// router registers each route with its access rule, in one call, so that
// no route is served without a rule: the rule table is the registration.
type router struct {
	mux   *http.ServeMux
	rules map[string]access // by ServeMux pattern
}

func newRouter() *router { return &router{mux: http.NewServeMux(), rules: map[string]access{}} }

func (rt *router) handle(pattern string, rule access, h http.Handler) {
	if _, dup := rt.rules[pattern]; dup {
		panic("raftstore: route registered twice: " + pattern) // a programming error, at start
	}
	rt.rules[pattern] = rule
	rt.mux.Handle(pattern, h)
}

func (rt *router) handleFunc(pattern string, rule access, h http.HandlerFunc) {
	rt.handle(pattern, rule, h)
}

func (a access) allows(role string) bool {
	if role == RoleAdmin {
		return true
	}
	for _, r := range a.roles {
		if r == role {
			return true
		}
	}
	return false
}

// Identity is who a request comes from: a token's name and role, or a
// store member recognised by its certificate.
type Identity struct {
	Name   string
	Role   string
	Member bool
}

type identityKey struct{}

var errUnknownToken = errf(CodeUnauthenticated, "", "the token is not known to this store (revoked, or never created)")

// identityOf is the request's authenticated identity; the zero Identity
// when the store runs without authentication (--insecure).
func identityOf(r *http.Request) Identity {
	id, _ := r.Context().Value(identityKey{}).(Identity)
	return id
}

// authorize wraps the API: it finds the route's rule, authenticates the
// caller (401 when it cannot) and checks the rule (403).
// A request that matches no route still needs a token (any role) before
// the mux answers 404 or 405; a route without a rule (none can be
// registered so) is refused to all but members and admins: it fails
// closed.
func (h *server) authorize(rt *router) http.Handler {
	mux := rt.mux
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.s.cfg.Insecure {
			mux.ServeHTTP(w, r)
			return
		}
		_, pattern := mux.Handler(r)
		rule, known := rt.rules[pattern]
		switch {
		case known:
		case pattern == "":
			rule = readers // no such route: the mux answers 404 or 405 to whoever has a token
		default:
			rule = admins // a route with no rule: closed
		}
		if rule.public || (pattern == "GET /metrics" && h.s.cfg.MetricsPublic) {
			mux.ServeHTTP(w, r)
			return
		}
		id, e := h.authenticate(r)
		if e == errUnknownToken && !h.s.IsLeader() && r.Header.Get(headerForwarded) == "" {
			// the token may be newer than this member's state: the leader decides
			if b, e := readBody(r, h.s.cfg.MaxBodyBytes); e == nil {
				h.forward(w, r, b)
				return
			}
		}
		if e != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
			writeErr(w, e)
			return
		}
		if !id.Member && !rule.allows(id.Role) {
			writeErr(w, errf(CodeForbidden, "", "%s %q may not call %s", id.Role, id.Name, pattern))
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// authenticate finds the caller: a bearer token the store knows, or
// (without a token) a member's certificate. A worker's token must come
// with the certificate of the same name: a stolen token alone is not
// enough to act as a worker.
func (h *server) authenticate(r *http.Request) (Identity, *Error) {
	peer := pki.PeerName(r.TLS)
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if peer != "" && h.s.isMember(peer) {
			return Identity{Name: peer, Role: RoleAdmin, Member: true}, nil
		}
		return Identity{}, errf(CodeUnauthenticated, "", "this call needs a token: send Authorization: Bearer TOKEN (parley reads it from PARLEY_TOKEN or --token-file)")
	}
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || strings.TrimSpace(secret) == "" {
		return Identity{}, errf(CodeUnauthenticated, "", "the Authorization header must be Bearer TOKEN")
	}
	t := h.lookupToken(secret)
	if t == nil && h.s.IsLeader() {
		// a new leader may not have applied every committed entry yet:
		// catch up, then look again, before calling the token unknown
		ctx, cancel := context.WithTimeout(r.Context(), h.s.cfg.ApplyTimeout)
		if h.s.LinearizableRead(ctx) == nil {
			t = h.lookupToken(secret)
		}
		cancel()
	}
	if t == nil {
		return Identity{}, errUnknownToken
	}
	if t.Role == RoleWorker && peer != t.Name {
		if peer == "" {
			return Identity{}, errf(CodeUnauthenticated, "", "worker token %q must come with the worker's certificate (common name %q)", t.Name, t.Name)
		}
		if !h.s.isMember(peer) { // a member forwarding the worker's request presents its own certificate
			return Identity{}, errf(CodeUnauthenticated, "", "worker token %q came with the certificate of %q", t.Name, peer)
		}
	}
	return Identity{Name: t.Name, Role: t.Role}, nil
}

// lookupToken finds the token of a secret in this member's state.
func (h *server) lookupToken(secret string) *Token {
	var t *Token
	h.s.fsm.read(func(s *State) {
		if x, ok := s.tokenBySecret(secret); ok {
			c := *x
			t = &c
		} else if !s.hasAdmin() && h.s.cfg.AdminToken != "" && HashToken(secret) == HashToken(h.s.cfg.AdminToken) {
			// a new cluster between its bootstrap and the seeding of this token
			t = &Token{Name: "admin", Role: RoleAdmin}
		}
	})
	return t
}

// prepare is the HTTP side of the one write path (write.go): it binds
// the caller's identity into req, fills in the store's settings and
// validates it, answering the refusal itself; false means refused.
func (h *server) prepare(w http.ResponseWriter, r *http.Request, req any) bool {
	if e := settingsOf(h.s.cfg).prepare(identityOf(r), req); e != nil {
		writeErr(w, e)
		return false
	}
	return true
}
