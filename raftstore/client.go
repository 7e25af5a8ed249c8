package raftstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/raftstore/pki"
)

// Client talks to the store. It takes several member addresses, sticks to
// the member that answered last (the leader, after forwarding settles),
// and retries on connection failures and on 503 with back-off, moving to
// the next member. Writes carry a request id that is reused across
// retries, so a retried write applies once.
type Client struct {
	addrs   []string
	http    *http.Client
	token   string
	current atomic.Int64
	// reader is the member stale reads go to first: one chosen at random
	// per client, so that many workers' stale reads spread over the
	// members instead of all reaching the one writes go to.
	reader atomic.Int64
	// Timeout bounds one call including its retries when the context has
	// no deadline. Default 15s.
	Timeout time.Duration
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	tls   *pki.TLS
	token string
}

// WithTLS makes the client speak HTTPS, trusting the CA of t and offering
// its certificate when it has one. Addresses without a scheme get https.
func WithTLS(t *pki.TLS) ClientOption { return func(o *clientOptions) { o.tls = t } }

// WithToken sends the bearer token with every request.
func WithToken(secret string) ClientOption {
	return func(o *clientOptions) { o.token = strings.TrimSpace(secret) }
}

// NewClient returns a client for members at addrs (host:port or URLs).
func NewClient(addrs []string, opts ...ClientOption) (*Client, error) {
	var o clientOptions
	for _, f := range opts {
		f(&o)
	}
	var clean []string
	for _, a := range addrs {
		for _, p := range strings.Split(a, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if !strings.Contains(p, "://") {
				p = scheme(o.tls) + p
			}
			u, err := url.Parse(p)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("raftstore: store address %q is not host:port", p)
			}
			if o.tls != nil && u.Scheme != "https" {
				return nil, fmt.Errorf("raftstore: store address %q is not https, but TLS is configured", p)
			}
			clean = append(clean, strings.TrimSuffix(u.String(), "/"))
		}
	}
	if len(clean) == 0 {
		return nil, errors.New("raftstore: no store address given")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: 90 * time.Second}
	if o.tls != nil {
		tr.DialTLSContext = o.tls.Dial
	}
	c := &Client{addrs: clean, token: o.token, http: &http.Client{Timeout: 20 * time.Second, Transport: tr}, Timeout: 15 * time.Second}
	c.reader.Store(mrand.Int64N(int64(len(clean))))
	return c, nil
}

