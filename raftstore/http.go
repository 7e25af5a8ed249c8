package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/raft"
)

// The HTTP API. This file holds the routes and what every handler shares:
// reading and decoding a body, mapping result codes to statuses, writes
// proposed on the leader (or forwarded to it) and linearizable reads.
// Each resource's handlers are in their own file: http_policies.go,
// http_leases.go, http_hosts.go (hosts and workers), http_journal.go and
// http_cluster.go.

// Headers of the API.
const (
	HeaderRequestID = "Idempotency-Key"    // a write's request id: retries with it apply once
	headerForwarded = "X-Parley-Forwarded" // set on a request a follower passed to the leader
	maxRestoreBytes = 256 << 20            // a restore body may be a whole state
	smallBody       = 64 << 10             // bodies of requests that carry a few fields
	leaseBody       = 256 << 10            // lease requests carry up to MaxLeaseItems keys with attributes
)

// statusByCode maps the state machine's result codes to HTTP statuses.
var statusByCode = map[string]int{
	CodeBadRequest:      http.StatusBadRequest,
	CodeNotFound:        http.StatusNotFound,
	CodeInvalidPolicy:   http.StatusUnprocessableEntity,
	CodeVersionConflict: http.StatusConflict,
	CodeNoPrevious:      http.StatusConflict,
	CodeLeaseHeld:       http.StatusConflict,
	CodeLockDelay:       http.StatusConflict,
	CodeStaleToken:      http.StatusConflict,
	CodeTooLarge:        http.StatusRequestEntityTooLarge,
	CodeNoQuorum:        http.StatusServiceUnavailable,
	CodeUnknownOutcome:  http.StatusServiceUnavailable,
	CodeInternal:        http.StatusInternalServerError,
	CodeConflict:        http.StatusConflict,
	CodeQuota:           http.StatusConflict,
	CodeUnauthenticated: http.StatusUnauthorized,
	CodeForbidden:       http.StatusForbidden,

	CodeIdempotencyConflict: http.StatusUnprocessableEntity,
}

// httpStatus is the status a result code is sent with.
func httpStatus(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Handler returns the member's HTTP API.
func (s *Store) Handler() http.Handler {
	rt := newRouter()
	h := &server{s: s, fwd: httpClient(s.cfg.TLS, 30*time.Second)}
	h.policyRoutes(rt)
	h.leaseRoutes(rt)
	h.hostRoutes(rt)
	h.journalRoutes(rt)
	h.clusterRoutes(rt)
	h.tokenRoutes(rt)
	h.uiRoutes(rt)
	rt.handle("GET /metrics", readers, s.metrics.handler())
	rt.handleFunc("GET /healthz", anyone, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	h.root = h.count(h.authorize(rt))
	return h.root
}

type server struct {
	s    *Store
	fwd  *http.Client
	root http.Handler // the whole chain: a request served again after an election goes through it
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(c int) { r.code = c; r.ResponseWriter.WriteHeader(c) }

// Unwrap lets http.ResponseController reach the connection (event streams flush).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (h *server) count(next http.Handler) http.Handler {
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
	enc.Encode(v) // a client gone mid-response is not the server's error
}

// writeErr sends a refusal with the status of its code. It writes a copy:
// e may be a result the state machine keeps for deduplication.
func writeErr(w http.ResponseWriter, e *Error) {
	c := *e
	c.Status = httpStatus(c.Code)
	writeJSON(w, c.Status, map[string]*Error{"error": &c})
}

func unavailable(format string, args ...any) *Error {
	return errf(CodeNoQuorum, "", format, args...)
}

// readBody reads a request body up to limit. A body that says it is
// larger is refused before any of it is read.
func readBody(r *http.Request, limit int64) ([]byte, *Error) {
	if r.ContentLength > limit {
		return nil, errf(CodeTooLarge, "body", "request body is %d bytes, over the limit of %d", r.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badRequest("body", "read body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, errf(CodeTooLarge, "body", "request body is over the limit of %d bytes", limit)
	}
	return b, nil
}

// decode parses JSON strictly, naming what was wrong.
func decode(b []byte, v any) *Error {
	if !utf8.Valid(b) {
		// encoding/json would replace the bad bytes silently: refuse instead
		return badRequest("body", "the request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return badRequest("body", "the request body must be a JSON object, got %s", te.Value)
		case errors.As(err, &te):
			return badRequest(te.Field, "field %q must be %s, got %s", te.Field, te.Type, te.Value)
		case errors.As(err, &se):
			return badRequest("body", "invalid JSON at byte %d: %v", se.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			if field == "" {
				field = "body"
			}
			return badRequest(field, "%v", err)
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

// bodyRule says how a handler reads its request body.
type bodyRule struct {
	limit    int64
	optional bool // an empty body leaves the request at its zero value
}

// readRequest reads and strictly decodes a request body into req. On a
// problem it writes the refusal and returns ok false. raw is the body as
// received, for forwarding to the leader.
func readRequest(w http.ResponseWriter, r *http.Request, rule bodyRule, req any) (raw []byte, ok bool) {
	raw, e := readBody(r, rule.limit)
	if e == nil && !(rule.optional && len(bytes.TrimSpace(raw)) == 0) {
		e = decode(raw, req)
	}
	if e != nil {
		writeErr(w, e)
		return nil, false
	}
	return raw, true
}

// write proposes a command on the leader (forwarding when this member is
// not) and writes its result.
func (h *server) write(w http.ResponseWriter, r *http.Request, raw []byte, typ string, cmd any) {
	if !h.s.IsLeader() {
		h.forward(w, r, raw)
		return
	}
	res, err := h.s.ApplyAs(typ, r.Header.Get(HeaderRequestID), identityOf(r), cmd)
	if err != nil {
		switch {
		case errors.Is(err, ErrNotLeader):
			h.forward(w, r, raw)
		case errors.Is(err, raft.ErrLeadershipLost):
			writeErr(w, errf(CodeUnknownOutcome, "", "leadership was lost before the write was known to commit; retry with the same %s", HeaderRequestID))
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
	w.WriteHeader(http.StatusOK)
	w.Write(res.Data)
	w.Write([]byte("\n"))
}

// read serves a read: linearizable by default (on the leader, or
// forwarded to it), or from local state with ?stale=true. fn runs under
// the state's read lock and returns what to send; the response is written
// after the lock is released, so a slow client never holds up the state
// machine.
func (h *server) read(fn func(r *http.Request, s *State) (any, *Error)) http.HandlerFunc {
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
		var out any
		var e *Error
		h.s.fsm.read(func(s *State) { out, e = fn(r, s) })
		if e != nil {
			writeErr(w, e)
			return
		}
		if b, ok := out.(rawJSON); ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		if c, ok := out.(compactJSON); ok {
			writeCompactJSON(w, http.StatusOK, c.v)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// compactJSON is a read's answer to send on one line: the answers
// workers ask for at every tick or every change, where indenting cost a
// member more than the rest of the request.
type compactJSON struct{ v any }

// writeCompactJSON is writeJSON without the indentation.
func writeCompactJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) // a client gone mid-response is not the server's error
}

// rawJSON is a read's answer already encoded (under the lock, so that it
// copies the state).
type rawJSON []byte
