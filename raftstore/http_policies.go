package raftstore

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/parleyhq/parley/lcc"
)

func (h *server) policyRoutes(rt *router) {
	rt.handleFunc("GET /v1/policies", readers, h.read(func(_ *http.Request, s *State) (any, *Error) { return s.policySummaries(), nil }))
	rt.handleFunc("GET /v1/policies/{name}", readers, h.blocking(h.read(func(r *http.Request, s *State) (any, *Error) { return s.activeVersion(r.PathValue("name")) })))
	rt.handleFunc("GET /v1/policies/{name}/versions", readers, h.read(h.listVersions))
	rt.handleFunc("GET /v1/policies/{name}/versions/{version}", readers, h.read(h.getVersion))
	rt.handleFunc("GET /v1/policies/{name}/history", readers, h.read(h.history))
	rt.handleFunc("GET /v1/policies/{name}/diff", readers, h.read(h.diff))
	rt.handleFunc("POST /v1/policies/{name}", operators, h.push)
	rt.handleFunc("POST /v1/policies/{name}/activate", operators, h.activate(false))
	rt.handleFunc("POST /v1/policies/{name}/rollback", operators, h.activate(true))
	rt.handleFunc("POST /v1/validate", operators, h.validate)
}

func (h *server) listVersions(r *http.Request, s *State) (any, *Error) {
	p, e := s.policy(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	return withoutText(p.Versions), nil
}

// versionParam reads a version number from the request.
func versionParam(p *Policy, field, v string) (PolicyVersion, *Error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return PolicyVersion{}, badRequest(field, "version %q is not a number", v)
	}
	return p.version(field, n)
}

func (h *server) getVersion(r *http.Request, s *State) (any, *Error) {
	p, e := s.policy(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	return versionParam(p, "version", r.PathValue("version"))
}

func (h *server) history(r *http.Request, s *State) (any, *Error) {
	p, e := s.policy(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	return p.history(), nil
}

func (h *server) diff(r *http.Request, s *State) (any, *Error) {
	p, e := s.policy(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	a, e := versionParam(p, "from", r.URL.Query().Get("from"))
	if e != nil {
		return nil, e
	}
	b, e := versionParam(p, "to", r.URL.Query().Get("to"))
	if e != nil {
		return nil, e
	}
	return map[string]any{"name": p.Name, "from": a.Version, "to": b.Version,
		"diff": UnifiedDiff(fmt.Sprintf("%s@v%d", p.Name, a.Version), fmt.Sprintf("%s@v%d", p.Name, b.Version), a.Text, b.Text)}, nil
}

// Diagnostic is one checker message, for the API.
type Diagnostic struct {
	Pos      string `json:"pos"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

func diagnostics(l lcc.ErrorList) []Diagnostic {
	out := []Diagnostic{}
	for _, e := range l {
		out = append(out, Diagnostic{Pos: e.Pos.String(), Line: e.Pos.Line, Col: e.Pos.Col, Severity: e.Severity.String(), Message: e.Msg})
	}
	return out
}

func (h *server) check(name string, text []byte) lcc.ErrorList {
	if h.s.cfg.Validator != nil {
		return h.s.cfg.Validator(name, text)
	}
	m, errs := lcc.Parse(name+".lcc", text)
	if errs.HasErrors() {
		return errs
	}
	return lcc.Check(m, nil)
}

func (h *server) push(w http.ResponseWriter, r *http.Request) {
	var req PushRequest
	raw, ok := readRequest(w, r, bodyRule{limit: h.s.cfg.MaxBodyBytes}, &req)
	if !ok {
		return
	}
	req.Name = r.PathValue("name")
	if !policyNameRe.MatchString(req.Name) {
		writeErr(w, badRequest("name", "policy name %q must match %s", req.Name, policyNameRe))
		return
	}
	if len(req.Text) > MaxPolicyBytes {
		writeErr(w, errf(CodeTooLarge, "text", "policy text is %d bytes, over the limit of %d", len(req.Text), MaxPolicyBytes))
		return
	}
	if id := identityOf(r); id.Name != "" {
		// the author is who pushed; a name the client gave is kept as a note
		if req.Author != "" && req.Author != id.Name {
			req.Note = "author given: " + req.Author
		}
		req.Author = id.Name
	}
	if diags := h.check(req.Name, []byte(req.Text)); diags.HasErrors() {
		writeErr(w, &Error{Code: CodeInvalidPolicy, Field: "text",
			Message: fmt.Sprintf("policy %s has %d errors; nothing was written", req.Name, len(diags.Errors())), Details: diagnostics(diags)})
		return
	}
	h.write(w, r, raw, cmdPush, req)
}

// ValidateResult is the checker's verdict on a text.
type ValidateResult struct {
	Valid       bool         `json:"valid"`
	Diagnostics []Diagnostic `json:"diagnostics"`
}

func (h *server) validate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
		Text string `json:"text"`
	}
	if _, ok := readRequest(w, r, bodyRule{limit: h.s.cfg.MaxBodyBytes}, &req); !ok {
		return
	}
	if req.Name == "" {
		req.Name = "policy"
	}
	diags := h.check(req.Name, []byte(req.Text))
	writeJSON(w, http.StatusOK, ValidateResult{Valid: !diags.HasErrors(), Diagnostics: diagnostics(diags)})
}

func (h *server) activate(rollback bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req ActivateRequest
		raw, ok := readRequest(w, r, bodyRule{limit: smallBody, optional: true}, &req)
		if !ok {
			return
		}
		req.Name, req.Rollback = r.PathValue("name"), rollback
		if !rollback && req.Version < 1 {
			writeErr(w, badRequest("version", "version must be 1 or more"))
			return
		}
		if id := identityOf(r); id.Name != "" {
			if req.Who != "" && req.Who != id.Name {
				req.Note = "who given: " + req.Who
			}
			req.Who = id.Name
		}
		h.write(w, r, raw, cmdActivate, req)
	}
}

// maxWait bounds a blocking query's wait.
const maxWait = time.Minute // under the server's write timeout

// blocking makes GET /v1/policies/{name} a blocking query: with
// ?wait=DURATION&sha256=HASH it answers as soon as the active version's
// hash is not HASH (pushed, activated, rolled back, restored; or the
// policy gone), or when the wait is over, with the active version either
// way. A worker keeps one such request open per policy instead of reading
// the active version at every tick. With stale=true any member waits and
// answers from its own state; otherwise the leader does.
func (h *server) blocking(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ws := q.Get("wait")
		if ws == "" {
			next(w, r)
			return
		}
		wait, err := time.ParseDuration(ws)
		if err != nil || wait < 0 || wait > maxWait {
			writeErr(w, badRequest("wait", "wait %q must be a duration from 0 to %s", ws, maxWait))
			return
		}
		have := q.Get("sha256")
		stale, _ := strconv.ParseBool(q.Get("stale"))
		if !stale && !h.s.IsLeader() {
			h.forward(w, r, nil) // the leader waits
			return
		}
		name := r.PathValue("name")
		timer := time.NewTimer(wait)
		defer timer.Stop()
		for {
			ch := h.s.fsm.changes()
			current := ""
			h.s.fsm.read(func(s *State) {
				if v, e := s.activeVersion(name); e == nil {
					current = v.SHA256
				}
			})
			if current != have {
				break
			}
			select {
			case <-ch:
				continue
			case <-timer.C:
			case <-r.Context().Done():
				return
			case <-h.s.stop:
			}
			break
		}
		next(w, r)
	}
}