// NewRequestID returns a random request id.
func NewRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// do sends one logical request, retrying as described on Client. out may be
// nil; raw, when non-nil, receives the body instead of JSON decoding.
func (c *Client) do(ctx context.Context, method, path string, in any, out any) error {
	var payload []byte
	if in != nil {
		if b, ok := in.([]byte); ok {
			payload = b
		} else {
			b, err := json.Marshal(in)
			if err != nil {
				return err
			}
			payload = b
		}
	}
	reqID := ""
	if method == http.MethodPost && !isIdempotent(path) {
		reqID = NewRequestID()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var lastErr error
	at := &c.current
	if method == http.MethodGet && strings.Contains(path, "stale=true") {
		at = &c.reader
	}
	for attempt := 0; ; attempt++ {
		i := int(at.Load()) % len(c.addrs)
		retry, err := c.attempt(ctx, c.addrs[i], method, path, payload, reqID, out)
		if err == nil || !retry {
			return err
		}
		lastErr = err
		at.CompareAndSwap(int64(i), int64((i+1)%len(c.addrs)))
		backoff := time.Duration(math.Min(float64(25*time.Millisecond)*math.Pow(1.6, float64(attempt)), float64(time.Second)))
		backoff += time.Duration(mrand.Int64N(int64(backoff/2) + 1))
		select {
		case <-ctx.Done():
			return &Error{Status: http.StatusServiceUnavailable, Code: "no_quorum",
				Message: fmt.Sprintf("no store member could serve %s %s before the deadline (tried %s): %v", method, path, strings.Join(c.addrs, ", "), lastErr)}
		case <-time.After(backoff):
		}
	}
}

// attempt sends the request to one member. retry says whether another
// member (or this one, later) may succeed where this attempt failed: a
// connection failure, a 5xx without a parley error, or a 503.
func (c *Client) attempt(ctx context.Context, base, method, path string, payload []byte, reqID string, out any) (retry bool, err error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return false, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if reqID != "" {
		req.Header.Set(HeaderRequestID, reqID)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// a certificate the client cannot trust will not become trusted by retrying
		var verr *tls.CertificateVerificationError
		var uerr x509.UnknownAuthorityError
		var herr x509.HostnameError
		if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) {
			return false, fmt.Errorf("%s: %w", base, err)
		}
		return true, fmt.Errorf("%s: %w", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return true, fmt.Errorf("%s: read response: %w", base, err)
	}
	if resp.StatusCode >= 300 {
		var wrap struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(data, &wrap) != nil || wrap.Error == nil {
			e := &Error{Status: resp.StatusCode, Code: "internal", Message: strings.TrimSpace(string(data))}
			return resp.StatusCode >= 500, e
		}
		wrap.Error.Status = resp.StatusCode
		return resp.StatusCode == http.StatusServiceUnavailable, wrap.Error
	}
	switch o := out.(type) {
	case nil:
	case *[]byte:
		*o = data
	default:
		if err := json.Unmarshal(data, out); err != nil {
			return false, fmt.Errorf("%s: decode response: %w", base, err)
		}
	}
	return false, nil
}

func staleQuery(stale bool) string {
	if stale {
		return "stale=true"
	}
	return ""
}

func withQuery(path string, q ...string) string {
	var parts []string
	for _, p := range q {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return path
	}
	return path + "?" + strings.Join(parts, "&")
}

// ---- policies ----

// ListPolicies lists policies.
func (c *Client) ListPolicies(ctx context.Context) ([]PolicySummary, error) {
	var out []PolicySummary
	return out, c.do(ctx, http.MethodGet, "/v1/policies", nil, &out)
}

// ActivePolicy returns the active version of a policy, text included.
func (c *Client) ActivePolicy(ctx context.Context, name string, stale bool) (*PolicyVersion, error) {
	var out PolicyVersion
	return &out, c.do(ctx, http.MethodGet, withQuery("/v1/policies/"+url.PathEscape(name), staleQuery(stale)), nil, &out)
}

// WaitActivePolicy is a blocking query: it returns the active version of
// a policy as soon as its hash is not sha256, or after wait (at most a
// minute, and under the client's HTTP timeout), from any member's state.
func (c *Client) WaitActivePolicy(ctx context.Context, name, sha256 string, wait time.Duration) (*PolicyVersion, error) {
	var out PolicyVersion
	q := url.Values{"stale": {"true"}, "wait": {wait.String()}, "sha256": {sha256}}
	return &out, c.do(ctx, http.MethodGet, "/v1/policies/"+url.PathEscape(name)+"?"+q.Encode(), nil, &out)
}

// PolicyVersion returns one version, text included.
func (c *Client) PolicyVersion(ctx context.Context, name string, version int) (*PolicyVersion, error) {
	var out PolicyVersion
	return &out, c.do(ctx, http.MethodGet, "/v1/policies/"+url.PathEscape(name)+"/versions/"+strconv.Itoa(version), nil, &out)
}

// History returns a policy's versions and activations.
func (c *Client) History(ctx context.Context, name string) (*History, error) {
	var out History
	return &out, c.do(ctx, http.MethodGet, "/v1/policies/"+url.PathEscape(name)+"/history", nil, &out)
}

// Diff returns a unified diff between two versions.
func (c *Client) Diff(ctx context.Context, name string, from, to int) (string, error) {
	var out struct {
		Diff string `json:"diff"`
	}
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/policies/%s/diff?from=%d&to=%d", url.PathEscape(name), from, to), nil, &out)
	return out.Diff, err
}

// Push pushes a new version (validated by the store before it is written).
func (c *Client) Push(ctx context.Context, req PushRequest) (*PushResult, error) {
	var out PushResult
	return &out, c.do(ctx, http.MethodPost, "/v1/policies/"+url.PathEscape(req.Name), req, &out)
}

// Activate makes a version active.
func (c *Client) Activate(ctx context.Context, name string, version int, who string) (*ActivateResult, error) {
	var out ActivateResult
	return &out, c.do(ctx, http.MethodPost, "/v1/policies/"+url.PathEscape(name)+"/activate", ActivateRequest{Version: version, Who: who}, &out)
}

// Rollback returns to the previously active version.
func (c *Client) Rollback(ctx context.Context, name, who string) (*ActivateResult, error) {
	var out ActivateResult
	return &out, c.do(ctx, http.MethodPost, "/v1/policies/"+url.PathEscape(name)+"/rollback", ActivateRequest{Who: who}, &out)
}

// Validate checks a policy text with the store's checker without writing.
func (c *Client) Validate(ctx context.Context, name, text string) (*ValidateResult, error) {
	var out ValidateResult
	return &out, c.do(ctx, http.MethodPost, "/v1/validate", map[string]string{"name": name, "text": text}, &out)
}

// ---- leases ----

// Acquire takes every item or none.
func (c *Client) Acquire(ctx context.Context, req AcquireRequest) (*Grant, error) {
	var out Grant
	return &out, c.do(ctx, http.MethodPost, "/v1/leases/acquire", req, &out)
}

// Renew extends leases held under one token.
func (c *Client) Renew(ctx context.Context, req RenewRequest) (*Grant, error) {
	var out Grant
	return &out, c.do(ctx, http.MethodPost, "/v1/leases/renew", req, &out)
}

// Release frees leases held under one token.
func (c *Client) Release(ctx context.Context, req RenewRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/leases/release", req, nil)
}

// Leases lists held leases (and VM leases needing reconciliation).
func (c *Client) Leases(ctx context.Context, prefix string, stale bool) ([]LeaseView, error) {
	var out []LeaseView
	q := ""
	if prefix != "" {
		q = "prefix=" + url.QueryEscape(prefix)
	}
	return out, c.do(ctx, http.MethodGet, withQuery("/v1/leases", q, staleQuery(stale)), nil, &out)
}

// ---- workers, journal ----

// Heartbeat records a live worker.
func (c *Client) Heartbeat(ctx context.Context, req HeartbeatRequest) (*HeartbeatReply, error) {
	var out HeartbeatReply
	if err := c.do(ctx, http.MethodPost, "/v1/workers/heartbeat", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Workers lists live workers.
func (c *Client) Workers(ctx context.Context, stale bool) ([]Worker, error) {
	var out []Worker
	return out, c.do(ctx, http.MethodGet, withQuery("/v1/workers", staleQuery(stale)), nil, &out)
}

// Roster reads the live workers and the host states at once, with the
// roster index they are as of (compare HeartbeatReply.RosterIndex); with
// a cluster, only its workers and their hosts' states (nil: all).
func (c *Client) Roster(ctx context.Context, cluster *string, stale bool) (*Roster, error) {
	var out Roster
	q := url.Values{}
	if stale {
		q.Set("stale", "true")
	}
	if cluster != nil {
		q.Set("cluster", *cluster)
	}
	path := "/v1/roster"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return &out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// AppendJournal appends entries.
func (c *Client) AppendJournal(ctx context.Context, entries ...JournalEntry) error {
	return c.do(ctx, http.MethodPost, "/v1/journal", JournalRequest{Entries: entries}, nil)
}

// Journal reads entries after index since.
func (c *Client) Journal(ctx context.Context, since uint64, limit int) ([]JournalEntry, error) {
	var out []JournalEntry
	return out, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/journal?since=%d&limit=%d", since, limit), nil, &out)
}

// Fleet reads every live host as its worker reports it (GET /v1/fleet:
// the answering member asks each worker's /status).
func (c *Client) Fleet(ctx context.Context) (*Fleet, error) {
	var out Fleet
	return &out, c.do(ctx, http.MethodGet, "/v1/fleet", nil, &out)
}

// ---- cluster ----

// Status returns the answering member's view of the cluster.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var out Status
	return &out, c.do(ctx, http.MethodGet, "/v1/cluster/status", nil, &out)
}

// Join asks the cluster to add a member.
func (c *Client) Join(ctx context.Context, id, raftAddr, httpAddr string) (*Status, error) {
	var out Status
	return &out, c.do(ctx, http.MethodPost, "/v1/cluster/join", MemberRequest{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr}, &out)
}

// Remove takes a member out.
func (c *Client) Remove(ctx context.Context, id string) (*Status, error) {
	var out Status
	return &out, c.do(ctx, http.MethodPost, "/v1/cluster/remove", MemberRequest{ID: id}, &out)
}

// Transfer moves leadership to id (any member when empty).
func (c *Client) Transfer(ctx context.Context, id string) (*Status, error) {
	var out Status
	return &out, c.do(ctx, http.MethodPost, "/v1/cluster/transfer", MemberRequest{ID: id}, &out)
}

// Snapshot downloads a backup of the whole state.
func (c *Client) Snapshot(ctx context.Context) ([]byte, error) {
	var out []byte
	return out, c.do(ctx, http.MethodGet, "/v1/cluster/snapshot", nil, &out)
}

// Metrics reads /metrics of the first member that answers, in
// Prometheus's text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var out []byte
	return out, c.do(ctx, http.MethodGet, "/metrics", nil, &out)
}

// Restore replaces the state with a backup.
func (c *Client) Restore(ctx context.Context, backup []byte) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/restore", backup, nil)
}

// ---- hosts ----

// Hosts lists drain requests and reports.
func (c *Client) Hosts(ctx context.Context, stale bool) ([]HostState, error) {
	var out []HostState
	return out, c.do(ctx, http.MethodGet, withQuery("/v1/hosts", staleQuery(stale)), nil, &out)
}

// Drain asks for a host to be drained (on) or withdraws the request.
func (c *Client) Drain(ctx context.Context, host, who string, on bool) (*HostState, error) {
	var out HostState
	verb := "undrain"
	if on {
		verb = "drain"
	}
	return &out, c.do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/"+verb, HostRequest{Who: who}, &out)
}

// ReportHost records a worker's report on its host.
func (c *Client) ReportHost(ctx context.Context, r HostReport) error {
	return c.do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(r.Name)+"/report", r, nil)
}

