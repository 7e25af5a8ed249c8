package raftstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/parleyhq/parley/raftstore/pki"
)

// roleClients makes an operator, a worker (w1, with its certificate) and
// a reader token, and returns raw HTTP clients for each role and for no
// token at all (with a certificate from the CA, so TLS is not the reason
// for a refusal).
func roleClients(t *testing.T, c *testCluster) map[string]*http.Client {
	t.Helper()
	ctx := ctxT(t)
	secrets := map[string]string{RoleAdmin: testAdminToken}
	for role, name := range map[string]string{RoleOperator: "op", RoleWorker: "w1", RoleReader: "rd"} {
		s := NewToken()
		if _, err := c.client.CreateToken(ctx, name, role, s); err != nil {
			t.Fatal(err)
		}
		secrets[role] = s
	}
	out := map[string]*http.Client{}
	for role, s := range secrets {
		cert := "admin"
		if role == RoleWorker {
			cert = "w1"
		}
		out[role] = &http.Client{Timeout: 15 * time.Second, Transport: withToken{s, httpClient(testTLS(t, cert), 0).Transport}}
	}
	out["none"] = &http.Client{Timeout: 15 * time.Second, Transport: withToken{"", httpClient(testTLS(t, "admin"), 0).Transport}}
	return out
}

