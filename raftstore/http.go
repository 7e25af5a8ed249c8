package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parleyhq/parley/lcc"
)

// Headers of the API.
const (
	HeaderRequestID = "Idempotency-Key"    // a write's request id: retries with it apply once
	headerForwarded = "X-Parley-Forwarded" // set on a request a follower passed to the leader
	maxRestoreBytes = 256 << 20            // a restore body may be a whole state
	cmdRestore      = "state.restore"      // replaces the state with a backup
)

// Handler returns the member's HTTP API.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	h := &api{s: s, fwd: &http.Client{Timeout: 30 * time.Second}}
	mux.HandleFunc("GET /v1/policies", h.read(h.listPolicies))
	mux.HandleFunc("GET /v1/policies/{name}", h.read(h.getActive))
	mux.HandleFunc("GET /v1/policies/{name}/versions", h.read(h.listVersions))
	mux.HandleFunc("GET /v1/policies/{name}/versions/{version}", h.read(h.getVersion))
	mux.HandleFunc("GET /v1/policies/{name}/history", h.read(h.history))
	mux.HandleFunc("GET /v1/policies/{name}/diff", h.read(h.diff))
	mux.HandleFunc("POST /v1/policies/{name}", h.push)
	mux.HandleFunc("POST /v1/policies/{name}/activate", h.activate(false))
	mux.HandleFunc("POST /v1/policies/{name}/rollback", h.activate(true))
	mux.HandleFunc("POST /v1/validate", h.validate)
	mux.HandleFunc("POST /v1/leases/acquire", h.acquire)
	mux.HandleFunc("POST /v1/leases/renew", h.renewOrRelease(cmdRenew))
	mux.HandleFunc("POST /v1/leases/release", h.renewOrRelease(cmdRelease))
	mux.HandleFunc("GET /v1/leases", h.read(h.listLeases))
	mux.HandleFunc("POST /v1/workers/heartbeat", h.heartbeat)
	mux.HandleFunc("GET /v1/workers", h.read(h.listWorkers))
	mux.HandleFunc("POST /v1/journal", h.appendJournal)
	mux.HandleFunc("GET /v1/journal", h.read(h.journal))
	mux.HandleFunc("GET /v1/hosts", h.read(h.listHosts))
	mux.HandleFunc("POST /v1/hosts/{name}/drain", h.drain(true))
	mux.HandleFunc("POST /v1/hosts/{name}/undrain", h.drain(false))
	mux.HandleFunc("POST /v1/hosts/{name}/report", h.hostReport)
	mux.HandleFunc("GET /v1/cluster/status", h.status)
	mux.HandleFunc("POST /v1/cluster/join", h.join)
	mux.HandleFunc("POST /v1/cluster/remove", h.remove)
	mux.HandleFunc("POST /v1/cluster/transfer", h.transfer)
	mux.HandleFunc("GET /v1/cluster/snapshot", h.read(h.snapshot))
	mux.HandleFunc("POST /v1/cluster/restore", h.restore)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.writeMetrics(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", h.ready)
	return h.count(mux)
}

type api struct {
	s   *Store
	fwd *http.Client
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(c int) { r.code = c; r.ResponseWriter.WriteHeader(c) }

func (h *api) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		h.s.metrics.observeRequest(rec.code)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeErr(w http.ResponseWriter, e *Error) {
	if e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

func unavailable(format string, args ...any) *Error {
	return errf(http.StatusServiceUnavailable, "no_quorum", "", format, args...)
}

// body reads a request body up to limit.
func body(r *http.Request, limit int64) ([]byte, *Error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badRequest("body", "read body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, errf(http.StatusRequestEntityTooLarge, "too_large", "body", "request body is over the limit of %d bytes", limit)
	}
	return b, nil
}

// decode parses JSON strictly, naming what was wrong.
func decode(b []byte, v any) *Error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return badRequest(te.Field, "field %q must be %s, got %s", te.Field, te.Type, te.Value)
		case errors.As(err, &se):
			return badRequest("body", "invalid JSON at byte %d: %v", se.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return badRequest(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "%v", err)
		case errors.Is(err, io.EOF):
			return badRequest("body", "request body is empty")
		}
		return badRequest("body", "%v", err)
	}
	if dec.More() {
		return badRequest("body", "request body holds more than one JSON value")
	}
	return nil
}

