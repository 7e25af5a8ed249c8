package raftstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// hostileRequest is one request a hostile or broken client might send.
type hostileRequest struct {
	name    string
	method  string
	path    string
	body    string
	header  map[string]string
	member  int // which member receives it (a follower forwards writes)
	want    int // expected status; 0: any 4xx
	contain string
}

// stateDigest is what a refused request must leave alone: policies,
// leases, members, the journal, hosts and workers (their ids and
// addresses; a heartbeat time is not state a request could corrupt).
func stateDigest(t *testing.T, c *testCluster) string {
	t.Helper()
	b, err := c.client.Snapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	type lease struct {
		Holder string
		Token  uint64
		Attrs  map[string]string
	}
	leases := map[string]lease{}
	for k, l := range s.Leases {
		leases[k] = lease{l.Holder, l.Token, l.Attrs}
	}
	workers := map[string]string{}
	for id, w := range s.Workers {
		workers[id] = w.Host + " " + w.Addr
	}
	d, _ := json.Marshal(map[string]any{"policies": s.Policies, "leases": leases, "members": s.Members,
		"journal": s.Journal, "journal_next": s.JournalNext, "hosts": s.Hosts, "workers": workers})
	sum := sha256.Sum256(d)
	return hex.EncodeToString(sum[:])
}