// TestRolesAgainstACluster: for each role, every endpoint it may call
// answers something other than 401 or 403; every other one answers 403;
// without a token every endpoint but the probes answers 401. Calls go
// to every member in turn, so forwarded requests are checked too.
func TestRolesAgainstACluster(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t)
	if _, err := c.client.Push(ctx, PushRequest{Name: "p", Text: okPolicy, Author: "t"}); err != nil {
		t.Fatal(err)
	}
	clients := roleClients(t, c)
	// w1 registers on host h1 first, so that its report is its own host's
	if resp, err := clients[RoleWorker].Post("https://"+c.cfgs[0].HTTPAddr+"/v1/workers/heartbeat", "application/json", strings.NewReader(`{"id":"w1","host":"h1","addr":"127.0.0.1:1"}`)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("worker heartbeat: %v %v", resp, err)
	}
	type call struct {
		method, path, body string
		roles              string // roles allowed besides admin; "public" for no token
	}
	calls := []call{
		{"GET", "/healthz", "", "public"},
		{"GET", "/readyz", "", "public"},
		{"GET", "/metrics", "", "operator worker reader"},
		{"GET", "/v1/policies", "", "operator worker reader"},
		{"GET", "/v1/policies/p", "", "operator worker reader"},
		{"GET", "/v1/policies/p/versions", "", "operator worker reader"},
		{"GET", "/v1/policies/p/history", "", "operator worker reader"},
		{"GET", "/v1/leases", "", "operator worker reader"},
		{"GET", "/v1/hosts", "", "operator worker reader"},
		{"GET", "/v1/workers", "", "operator worker reader"},
		{"GET", "/v1/journal", "", "operator worker reader"},
		{"GET", "/v1/cluster/status", "", "operator worker reader"},
		{"POST", "/v1/policies/p", `{"text": "r(x, initial)\na(x, X) :: null.\n// v\n", "author": "x"}`, "operator"},
		{"POST", "/v1/policies/p/activate", `{"version": 1}`, "operator"},
		{"POST", "/v1/policies/p/rollback", ``, "operator"},
		{"POST", "/v1/validate", `{"name": "p", "text": "r(x, initial)\na(x, X) :: null.\n"}`, "operator"},
		{"POST", "/v1/hosts/h1/drain", ``, "operator"},
		{"POST", "/v1/hosts/h1/undrain", ``, "operator"},
		{"POST", "/v1/hosts/h1/report", `{"state": "draining", "vms_left": 1}`, "worker"},
		{"POST", "/v1/workers/heartbeat", `{"id": "w1", "host": "h1", "addr": "127.0.0.1:1"}`, "worker"},
		{"POST", "/v1/leases/acquire", `{"holder": "w1", "ttl_ms": 1000, "items": [{"key": "vm/a"}]}`, "worker"},
		{"POST", "/v1/leases/renew", `{"holder": "w1", "token": 1, "keys": ["vm/zz"], "ttl_ms": 1000}`, "worker"},
		{"POST", "/v1/leases/release", `{"holder": "w1", "token": 1, "keys": ["vm/zz"]}`, "worker operator"},
		{"POST", "/v1/journal", `{"entries": [{"kind": "negotiation"}]}`, "worker"},
		{"GET", "/v1/cluster/snapshot", "", ""},
		{"POST", "/v1/cluster/transfer", `{"id": "nobody"}`, ""},
		{"POST", "/v1/cluster/remove", `{"id": "nobody"}`, ""},
		{"POST", "/v1/cluster/join", `{}`, ""},
		{"POST", "/v1/cluster/restore", `{}`, ""},
		{"GET", "/v1/tokens", "", ""},
		{"POST", "/v1/tokens", `{"name": "x1", "role": "reader"}`, ""},
		{"POST", "/v1/tokens/nobody/revoke", ``, ""},
	}
	n := 0
	for _, cl := range calls {
		for _, who := range []string{"none", RoleReader, RoleWorker, RoleOperator, RoleAdmin} {
			n++
			member := n % 3
			req, _ := http.NewRequest(cl.method, "https://"+c.cfgs[member].HTTPAddr+cl.path, strings.NewReader(cl.body))
			if cl.body == "" {
				req.Body = http.NoBody
			}
			resp, err := clients[who].Do(req)
			if err != nil {
				t.Fatalf("%s %s as %s: %v", cl.method, cl.path, who, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			allowed := who == RoleAdmin || cl.roles == "public" || (who != "none" && strings.Contains(" "+cl.roles+" ", " "+who+" "))
			switch {
			case allowed && (resp.StatusCode == 401 || resp.StatusCode == 403):
				t.Errorf("%s %s as %s (member %d): %d %s, want it allowed", cl.method, cl.path, who, member, resp.StatusCode, b)
			case !allowed && who == "none" && resp.StatusCode != 401:
				t.Errorf("%s %s without a token: %d %s, want 401", cl.method, cl.path, resp.StatusCode, b)
			case !allowed && who != "none" && resp.StatusCode != 403:
				t.Errorf("%s %s as %s (member %d): %d %s, want 403", cl.method, cl.path, who, member, resp.StatusCode, b)
			}
		}
	}
	t.Logf("%d calls checked", n)
	// the members' joins were audited with the identity that asked
	js, err := c.client.Journal(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	joins := 0
	for _, j := range js {
		if j.Kind == "audit" && j.Outcome == cmdAudit && strings.HasPrefix(j.Reason, "join id=s") && j.Worker == "admin" {
			joins++
		}
	}
	if joins != 2 {
		t.Errorf("%d joins audited by admin, want 2", joins)
	}
}

// TestIdentityIsRecordedNotClaimed: the author, the activator, the drain's
// requester, the journal's worker and a lease's holder are the
// authenticated identity; a worker acts only in its own name; every
// administrative action is audited.
func TestIdentityIsRecordedNotClaimed(t *testing.T) {
	c := startCluster(t, 1)
	ctx := ctxT(t)
	clients := roleClients(t, c)
	base := "https://" + c.cfgs[0].HTTPAddr
	post := func(who, path, body string) (int, string) {
		resp, err := clients[who].Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post(RoleOperator, "/v1/policies/p", `{"text": "r(x, initial)\na(x, X) :: null.\n", "author": "mallory"}`); code != 200 {
		t.Fatalf("push: %d %s", code, b)
	}
	if code, b := post(RoleOperator, "/v1/hosts/h1/drain", `{"who": "mallory"}`); code != 200 {
		t.Fatalf("drain: %d %s", code, b)
	}
	if code, b := post(RoleWorker, "/v1/workers/heartbeat", `{"id": "w1", "host": "h1", "addr": "127.0.0.1:1"}`); code != 200 {
		t.Fatalf("heartbeat: %d %s", code, b)
	}
	if code, b := post(RoleWorker, "/v1/journal", `{"entries": [{"kind": "negotiation", "worker": "w9"}]}`); code != 200 {
		t.Fatalf("journal: %d %s", code, b)
	}
	if code, b := post(RoleWorker, "/v1/leases/acquire", `{"ttl_ms": 5000, "items": [{"key": "vm/a"}]}`); code != 200 || !strings.Contains(b, `"holder":"w1"`) {
		t.Fatalf("acquire without a holder: %d %s", code, b)
	}
	// the migrator of vm/a (w1) keeps the target's reservation for a alive,
	// and no other reservation
	ra, err := c.client.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 5000, Items: []AcquireItem{{Key: "reserve/h2/a"}}})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := c.client.Acquire(ctx, AcquireRequest{Holder: "w2", TTLMillis: 5000, Items: []AcquireItem{{Key: "reserve/h2/b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if code, b := post(RoleWorker, "/v1/leases/renew", fmt.Sprintf(`{"holder": "w2", "token": %d, "keys": ["reserve/h2/a"], "ttl_ms": 5000}`, ra.Token)); code != 200 {
		t.Errorf("the migrator renewing the target's reservation: %d %s", code, b)
	}
	if code, b := post(RoleWorker, "/v1/leases/renew", fmt.Sprintf(`{"holder": "w2", "token": %d, "keys": ["reserve/h2/b"], "ttl_ms": 5000}`, rb.Token)); code != 403 {
		t.Errorf("renewing a reservation for a VM w1 does not migrate: %d %s, want 403", code, b)
	}
	for _, bad := range []struct{ path, body string }{
		{"/v1/workers/heartbeat", `{"id": "w2", "host": "h2", "addr": "127.0.0.1:1"}`},
		{"/v1/leases/acquire", `{"holder": "w2", "ttl_ms": 5000, "items": [{"key": "vm/b"}]}`},
		{"/v1/leases/release", `{"holder": "w2", "token": 1, "keys": ["vm/a"]}`},
		{"/v1/hosts/h2/report", `{"state": "draining", "vms_left": 1}`},
	} {
		if code, b := post(RoleWorker, bad.path, bad.body); code != 403 {
			t.Errorf("worker w1 acting for another at %s: %d %s, want 403", bad.path, code, b)
		}
	}
	// a worker's token without the worker's certificate is not enough
	stolen := &http.Client{Transport: withToken{"", httpClient(testTLS(t, "admin"), 0).Transport}}
	req, _ := http.NewRequest("GET", base+"/v1/leases", nil)
	req.Header.Set("Authorization", clients[RoleWorker].Transport.(withToken).secret)
	req.Header.Set("Authorization", "Bearer "+clients[RoleWorker].Transport.(withToken).secret)
	if resp, err := stolen.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("a worker token with another's certificate: %v %v, want 401", resp, err)
	}

	h, err := c.client.History(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if v := h.Versions[0]; v.Author != "op" || !strings.Contains(v.Note, "mallory") {
		t.Errorf("version author %q note %q, want op with mallory noted", v.Author, v.Note)
	}
	if a := h.Activations[0]; a.Who != "op" {
		t.Errorf("activation by %q, want op", a.Who)
	}
	hosts, _ := c.client.Hosts(ctx, false)
	if len(hosts) != 1 || hosts[0].RequestedBy != "op" {
		t.Errorf("drain requested by %+v, want op", hosts)
	}
	js, err := c.client.Journal(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	audits := map[string]string{}
	for _, j := range js {
		if j.Kind == "negotiation" && j.Worker != "w1" {
			t.Errorf("journal entry by %q, want w1", j.Worker)
		}
		if j.Kind == "audit" {
			audits[j.Outcome] = j.Worker
		}
	}
	// token.create by the admin, the push and the drain by the operator
	for typ, who := range map[string]string{cmdTokenCreate: "admin", cmdPush: "op", cmdHostDrain: "op"} {
		if audits[typ] != who {
			t.Errorf("audit of %s by %q, want %q (audits: %v)", typ, audits[typ], who, audits)
		}
	}
	// revoking the last admin token is refused; a revoked token stops working
	if _, err := c.client.RevokeToken(ctx, "admin"); !errors.Is(err, ErrConflict) {
		t.Errorf("revoke the last admin token: %v, want a conflict", err)
	}
	if _, err := c.client.RevokeToken(ctx, "rd"); err != nil {
		t.Fatal(err)
	}
	if resp, err := clients[RoleReader].Get(base + "/v1/leases"); err != nil || resp.StatusCode != 401 {
		t.Errorf("a revoked token: %v %v, want 401", resp, err)
	}
	ts, _ := c.client.Tokens(ctx)
	for _, x := range ts {
		if x.Hash != "" {
			t.Errorf("token list shows token %s's hash", x.Name)
		}
	}
}

// TestEveryListenerRefusesStrangers: plaintext, and certificates of
// another CA, get nowhere on the API; a raft peer without a certificate
// from the cluster's CA cannot deliver an AppendEntries, so a forged
// entry never reaches the state machine.
func TestEveryListenerRefusesStrangers(t *testing.T) {
	c := startCluster(t, 1)
	ctx := ctxT(t)
	addr := c.cfgs[0].HTTPAddr
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/v1/leases"); err == nil && resp.StatusCode < 400 {
		t.Errorf("plaintext to the API: %d", resp.StatusCode)
	}
	// a join needs the joining member's own certificate, even with the
	// admin's token: with none, or with another's, it is refused
	for _, cert := range []string{"", "w7"} {
		testTLS(t, "admin") // makes the cluster's CA
		var x *pki.TLS
		if cert != "" {
			x = testTLS(t, cert)
		} else {
			x, _ = pki.Load(pki.Files{CA: filepath.Join(testPKI.dir, pki.CAFile)})
		}
		jc, _ := NewClient([]string{addr}, WithTLS(x), WithToken(testAdminToken))
		if _, err := jc.Join(ctx, "s9", "127.0.0.1:1", "127.0.0.1:2"); !errors.Is(err, ErrForbidden) {
			t.Errorf("a join as s9 with certificate %q: %v, want forbidden", cert, err)
		}
	}
	other := t.TempDir()
	if err := pki.InitCA(other); err != nil {
		t.Fatal(err)
	}
	stranger, err := pki.IssueLocal(other, "admin")
	if err != nil {
		t.Fatal(err)
	}
	// a client of another CA does not trust the store...
	sc, _ := NewClient([]string{addr}, WithTLS(stranger), WithToken(testAdminToken))
	sc.Timeout = 3 * time.Second
	if _, err := sc.Status(ctx); err == nil {
		t.Error("a client of another CA trusted the store")
	}
	// ...and the store refuses its certificate even when it trusts the store
	mixed := mixedTLS(t, other)
	if _, err := tls.Dial("tcp", addr, mixed.ClientConfig(addr)); err == nil {
		// the handshake may only fail on the first read (TLS 1.3)
		conn, _ := tls.Dial("tcp", addr, mixed.ClientConfig(addr))
		fmt.Fprintf(conn, "GET /v1/leases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", testAdminToken)
		b := make([]byte, 64)
		if n, err := conn.Read(b); err == nil && strings.Contains(string(b[:n]), "200") {
			t.Error("the API served a client whose certificate is from another CA")
		}
		conn.Close()
	}

	// raft: a plaintext peer and a peer of another CA send AppendEntries
	// with a forged term carrying a policy that never passed the checker
	forged, _ := encodeCommand(cmdPush, "", "", time.Now().UnixNano(), PushRequest{Name: "forged", Text: "not lcc at all", Author: "mallory"})
	ae := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("mallory"), Addr: []byte("127.0.0.1:1")},
		Term: 1 << 40, PrevLogEntry: 0, PrevLogTerm: 0, LeaderCommitIndex: 1 << 40,
		Entries: []*raft.Log{{Index: 1 << 30, Term: 1 << 40, Type: raft.LogCommand, Data: forged}}}
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var out raft.AppendEntriesResponse
	if err := plain.AppendEntries("s1", raft.ServerAddress(c.cfgs[0].RaftAddr), ae, &out); err == nil {
		t.Error("a plaintext raft peer's AppendEntries was answered")
	}
	strangerCfg := testConfig(t, "mallory")
	strangerCfg.TLS = mixed
	st, err := newTransport(strangerCfg, nil, newHclog(c.members[0].log, "stranger"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AppendEntries("s1", raft.ServerAddress(c.cfgs[0].RaftAddr), ae, &out); err == nil {
		t.Error("a raft peer of another CA had its AppendEntries answered")
	}
	time.Sleep(200 * time.Millisecond)
	c.members[0].fsm.read(func(s *State) {
		if _, ok := s.Policies["forged"]; ok {
			t.Fatal("a forged AppendEntries reached the state machine")
		}
	})
	if !c.members[0].IsLeader() {
		t.Error("a forged term deposed the leader")
	}
}

// mixedTLS trusts the test cluster's CA but holds a certificate of the
// CA in other: what a stranger who knows the cluster's CA presents.
func mixedTLS(t *testing.T, other string) *pki.TLS {
	t.Helper()
	testTLS(t, "admin") // makes the cluster's CA
	_, err := pki.Load(pki.Files{CA: filepath.Join(testPKI.dir, pki.CAFile), Cert: pki.CertFile(other, "admin"), Key: pki.KeyFile(other, "admin")})
	if err == nil {
		t.Fatal("pki.Load accepted a certificate its CA did not sign")
	}
	// build it by hand: a CA file holding both CAs makes Load accept it
	both := filepath.Join(t.TempDir(), "both.pem")
	a, _ := os.ReadFile(filepath.Join(testPKI.dir, pki.CAFile))
	b, _ := os.ReadFile(filepath.Join(other, pki.CAFile))
	os.WriteFile(both, append(a, b...), 0o644)
	x, err := pki.Load(pki.Files{CA: both, Cert: pki.CertFile(other, "admin"), Key: pki.KeyFile(other, "admin")})
	if err != nil {
		t.Fatal(err)
	}
	return x
}