// forward passes a request to the leader, or answers 503 when there is
// none (or when it was already forwarded once).
func (h *api) forward(w http.ResponseWriter, r *http.Request, b []byte) {
	if r.Header.Get(headerForwarded) != "" {
		writeErr(w, unavailable("member %s was sent a forwarded request but is not the leader", h.s.cfg.ID))
		return
	}
	addr, ok := h.s.LeaderHTTP()
	if !ok || addr == h.s.cfg.HTTPAdvertise {
		writeErr(w, unavailable("no leader is known to member %s", h.s.cfg.ID))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+addr+r.URL.RequestURI(), bytes.NewReader(b))
	if err != nil {
		writeErr(w, errf(http.StatusInternalServerError, "internal", "", "forward: %v", err))
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Set(headerForwarded, h.s.cfg.ID)
	resp, err := h.fwd.Do(req)
	if err != nil {
		writeErr(w, unavailable("forward to leader %s: %v", addr, err))
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// write proposes a command on the leader (forwarding when this member is
// not) and writes its result.
func (h *api) write(w http.ResponseWriter, r *http.Request, raw []byte, typ string, cmd any, okStatus int) {
	if !h.s.IsLeader() {
		h.forward(w, r, raw)
		return
	}
	res, err := h.s.Apply(typ, r.Header.Get(HeaderRequestID), cmd)
	if err != nil {
		switch {
		case errors.Is(err, ErrNotLeader):
			h.forward(w, r, raw)
		case errors.Is(err, raft.ErrLeadershipLost):
			writeErr(w, errf(http.StatusServiceUnavailable, "unknown_outcome", "", "leadership was lost before the write was known to commit; retry with the same %s", HeaderRequestID))
		default:
			writeErr(w, unavailable("apply: %v", err))
		}
		return
	}
	if res.Error != nil {
		writeErr(w, res.Error)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(okStatus)
	w.Write(res.Data)
	w.Write([]byte("\n"))
}

// read serves a read: linearizable by default (on the leader, or
// forwarded to it), or from local state with ?stale=true.
func (h *api) read(fn func(w http.ResponseWriter, r *http.Request, s *State)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		stale, _ := strconv.ParseBool(r.URL.Query().Get("stale"))
		if !stale {
			if !h.s.IsLeader() {
				h.forward(w, r, nil)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), h.s.cfg.ApplyTimeout)
			defer cancel()
			if err := h.s.LinearizableRead(ctx); err != nil {
				if errors.Is(err, ErrNotLeader) {
					h.forward(w, r, nil)
					return
				}
				writeErr(w, unavailable("linearizable read: %v", err))
				return
			}
		}
		h.s.fsm.read(func(s *State) { fn(w, r, s) })
	}
}

// ---- policies ----

// PolicySummary is one line of the policy list.
type PolicySummary struct {
	Name     string `json:"name"`
	Active   int    `json:"active"`
	Latest   int    `json:"latest"`
	SHA256   string `json:"sha256,omitempty"`
	Modified int64  `json:"modified"`
}

func (h *api) listPolicies(w http.ResponseWriter, r *http.Request, s *State) {
	out := []PolicySummary{}
	for _, p := range s.Policies {
		ps := PolicySummary{Name: p.Name, Active: p.Active, Latest: len(p.Versions), Modified: p.Versions[len(p.Versions)-1].Time}
		if p.Active > 0 {
			ps.SHA256 = p.Versions[p.Active-1].SHA256
		}
		if n := len(p.Activations); n > 0 && p.Activations[n-1].Time > ps.Modified {
			ps.Modified = p.Activations[n-1].Time
		}
		out = append(out, ps)
	}
	sortBy(out, func(a, b PolicySummary) bool { return a.Name < b.Name })
	writeJSON(w, http.StatusOK, out)
}

func (h *api) policy(w http.ResponseWriter, r *http.Request, s *State) *Policy {
	name := r.PathValue("name")
	p := s.Policies[name]
	if p == nil {
		writeErr(w, errf(http.StatusNotFound, "not_found", "name", "no policy %q", name))
	}
	return p
}

func (h *api) getActive(w http.ResponseWriter, r *http.Request, s *State) {
	p := h.policy(w, r, s)
	if p == nil {
		return
	}
	if p.Active == 0 {
		writeErr(w, errf(http.StatusNotFound, "not_found", "version", "policy %q has no active version", p.Name))
		return
	}
	writeJSON(w, http.StatusOK, p.Versions[p.Active-1])
}

func withoutText(vs []PolicyVersion) []PolicyVersion {
	out := make([]PolicyVersion, len(vs))
	for i, v := range vs {
		v.Text = ""
		out[i] = v
	}
	return out
}

func (h *api) listVersions(w http.ResponseWriter, r *http.Request, s *State) {
	if p := h.policy(w, r, s); p != nil {
		writeJSON(w, http.StatusOK, withoutText(p.Versions))
	}
}

func versionOf(p *Policy, field, v string) (*PolicyVersion, *Error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, badRequest(field, "version %q is not a number", v)
	}
	if n < 1 || n > len(p.Versions) {
		return nil, errf(http.StatusNotFound, "not_found", field, "policy %q has no version %d (latest is %d)", p.Name, n, len(p.Versions))
	}
	return &p.Versions[n-1], nil
}

func (h *api) getVersion(w http.ResponseWriter, r *http.Request, s *State) {
	p := h.policy(w, r, s)
	if p == nil {
		return
	}
	v, e := versionOf(p, "version", r.PathValue("version"))
	if e != nil {
		writeErr(w, e)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// History is a policy's versions (without texts) and activations.
type History struct {
	Name        string          `json:"name"`
	Active      int             `json:"active"`
	Versions    []PolicyVersion `json:"versions"`
	Activations []Activation    `json:"activations"`
}

func (h *api) history(w http.ResponseWriter, r *http.Request, s *State) {
	if p := h.policy(w, r, s); p != nil {
		writeJSON(w, http.StatusOK, History{Name: p.Name, Active: p.Active, Versions: withoutText(p.Versions), Activations: append([]Activation{}, p.Activations...)})
	}
}

func (h *api) diff(w http.ResponseWriter, r *http.Request, s *State) {
	p := h.policy(w, r, s)
	if p == nil {
		return
	}
	a, e := versionOf(p, "from", r.URL.Query().Get("from"))
	if e != nil {
		writeErr(w, e)
		return
	}
	b, e := versionOf(p, "to", r.URL.Query().Get("to"))
	if e != nil {
		writeErr(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": p.Name, "from": a.Version, "to": b.Version,
		"diff": UnifiedDiff(fmt.Sprintf("%s@v%d", p.Name, a.Version), fmt.Sprintf("%s@v%d", p.Name, b.Version), a.Text, b.Text)})
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

func (h *api) check(name string, text []byte) lcc.ErrorList {
	if h.s.cfg.Validator != nil {
		return h.s.cfg.Validator(name, text)
	}
	m, errs := lcc.Parse(name+".lcc", text)
	if errs.HasErrors() {
		return errs
	}
	return lcc.Check(m, nil)
}

func (h *api) push(w http.ResponseWriter, r *http.Request) {
	raw, e := body(r, h.s.cfg.MaxBodyBytes)
	if e != nil {
		writeErr(w, e)
		return
	}
	var req PushRequest
	if e := decode(raw, &req); e != nil {
		writeErr(w, e)
		return
	}
	req.Name = r.PathValue("name")
	if !policyNameRe.MatchString(req.Name) {
		writeErr(w, badRequest("name", "policy name %q must match %s", req.Name, policyNameRe))
		return
	}
	if len(req.Text) > MaxPolicyBytes {
		writeErr(w, errf(http.StatusRequestEntityTooLarge, "too_large", "text", "policy text is %d bytes, over the limit of %d", len(req.Text), MaxPolicyBytes))
		return
	}
	if diags := h.check(req.Name, []byte(req.Text)); diags.HasErrors() {
		writeErr(w, &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_policy", Field: "text",
			Message: fmt.Sprintf("policy %s has %d errors; nothing was written", req.Name, len(diags.Errors())), Details: diagnostics(diags)})
		return
	}
	h.write(w, r, raw, cmdPush, req, http.StatusOK)
}

func (h *api) validate(w http.ResponseWriter, r *http.Request) {
	raw, e := body(r, h.s.cfg.MaxBodyBytes)
	if e != nil {
		writeErr(w, e)
		return
	}
	var req struct {
		Name string `json:"name"`
		Text string `json:"text"`
	}
	if e := decode(raw, &req); e != nil {
		writeErr(w, e)
		return
	}
	if req.Name == "" {
		req.Name = "policy"
	}
	diags := h.check(req.Name, []byte(req.Text))
	writeJSON(w, http.StatusOK, map[string]any{"valid": !diags.HasErrors(), "diagnostics": diagnostics(diags)})
}

func (h *api) activate(rollback bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, e := body(r, 64<<10)
		if e != nil {
			writeErr(w, e)
			return
		}
		var req ActivateRequest
		if len(bytes.TrimSpace(raw)) > 0 {
			if e := decode(raw, &req); e != nil {
				writeErr(w, e)
				return
			}
		}
		req.Name, req.Rollback = r.PathValue("name"), rollback
		if !rollback && req.Version < 1 {
			writeErr(w, badRequest("version", "version must be 1 or more"))
			return
		}
		h.write(w, r, raw, cmdActivate, req, http.StatusOK)
	}
}

// ---- leases ----

func (h *api) acquire(w http.ResponseWriter, r *http.Request) {
	raw, e := body(r, 256<<10)
	if e != nil {
		writeErr(w, e)
		return
	}
	var req AcquireRequest
	if e := decode(raw, &req); e != nil {
		writeErr(w, e)
		return
	}
	req.LockDelayMillis = h.s.cfg.LeaseLockDelay.Milliseconds()
	h.write(w, r, raw, cmdAcquire, req, http.StatusOK)
}

func (h *api) renewOrRelease(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, e := body(r, 256<<10)
		if e != nil {
			writeErr(w, e)
			return
		}
		var req RenewRequest
		if e := decode(raw, &req); e != nil {
			writeErr(w, e)
			return
		}
		h.write(w, r, raw, typ, req, http.StatusOK)
	}
}

func (h *api) listLeases(w http.ResponseWriter, r *http.Request, s *State) {
	out := s.listLeases(r.URL.Query().Get("prefix"), time.Now().UnixNano())
	if out == nil {
		out = []LeaseView{}
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- workers and journal ----

func (h *api) heartbeat(w http.ResponseWriter, r *http.Request) {
	raw, e := body(r, 64<<10)
	if e != nil {
		writeErr(w, e)
		return
	}
	var req HeartbeatRequest
	if e := decode(raw, &req); e != nil {
		writeErr(w, e)
		return
	}
	h.write(w, r, raw, cmdHeartbeat, req, http.StatusOK)
}

func (h *api) listWorkers(w http.ResponseWriter, r *http.Request, s *State) {
	out := s.liveWorkers(time.Now().UnixNano(), h.s.cfg.WorkerTTL)
	if out == nil {
		out = []Worker{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *api) appendJournal(w http.ResponseWriter, r *http.Request) {
	raw, e := body(r, h.s.cfg.MaxBodyBytes)
	if e != nil {
		writeErr(w, e)
		return
	}
	var req JournalRequest
	if e := decode(raw, &req); e != nil {
		writeErr(w, e)
		return
	}
	req.Limit = h.s.cfg.JournalLimit
	h.write(w, r, raw, cmdJournal, req, http.StatusOK)
}

func (h *api) journal(w http.ResponseWriter, r *http.Request, s *State) {
	q := r.URL.Query()
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeErr(w, badRequest("since", "since %q is not a journal index", v))
			return
		}
		since = n
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			writeErr(w, badRequest("limit", "limit must be between 1 and 100000"))
			return
		}
		limit = n
	}
	out := s.journalSince(since, limit)
	writeJSON(w, http.StatusOK, out)
}

// ---- hosts ----

func (h *api) listHosts(w http.ResponseWriter, r *http.Request, s *State) {
	out := []HostState{}
	for _, x := range s.Hosts {
		out = append(out, *x)
	}
	sortBy(out, func(a, b HostState) bool { return a.Name < b.Name })
	writeJSON(w, http.StatusOK, out)
}

func (h *api) drain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, e := body(r, 64<<10)
		if e != nil {
			writeErr(w, e)
			return
		}
		var req HostRequest
		if len(bytes.TrimSpace(raw)) > 0 {
			if e := decode(raw, &req); e != nil {
				writeErr(w, e)
				return
			}
		}
		req.Name, req.Drain = r.PathValue("name"), on
		h.write(w, r, raw, cmdHostDrain, req, http.StatusOK)
	}
}