// CreateToken records a token named name with role, whose secret is
// secret (the store keeps only its hash).
func (c *Client) CreateToken(ctx context.Context, name, role, secret string) (*Token, error) {
	var out Token
	err := c.do(ctx, http.MethodPost, "/v1/tokens", TokenRequest{Name: name, Role: role, Hash: HashToken(secret)}, &out)
	return &out, err
}

// Tokens lists the tokens, without their secrets.
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var out []Token
	err := c.do(ctx, http.MethodGet, "/v1/tokens", nil, &out)
	return out, err
}

// RevokeToken deletes a token: its secret stops working at once.
func (c *Client) RevokeToken(ctx context.Context, name string) (*Token, error) {
	var out Token
	err := c.do(ctx, http.MethodPost, "/v1/tokens/"+url.PathEscape(name)+"/revoke", nil, &out)
	return &out, err
}

// isIdempotent says which writes apply the same however often they are
// repeated: they carry no request id, so they take no room in the
// state machine's deduplication window (a heartbeat that changes
// nothing is not even written).
func isIdempotent(path string) bool {
	// a heartbeat; a worker's report on its host, which sets its state
	return path == "/v1/workers/heartbeat" || (strings.HasPrefix(path, "/v1/hosts/") && strings.HasSuffix(path, "/report"))
}
