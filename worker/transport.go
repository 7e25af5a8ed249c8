package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore/pki"
)

// wireMessage is an LCC message on the wire: terms travel in canonical
// text, so that the receiver parses them with the same parser as policies.
type wireMessage struct {
	// V is the protocol's version, written only when above 1: a message
	// of version 1 has none, so workers of the releases before the field
	// (which refuse unknown fields) take it. A worker refuses a newer
	// version with 400 and says which it reads, rather than misread it.
	V           int           `json:"v,omitempty"`
	Interaction string        `json:"interaction"`
	Policy      lcc.PolicyRef `json:"policy"`
	From        string        `json:"from"`
	FromRole    string        `json:"from_role"`
	FromCurrent string        `json:"from_current"`
	To          string        `json:"to"`
	ToRole      string        `json:"to_role"`
	Body        string        `json:"body"`
}

// protocolVersion is the version of the worker-to-worker protocol this
// build speaks and reads up to.
const protocolVersion = 1

// maxMessageBytes bounds one LCC message on the wire: a call for
// proposals that carries its sender's role with a list of 4,000 peers
// fits; a flood of large messages cannot cost a worker much memory.
const maxMessageBytes = 64 << 10

func encodeMessage(m lcc.Message) wireMessage {
	w := wireMessage{Interaction: m.Interaction, Policy: m.Policy, From: m.FromID, To: m.ToID,
		FromRole: lcc.FormatTerm(m.FromRole), ToRole: lcc.FormatTerm(m.ToRole), Body: lcc.FormatTerm(m.Body)}
	if m.FromCurrent != nil {
		w.FromCurrent = lcc.FormatTerm(m.FromCurrent)
	}
	return w
}

func decodeMessage(w wireMessage) (lcc.Message, error) {
	m := lcc.Message{Interaction: w.Interaction, Policy: w.Policy, FromID: w.From, ToID: w.To}
	if w.V > protocolVersion || w.V < 0 {
		return m, fmt.Errorf("protocol version %d: this worker reads up to %d (upgrade it)", w.V, protocolVersion)
	}
	if w.Interaction == "" || w.From == "" || w.To == "" || w.Policy.Hash == "" {
		return m, errors.New("interaction, from, to and policy.hash are required")
	}
	var err error
	for _, f := range []struct {
		name string
		src  string
		dst  *lcc.Term
	}{{"from_role", w.FromRole, &m.FromRole}, {"to_role", w.ToRole, &m.ToRole}, {"body", w.Body, &m.Body}} {
		if *f.dst, err = lcc.ParseTerm(f.src); err != nil {
			return m, fmt.Errorf("%s: %v", f.name, err)
		}
	}
	if w.FromCurrent != "" {
		if m.FromCurrent, err = lcc.ParseTerm(w.FromCurrent); err != nil {
			return m, fmt.Errorf("from_current: %v", err)
		}
	}
	return m, nil
}

// httpTransport sends LCC messages to peers with POST /v1/lcc/messages.
// Peer addresses come from the store's list of live workers.
type httpTransport struct {
	client *http.Client
	scheme string
	mu     sync.RWMutex
	addrs  map[string]string // worker id -> address
	lookup func(ctx context.Context) (map[string]string, error)
}

func newHTTPTransport(lookup func(ctx context.Context) (map[string]string, error), t *pki.TLS) *httpTransport {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}
	scheme := "http://"
	if t != nil {
		tr.DialTLSContext, scheme = t.Dial, "https://"
	}
	return &httpTransport{client: &http.Client{Timeout: 5 * time.Second, Transport: tr}, scheme: scheme, addrs: map[string]string{}, lookup: lookup}
}

func (t *httpTransport) setPeers(addrs map[string]string) {
	t.mu.Lock()
	t.addrs = addrs
	t.mu.Unlock()
}

func (t *httpTransport) addr(ctx context.Context, id string) (string, bool) {
	t.mu.RLock()
	a, ok := t.addrs[id]
	t.mu.RUnlock()
	if ok || t.lookup == nil {
		return a, ok
	}
	addrs, err := t.lookup(ctx)
	if err != nil {
		return "", false
	}
	t.setPeers(addrs)
	a, ok = addrs[id]
	return a, ok
}

// Send implements lcc.Transport. A peer that cannot be reached, or that
// answers with an error, is reported as lcc.ErrUnreachable.
func (t *httpTransport) Send(ctx context.Context, m lcc.Message) error {
	addr, ok := t.addr(ctx, m.ToID)
	if !ok {
		return fmt.Errorf("%w: worker %s is not live", lcc.ErrUnreachable, m.ToID)
	}
	body, err := json.Marshal(encodeMessage(m))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.scheme+addr+"/v1/lcc/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s at %s: %v", lcc.ErrUnreachable, m.ToID, addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%w: %s answered %d: %s", lcc.ErrUnreachable, m.ToID, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// handleMessage receives a message from a peer.
func (w *Worker) handleMessage(rw http.ResponseWriter, r *http.Request) {
	if r.ContentLength > maxMessageBytes {
		w.refused.add("too_large")
		httpError(rw, http.StatusRequestEntityTooLarge, "message is %d bytes, over %d", r.ContentLength, maxMessageBytes)
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxMessageBytes+1))
	if err != nil || len(b) > maxMessageBytes {
		w.refused.add("too_large")
		httpError(rw, http.StatusRequestEntityTooLarge, "message is over %d bytes or unreadable", maxMessageBytes)
		return
	}
	var wm wireMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wm); err != nil {
		w.refused.add("bad_message")
		httpError(rw, http.StatusBadRequest, "bad message: %v", err)
		return
	}
	m, err := decodeMessage(wm)
	if err != nil {
		w.refused.add("bad_message")
		httpError(rw, http.StatusBadRequest, "bad message: %v", err)
		return
	}
	if status, reason, msg, ok := w.senderProblem(r, m.FromID); !ok {
		w.refused.add(reason)
		w.log.Warn().Str("interaction", m.Interaction).Str("policy", m.Policy.String()).Str("from", m.FromID).Str("reason", reason).Msg("refused a message: " + msg)
		httpError(rw, status, "%s", msg)
		return
	}
	if m.ToID != w.cfg.ID {
		w.refused.add("misdirected")
		httpError(rw, http.StatusMisdirectedRequest, "this is worker %s, not %s", w.cfg.ID, m.ToID)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := w.node.Deliver(ctx, m); err != nil {
		code, reason := http.StatusServiceUnavailable, "unavailable"
		switch {
		case errors.Is(err, lcc.ErrOverloaded):
			code, reason = http.StatusTooManyRequests, "overloaded"
			rw.Header().Set("Retry-After", "5")
		case errors.Is(err, lcc.ErrPolicyMismatch) || errors.Is(err, lcc.ErrUnknownRole):
			code, reason = http.StatusConflict, "policy_mismatch"
		}
		w.refused.add(reason)
		w.log.Warn().Err(err).Str("interaction", m.Interaction).Str("policy", m.Policy.String()).Str("from", m.FromID).Msg("refused a message")
		httpError(rw, code, "%v", err)
		return
	}
	rw.WriteHeader(http.StatusAccepted)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}