func (h *api) hostReport(w http.ResponseWriter, r *http.Request) {
	raw, e := body(r, 64<<10)
	if e != nil {
		writeErr(w, e)
		return
	}
	var req HostReport
	if e := decode(raw, &req); e != nil {
		writeErr(w, e)
		return
	}
	req.Name = r.PathValue("name")
	h.write(w, r, raw, cmdHostReport, req, http.StatusOK)
}

// ---- cluster ----

func (h *api) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.s.Status())
}

func (h *api) ready(w http.ResponseWriter, r *http.Request) {
	st := h.s.Status()
	if st.Leader == "" {
		writeErr(w, unavailable("no leader"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "leader": st.Leader})
}

func (h *api) clusterOp(w http.ResponseWriter, r *http.Request, op func(req MemberRequest) error) {
	raw, e := body(r, 64<<10)
	if e != nil {
		writeErr(w, e)
		return
	}
	var req MemberRequest
	if len(bytes.TrimSpace(raw)) > 0 {
		if e := decode(raw, &req); e != nil {
			writeErr(w, e)
			return
		}
	}
	if !h.s.IsLeader() {
		h.forward(w, r, raw)
		return
	}
	if err := op(req); err != nil {
		var ae *Error
		switch {
		case errors.As(err, &ae):
			writeErr(w, ae)
		case errors.Is(err, ErrNotLeader):
			h.forward(w, r, raw)
		default:
			writeErr(w, unavailable("%v", err))
		}
		return
	}
	writeJSON(w, http.StatusOK, h.s.Status())
}

func (h *api) join(w http.ResponseWriter, r *http.Request) {
	h.clusterOp(w, r, func(req MemberRequest) error {
		if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
			return badRequest("id", "join needs id, raft_addr and http_addr")
		}
		if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
			return badRequest("raft_addr", "raft_addr %q: %v", req.RaftAddr, err)
		}
		return h.s.Join(req.ID, req.RaftAddr, req.HTTPAddr)
	})
}

func (h *api) remove(w http.ResponseWriter, r *http.Request) {
	h.clusterOp(w, r, func(req MemberRequest) error {
		if req.ID == "" {
			return badRequest("id", "remove needs the member id")
		}
		return h.s.Remove(req.ID)
	})
}

func (h *api) transfer(w http.ResponseWriter, r *http.Request) {
	h.clusterOp(w, r, func(req MemberRequest) error { return h.s.Transfer(req.ID) })
}

func (h *api) snapshot(w http.ResponseWriter, r *http.Request, s *State) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", "attachment; filename=parley-store.json")
	json.NewEncoder(w).Encode(s)
}

func (h *api) restore(w http.ResponseWriter, r *http.Request) {
	raw, e := body(r, maxRestoreBytes)
	if e != nil {
		writeErr(w, e)
		return
	}
	if _, err := decodeState(bytes.NewReader(raw)); err != nil {
		writeErr(w, badRequest("body", "not a parley store snapshot: %v", err))
		return
	}
	h.write(w, r, raw, cmdRestore, json.RawMessage(raw), http.StatusOK)
}