func hostileRequests(c *testCluster, backup []byte) []hostileRequest {
	long := strings.Repeat("x", 300)
	var st State
	json.Unmarshal(backup, &st)
	restoreWith := func(edit func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal(backup, &m)
		edit(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	items := make([]string, 65)
	for i := range items {
		items[i] = fmt.Sprintf(`{"key": "vm/k%d"}`, i)
	}
	attrs := make([]string, 40)
	for i := range attrs {
		attrs[i] = fmt.Sprintf(`"a%d": "v"`, i)
	}
	entries := make([]string, 1001)
	for i := range entries {
		entries[i] = `{"kind": "x"}`
	}
	s2 := c.cfgs[1]
	acq := func(item string) string { return `{"holder": "w9", "ttl_ms": 1000, "items": [` + item + `]}` }
	return []hostileRequest{
		// leases
		{name: "acquire: not JSON", method: "POST", path: "/v1/leases/acquire", body: "{", want: 400},
		{name: "acquire: ttl near 2^63", method: "POST", path: "/v1/leases/acquire", body: `{"holder": "w9", "ttl_ms": 9223372036854775807, "items": [{"key": "vm/z"}]}`, want: 400, contain: "ttl_ms"},
		{name: "acquire: ttl 0", method: "POST", path: "/v1/leases/acquire", body: `{"holder": "w9", "ttl_ms": 0, "items": [{"key": "vm/z"}]}`, want: 400},
		{name: "acquire: ttl over an hour", method: "POST", path: "/v1/leases/acquire", body: `{"holder": "w9", "ttl_ms": 3600001, "items": [{"key": "vm/z"}]}`, want: 400},
		{name: "acquire: key with ..", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "vm/../held"}`), want: 400},
		{name: "acquire: key with an empty segment", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "vm//x"}`), want: 400},
		{name: "acquire: key with a control character", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "vm/a\u0007"}`), want: 400},
		{name: "acquire: key with a bidi override", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "vm/a\u202eb"}`), want: 400},
		{name: "acquire: unknown key kind", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "etc/passwd"}`), want: 400},
		{name: "acquire: empty key", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": ""}`), want: 400},
		{name: "acquire: no holder", method: "POST", path: "/v1/leases/acquire", body: `{"ttl_ms": 1000, "items": [{"key": "vm/z"}]}`, want: 400},
		{name: "acquire: holder too long", method: "POST", path: "/v1/leases/acquire", body: `{"holder": "` + long + `", "ttl_ms": 1000, "items": [{"key": "vm/z"}]}`},
		{name: "acquire: 65 items", method: "POST", path: "/v1/leases/acquire", body: `{"holder": "w9", "ttl_ms": 1000, "items": [` + strings.Join(items, ",") + `]}`, want: 400},
		{name: "acquire: 40 attributes", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "vm/z", "attrs": {` + strings.Join(attrs, ",") + `}}`), want: 400},
		{name: "acquire: negative any_of", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "host/h/slot/", "any_of": -1}`), want: 400},
		{name: "acquire: any_of 5000", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "host/h/slot/", "any_of": 5000}`), want: 400},
		{name: "acquire: negative reserved CPU", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "reserve/h1/vm9", "attrs": {"cpu_mhz": "-1000000", "mem_mb": "10"}}`), want: 400, contain: "cpu_mhz"},
		{name: "acquire: reserved memory not a number", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "reserve/h1/vm9", "attrs": {"cpu_mhz": "10", "mem_mb": "lots"}}`), want: 400, contain: "mem_mb"},
		{name: "acquire: a held lease", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "vm/held"}`), want: 409},
		{name: "acquire: the same key twice", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "vm/z"}, {"key": "vm/z"}`), want: 400},
		{name: "acquire: invalid UTF-8", method: "POST", path: "/v1/leases/acquire", body: "{\"holder\": \"w\xff\", \"ttl_ms\": 1000, \"items\": [{\"key\": \"vm/z\"}]}", want: 400, contain: "UTF-8"},
		{name: "acquire: unknown field", method: "POST", path: "/v1/leases/acquire", body: `{"holder": "w9", "ttl_ms": 1000, "items": [{"key": "vm/z"}], "admin": true}`, want: 400},
		{name: "renew: another holder's lease", method: "POST", path: "/v1/leases/renew", body: `{"keys": ["vm/held"], "holder": "mallory", "token": 1, "ttl_ms": 1000}`, want: 409},
		{name: "renew: ttl near 2^63", method: "POST", path: "/v1/leases/renew", body: `{"keys": ["vm/held"], "holder": "w1", "token": 1, "ttl_ms": 9223372036854775807}`, want: 400},
		{name: "renew: no keys", method: "POST", path: "/v1/leases/renew", body: `{"keys": [], "holder": "w1", "token": 1, "ttl_ms": 1000}`, want: 400},
		{name: "release: another holder's lease", method: "POST", path: "/v1/leases/release", body: `{"keys": ["vm/held"], "holder": "mallory", "token": 1}`, want: 409},
		{name: "release: a lease nobody holds", method: "POST", path: "/v1/leases/release", body: `{"keys": ["vm/nobody"], "holder": "w1", "token": 1}`, want: 409},
		// policies
		{name: "push: invalid UTF-8 text", method: "POST", path: "/v1/policies/balance", body: "{\"text\": \"r(x, initial)\\na(x, X) :: null. // \xc3\x28\"}", want: 400, contain: "UTF-8"},
		{name: "push: text over 256 KiB", method: "POST", path: "/v1/policies/balance", body: `{"text": "` + okPolicyJSON + `// ` + strings.Repeat("x", 300<<10) + `"}`, want: 413},
		{name: "push: name with capitals", method: "POST", path: "/v1/policies/Balance", body: `{"text": "` + okPolicyJSON + `"}`, want: 400},
		{name: "push: name with ..", method: "POST", path: "/v1/policies/..", body: `{"text": "` + okPolicyJSON + `"}`},
		{name: "push: author with a control character", method: "POST", path: "/v1/policies/balance", body: `{"text": "` + okPolicyJSON + `", "author": "a\u001bb"}`, want: 400},
		{name: "push: message over 4 KiB", method: "POST", path: "/v1/policies/balance", body: `{"text": "` + okPolicyJSON + `", "message": "` + strings.Repeat("m", 5000) + `"}`, want: 413},
		{name: "push: invalid LCC", method: "POST", path: "/v1/policies/balance", body: `{"text": "a(x, X) :: :: null"}`, want: 422},
		{name: "push: empty text", method: "POST", path: "/v1/policies/balance", body: `{"text": ""}`},
		{name: "push: stale expect_version", method: "POST", path: "/v1/policies/balance", body: `{"text": "` + okPolicyJSON + `// 2\n", "expect_version": 7}`, want: 409},
		{name: "push: nesting 20,000 deep", method: "POST", path: "/v1/policies/balance", body: `{"text": "a(x, X) :: null <- ` + strings.Repeat("(", 20000) + `"}`, want: 422},
		{name: "activate: version 0", method: "POST", path: "/v1/policies/balance/activate", body: `{"version": 0}`, want: 400},
		{name: "activate: version -1", method: "POST", path: "/v1/policies/balance/activate", body: `{"version": -1}`, want: 400},
		{name: "activate: a version that does not exist", method: "POST", path: "/v1/policies/balance/activate", body: `{"version": 99}`, want: 404},
		{name: "activate: an unknown policy", method: "POST", path: "/v1/policies/nope/activate", body: `{"version": 1}`, want: 404},
		{name: "rollback: nothing to roll back to", method: "POST", path: "/v1/policies/balance/rollback", body: ``, want: 409},
		{name: "versions: not a number", method: "GET", path: "/v1/policies/balance/versions/abc", want: 400},
		{name: "diff: not a number", method: "GET", path: "/v1/policies/balance/diff?from=x&to=1", want: 400},
		// workers, journal, hosts
		{name: "heartbeat: no id", method: "POST", path: "/v1/workers/heartbeat", body: `{"host": "h1"}`, want: 400},
		{name: "heartbeat: id too long", method: "POST", path: "/v1/workers/heartbeat", body: `{"id": "` + long + `"}`},
		{name: "heartbeat: address with a newline", method: "POST", path: "/v1/workers/heartbeat", body: `{"id": "w9", "addr": "a\nb"}`, want: 400},
		{name: "journal: no entries", method: "POST", path: "/v1/journal", body: `{"entries": []}`, want: 400},
		{name: "journal: 1001 entries", method: "POST", path: "/v1/journal", body: `{"entries": [` + strings.Join(entries, ",") + `]}`, want: 400},
		{name: "journal: negative duration", method: "POST", path: "/v1/journal", body: `{"entries": [{"kind": "migration", "duration_ms": -5}]}`, want: 400},
		{name: "journal: reason over 4 KiB", method: "POST", path: "/v1/journal", body: `{"entries": [{"kind": "migration", "reason": "` + strings.Repeat("r", 5000) + `"}]}`, want: 413},
		{name: "journal: kind with a control character", method: "POST", path: "/v1/journal", body: `{"entries": [{"kind": "mig\u0000ration"}]}`, want: 400},
		{name: "journal read: since not a number", method: "GET", path: "/v1/journal?since=x", want: 400},
		{name: "journal read: limit 0", method: "GET", path: "/v1/journal?limit=0", want: 400},
		{name: "drain: host name with a slash", method: "POST", path: "/v1/hosts/a%2Fb/drain", body: ``, want: 400},
		{name: "drain: host name too long", method: "POST", path: "/v1/hosts/" + long + "/drain", body: ``, want: 400},
		{name: "report: negative VMs left", method: "POST", path: "/v1/hosts/h1/report", body: `{"state": "drained", "vms_left": -1}`, want: 400},
		{name: "report: state too long", method: "POST", path: "/v1/hosts/h1/report", body: `{"state": "` + long + `", "vms_left": 1}`},
		// cluster
		{name: "join: nothing", method: "POST", path: "/v1/cluster/join", body: `{}`, want: 400},
		{name: "join: raft address without a port", method: "POST", path: "/v1/cluster/join", body: `{"id": "s9", "raft_addr": "10.0.0.9", "http_addr": "10.0.0.9:7070"}`, want: 400},
		{name: "join: port 0", method: "POST", path: "/v1/cluster/join", body: `{"id": "s9", "raft_addr": "10.0.0.9:0", "http_addr": "10.0.0.9:7070"}`, want: 400},
		{name: "join: a member's id at other addresses", method: "POST", path: "/v1/cluster/join", body: `{"id": "s2", "raft_addr": "127.0.0.1:1", "http_addr": "127.0.0.1:2"}`, want: 409},
		{name: "join: a member's raft address under another id", method: "POST", path: "/v1/cluster/join", body: `{"id": "s9", "raft_addr": "` + s2.RaftAddr + `", "http_addr": "127.0.0.1:2"}`, want: 409},
		{name: "join: a member's id, its raft address, another API address", method: "POST", path: "/v1/cluster/join", body: `{"id": "s2", "raft_addr": "` + s2.RaftAddr + `", "http_addr": "127.0.0.1:2"}`, want: 409},
		{name: "remove: no id", method: "POST", path: "/v1/cluster/remove", body: `{}`, want: 400},
		{name: "transfer: an unknown member", method: "POST", path: "/v1/cluster/transfer", body: `{"id": "s9"}`, want: 404},
		// restores
		{name: "restore: not a snapshot", method: "POST", path: "/v1/cluster/restore", body: `{"nonsense": true}`, want: 400},
		{name: "restore: a null lease", method: "POST", path: "/v1/cluster/restore", body: restoreWith(func(m map[string]any) { m["leases"].(map[string]any)["vm/held"] = nil }), want: 400, contain: "null"},
		{name: "restore: a null policy", method: "POST", path: "/v1/cluster/restore", body: restoreWith(func(m map[string]any) { m["policies"].(map[string]any)["balance"] = nil }), want: 400},
		{name: "restore: a version whose hash does not match", method: "POST", path: "/v1/cluster/restore", body: restoreWith(func(m map[string]any) {
			m["policies"].(map[string]any)["balance"].(map[string]any)["versions"].([]any)[0].(map[string]any)["text"] = "changed"
		}), want: 400},
		{name: "restore: an active version that does not exist", method: "POST", path: "/v1/cluster/restore", body: restoreWith(func(m map[string]any) { m["policies"].(map[string]any)["balance"].(map[string]any)["active"] = 9 }), want: 400},
		{name: "restore: a lease under another key", method: "POST", path: "/v1/cluster/restore", body: restoreWith(func(m map[string]any) { m["leases"].(map[string]any)["vm/held"].(map[string]any)["key"] = "vm/other" }), want: 400},
		{name: "restore: a token above the last index", method: "POST", path: "/v1/cluster/restore", body: restoreWith(func(m map[string]any) { m["leases"].(map[string]any)["vm/held"].(map[string]any)["token"] = 1 << 50 }), want: 400},
		{name: "restore: a journal out of order", method: "POST", path: "/v1/cluster/restore", body: restoreWith(func(m map[string]any) { m["journal_next"] = 1 }), want: 400},
		{name: "restore: a null request", method: "POST", path: "/v1/cluster/restore", body: restoreWith(func(m map[string]any) { m["requests"] = map[string]any{"r": nil} }), want: 400},
		{name: "restore: larger than its limit, said up front", method: "POST", path: "/v1/cluster/restore", body: `{}`, header: map[string]string{"Content-Length-Claim": fmt.Sprint(maxRestoreBytes + 1)}, want: 413},
		// forwarding and idempotency
		{name: "a forged forwarding header on a follower", method: "POST", path: "/v1/workers/heartbeat", body: `{"id": "w8"}`, header: map[string]string{headerForwarded: "mallory"}, member: 1, want: 400},
		{name: "an idempotency key reused for another request", method: "POST", path: "/v1/workers/heartbeat", body: `{"id": "w7"}`, header: map[string]string{HeaderRequestID: "used-once"}, want: 422},
		{name: "a follower forwards a bad acquire", method: "POST", path: "/v1/leases/acquire", body: acq(`{"key": "vm/../x"}`), member: 2, want: 400},
	}
}

// okPolicyJSON is okPolicy as a JSON string's content.
var okPolicyJSON = strings.ReplaceAll(okPolicy, "\n", `\n`)

// TestHostileRequests sends a table of malformed and hostile requests to a
// real 3-member cluster: each is refused with a 4xx (no 5xx, no hang), the
// state is unchanged after each, and every member still answers.
func TestHostileRequests(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t)
	// some state for the requests to try to damage
	if _, err := c.client.Push(ctx, PushRequest{Name: "balance", Text: okPolicy, Author: "ann"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.Acquire(ctx, AcquireRequest{Holder: "w1", TTLMillis: MaxTTL.Milliseconds(), Items: []AcquireItem{{Key: "vm/held"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.Heartbeat(ctx, HeartbeatRequest{ID: "w1", Host: "h1", Addr: "127.0.0.1:7100"}); err != nil {
		t.Fatal(err)
	}
	if err := c.client.AppendJournal(ctx, JournalEntry{Kind: "migration", VM: "vm1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.Drain(ctx, "h1", "ann", true); err != nil {
		t.Fatal(err)
	}
	// an idempotency key used once, for the reuse case
	req, _ := http.NewRequest("POST", "https://"+c.cfgs[0].HTTPAddr+"/v1/workers/heartbeat", strings.NewReader(`{"id": "w1", "host": "h1", "addr": "127.0.0.1:7100"}`))
	req.Header.Set(HeaderRequestID, "used-once")
	if resp, err := testHTTP(t).Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first use of a key: %v", err)
	} else {
		resp.Body.Close()
	}
	backup, err := c.client.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := stateDigest(t, c)
	hc := testHTTP(t)
	hc.Timeout = 15 * time.Second
	reqs := hostileRequests(c, backup)
	var refused, fivexx, hangs int
	for _, h := range reqs {
		leader := c.waitLeader()
		member := h.member
		if member == 0 {
			member = leader
		} else if member == leader {
			member = (leader + 1) % 3
		}
		var body io.Reader = strings.NewReader(h.body)
		r, _ := http.NewRequest(h.method, "https://"+c.cfgs[member].HTTPAddr+h.path, body)
		if h.body == "" {
			r.Body = http.NoBody
		}
		for k, v := range h.header {
			if k == "Content-Length-Claim" {
				// a client that claims a body larger than the limit
				var n int64
				fmt.Sscan(v, &n)
				r.ContentLength = n
				r.Body = io.NopCloser(io.MultiReader(strings.NewReader(h.body), bytes.NewReader(make([]byte, 1<<16))))
				continue
			}
			r.Header.Set(k, v)
		}
		client := hc
		var join struct{ ID string }
		if strings.HasSuffix(h.path, "/cluster/join") && json.Unmarshal([]byte(h.body), &join) == nil && join.ID != "" {
			// a joiner presents its own certificate; what is hostile here is the rest
			client = &http.Client{Timeout: 15 * time.Second, Transport: withToken{testAdminToken, httpClient(testTLS(t, join.ID), 0).Transport}}
		}
		resp, err := client.Do(r)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				hangs++
			}
			// a server may close a connection whose claimed body it refused
			if h.header["Content-Length-Claim"] == "" {
				t.Errorf("%s: %v", h.name, err)
			}
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 500:
			fivexx++
			t.Errorf("%s: %d %s", h.name, resp.StatusCode, b)
		case h.want != 0 && resp.StatusCode != h.want, h.want == 0 && (resp.StatusCode < 400 || resp.StatusCode >= 500):
			t.Errorf("%s: %d %s, want %d", h.name, resp.StatusCode, bytes.TrimSpace(b), h.want)
		case h.contain != "" && !bytes.Contains(b, []byte(h.contain)):
			t.Errorf("%s: %s does not name %q", h.name, bytes.TrimSpace(b), h.contain)
		}
		if after := stateDigest(t, c); after != before {
			t.Errorf("%s changed the state", h.name)
			before = after
		} else if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			refused++
		}
	}
	for i, m := range c.members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := newMemberClient(t, c.cfgs[i].HTTPAddr).Status(ctx); err != nil {
			t.Errorf("member %s does not answer: %v", m.cfg.ID, err)
		}
		cancel()
	}
	if len(reqs) < 50 {
		t.Errorf("only %d hostile requests", len(reqs))
	}
	t.Logf("%d hostile requests: %d refused with no change, %d 5xx, %d hangs, 0 crashes", len(reqs), refused, fivexx, hangs)
}

func newMemberClient(t *testing.T, addr string) *Client {
	cl, err := testClient(t, []string{addr})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
