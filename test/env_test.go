package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/pki"
	"github.com/parleyhq/parley/vsphere/sim"
)

// env is a parley of real processes on loopback: a 3-member store, a
// simulated vCenter and one worker per simulated host.
type env struct {
	t          *testing.T
	stores     []*proc
	storeHTTP  []string
	sim        *proc
	sdk        string
	control    string
	simCA      string       // the simulator's CA file
	ctl        *http.Client // trusts the simulator's certificate
	pki        string       // the cluster's CA and certificates
	adminToken string
	lab        *netlab // nil: every process on loopback
	delay      time.Duration
	jitter     time.Duration
	workers    []*proc
	client     *raftstore.Client
	hosts      int
	policyText string
	drift      bool                     // the simulator's demand drifts (Compose runs it so)
	binFor     func(node string) string // the binary a node runs ("": this build's)
}

type envConfig struct {
	hosts, vms  int
	seed        int64
	migrateTime time.Duration
	leaseTTL    int // seconds, written into the policy
	noWorkers   bool
	lab         bool // every process in its own network namespace (netlab_test.go)
	// delay, with lab: every link between parley processes (raft, the API,
	// LCC messages) goes through a delay proxy holding each chunk for
	// delay ± jitter; raft's timeouts are raised to suit
	delay, jitter time.Duration
	// binFor, when set, names the binary a node (s1, sim, w0...) runs: an
	// earlier release's for a rolling upgrade
	binFor func(node string) string
	drift  bool // the simulator's demand drifts, so workers keep moving VMs
	// policy, when set, edits the balance policy's text before it is pushed
	policy func(string) string
	// simState runs the simulator with --state, fixed addresses and a fixed
	// CA file, so that it can be restarted as the same vCenter
	simState bool
}

func newEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	e := &env{t: t, hosts: cfg.hosts, binFor: cfg.binFor}
	if cfg.lab {
		e.lab = newNetlab(t)
	}
	dir := t.TempDir()
	// the secure path is the tested path: TLS on every port, and tokens
	e.pki = filepath.Join(dir, "pki")
	if err := pki.InitCA(e.pki); err != nil {
		t.Fatal(err)
	}
	adminFile := filepath.Join(dir, "admin.token")
	e.adminToken = raftstore.NewToken()
	if err := os.WriteFile(adminFile, []byte(e.adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var raft []string
	for i := 0; i < 3; i++ {
		raft = append(raft, e.addr(fmt.Sprintf("s%d", i+1), "7000"))
		e.storeHTTP = append(e.storeHTTP, e.addr(fmt.Sprintf("s%d", i+1), "7070"))
	}
	// what peers dial: the member itself, or its delay proxies
	raftAdv, httpAdv := append([]string(nil), raft...), append([]string(nil), e.storeHTTP...)
	timeouts := []string{"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--leader-lease-timeout", "250ms"}
	if e.lab != nil && cfg.delay > 0 {
		for i := range raft {
			raftAdv[i] = startDelayProxy(t, e.lab.prefix+".1:0", raft[i], cfg.delay, cfg.jitter).addr()
			httpAdv[i] = startDelayProxy(t, e.lab.prefix+".1:0", e.storeHTTP[i], cfg.delay, cfg.jitter).addr()
		}
		rt := 8 * (cfg.delay + cfg.jitter)
		timeouts = []string{"--heartbeat-timeout", rt.String(), "--election-timeout", rt.String(), "--leader-lease-timeout", (rt / 2).String()}
	}
	e.delay, e.jitter = cfg.delay, cfg.jitter
	for i := 0; i < 3; i++ {
		args := []string{"store", "--id", fmt.Sprintf("s%d", i+1), "--data", filepath.Join(dir, fmt.Sprintf("s%d", i+1)),
			"--raft-addr", raft[i], "--http-addr", e.storeHTTP[i], "--raft-advertise", raftAdv[i], "--http-advertise", httpAdv[i],
			"--lock-delay", "2s",
			// the policy traffic's pushes are audited in the journal too: keep
			// everything, so that a missing entry is a lost one, not a trimmed one
			"--journal-limit", "1000000"}
		args = append(append(args, timeouts...), e.tlsArgs(fmt.Sprintf("s%d", i+1))...)
		if i == 0 {
			args = append(args, "--bootstrap", "--admin-token-file", adminFile)
		} else {
			args = append(args, "--join", httpAdv[0], "--token-file", adminFile)
		}
		e.stores = append(e.stores, e.start(fmt.Sprintf("s%d", i+1), fmt.Sprintf("store s%d", i+1), args...))
		if i == 0 {
			e.waitReady(e.storeHTTP[0], 20*time.Second)
		}
	}
	var err error
	e.client, err = e.newClient(e.storeHTTP...)
	if err != nil {
		t.Fatal(err)
	}
	e.client.Timeout = 20 * time.Second
	ctx := ctxFor(t, time.Minute)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.client.Status(ctx)
		if err == nil && len(st.Members) == 3 && st.Leader != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not form: %+v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	text, _ := policies.Source("balance")
	e.policyText = string(text)
	if os.Getenv("PARLEY_SOAK_MIGRATIONS") != "" {
		// a soak wants many migrations: drift moves VMs again sooner
		e.policyText = strings.Replace(e.policyText, "param(cooldown, 60).", "param(cooldown, 5).", 1)
		e.policyText = strings.Replace(e.policyText, "param(hold_time, 3).", "param(hold_time, 1).", 1)
	}
	if cfg.policy != nil {
		e.policyText = cfg.policy(e.policyText)
	}
	if cfg.leaseTTL > 0 {
		e.policyText = strings.Replace(e.policyText, "param(lease_ttl, 30).", fmt.Sprintf("param(lease_ttl, %d).", cfg.leaseTTL), 1)
	}
	if _, err := e.client.Push(ctx, raftstore.PushRequest{Name: "balance", Text: e.policyText, Author: "e2e"}); err != nil {
		t.Fatal(err)
	}
	mt := cfg.migrateTime
	if mt == 0 {
		mt = 500 * time.Millisecond
	}
	simArgs := []string{"sim", "--hosts", fmt.Sprint(cfg.hosts), "--vms", fmt.Sprint(cfg.vms), "--seed", fmt.Sprint(cfg.seed), "--migrate-time", mt.String()}
	e.drift = cfg.drift
	if soak() || cfg.lab || cfg.drift {
		simArgs = append(simArgs, "--drift") // keep the workers busy for the whole soak, and under every partition
	}
	if e.lab != nil || cfg.simState {
		simArgs = append(simArgs, "--listen", e.addr("sim", "8989"), "--control", e.addr("sim", "8990"))
	}
	if cfg.simState {
		simArgs = append(simArgs, "--state", filepath.Join(dir, "sim-state"), "--ca-file", filepath.Join(dir, "sim-ca.pem"))
	}
	e.sim = e.start("sim", "sim", simArgs...)
	e.sdk = e.sim.waitOutput("SDK ", 90*time.Second)
	e.sim.waitOutput("THUMBPRINT ", 5*time.Second)
	e.simCA = e.sim.waitOutput("CA ", 5*time.Second)
	e.control = e.sim.waitOutput("CONTROL ", 5*time.Second)
	e.ctl = controlClient(t, e.simCA)
	if !cfg.noWorkers {
		for i := 0; i < cfg.hosts; i++ {
			id := fmt.Sprintf("w%d", i)
			listen, stores, interval := e.addr(id, "7100"), strings.Join(httpAdv, ","), "500ms"
			if cfg.delay > 0 {
				interval = "2s" // a tick's calls (TLS handshakes through delayed links among them) get 3 intervals
			}
			args := []string{"worker", "--id", id, "--host", fmt.Sprintf("DC0_C0_H%d", i), "--vsphere", e.sdk, "--vsphere-ca", e.simCA,
				"--store", stores, "--listen", listen, "--interval", interval,
				"--token-file", e.workerToken(ctx, dir, id)}
			if e.lab != nil && cfg.delay > 0 {
				args = append(args, "--advertise", startDelayProxy(t, e.lab.prefix+".1:0", listen, cfg.delay, cfg.jitter).addr())
			}
			e.workers = append(e.workers, e.start(id, "worker "+id, append(args, e.tlsArgs(id)...)...))
		}
	}
	return e
}

// tlsArgs issues name's certificate and returns the flags that use it.
func (e *env) tlsArgs(name string) []string {
	e.t.Helper()
	if e.lab != nil { // valid for the node's address in its namespace
		// and for the observer's address, where the delay proxies listen
		if err := pki.Issue(e.pki, name, []string{"127.0.0.1", "localhost", e.lab.node(name).ip, e.lab.prefix + ".1"}, false); err != nil {
			e.t.Fatal(err)
		}
	} else if _, err := pki.IssueLocal(e.pki, name); err != nil {
		e.t.Fatal(err)
	}
	return []string{"--tls-ca", filepath.Join(e.pki, pki.CAFile), "--tls-cert", pki.CertFile(e.pki, name), "--tls-key", pki.KeyFile(e.pki, name)}
}

// workerToken creates worker id's token and writes it to a file (0600).
func (e *env) workerToken(ctx context.Context, dir, id string) string {
	e.t.Helper()
	secret := raftstore.NewToken()
	if _, err := e.client.CreateToken(ctx, id, raftstore.RoleWorker, secret); err != nil {
		e.t.Fatalf("token for %s: %v", id, err)
	}
	path := filepath.Join(dir, id+".token")
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// newClient is an admin's client of the members at addrs.
func (e *env) newClient(addrs ...string) (*raftstore.Client, error) {
	t, err := pki.IssueLocal(e.pki, "admin")
	if err != nil {
		return nil, err
	}
	return raftstore.NewClient(addrs, raftstore.WithTLS(t), raftstore.WithToken(e.adminToken))
}

// controlClient trusts a simulator's CA file, for its control API.
func controlClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in the simulator's CA file %s", caFile)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (e *env) waitReady(addr string, d time.Duration) {
	e.t.Helper()
	c, _ := e.newClient(addr)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := c.Status(ctx)
		cancel()
		if err == nil && st.Leader != "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("store member at %s not ready", addr)
}

// leader returns the index of the store member that leads, or -1.
func (e *env) leader() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, a := range e.storeHTTP {
		c, _ := e.newClient(a)
		c.Timeout = time.Second
		st, err := c.Status(ctx)
		if err == nil && st.State == "Leader" {
			return i
		}
	}
	return -1
}

func (e *env) waitLeader(d time.Duration) int {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l := e.leader(); l >= 0 {
			return l
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatal("no store leader")
	return -1
}

func (e *env) relocations() []sim.Relocation {
	var recs []sim.Relocation
	getJSON(e.t, e.ctl, e.control+"/relocations", &recs)
	return recs
}

func (e *env) placement() map[string]string {
	var m map[string]string
	getJSON(e.t, e.ctl, e.control+"/placement", &m)
	return m
}

// checkNoOverlap checks, from vCenter's own relocation record, that no VM
// had two overlapping migrations, that no host took part in more than
// slots at once, and that no target went over high; and, from the
// journal, that no VM had two overlapping migrations either.
func (e *env) checkNoOverlap(slots int, high float64) {
	e.t.Helper()
	recs := e.relocations()
	tolerance := 0.02 // demand may change a little while a move runs
	if soak() || e.lab != nil || e.drift {
		tolerance = 0.15 // with drift on, a target's VMs grow during the move
	}
	for _, v := range sim.Audit(recs, slots, high, tolerance) {
		e.t.Error(v)
	}
	ctx := ctxFor(e.t, 30*time.Second)
	js, err := e.client.Journal(ctx, 0, 100000)
	if err != nil {
		e.t.Fatalf("journal: %v", err)
	}
	type span struct{ start, end int64 }
	jv := map[string][]span{}
	for _, j := range js {
		if j.Kind == "migration" {
			jv[j.VM] = append(jv[j.VM], span{j.Time - j.DurationMS*int64(time.Millisecond), j.Time})
		}
	}
	for vm, ss := range jv {
		sortSlice(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
		for i := 1; i < len(ss); i++ {
			if ss[i].start < ss[i-1].end-int64(50*time.Millisecond) {
				e.t.Errorf("journal overlap: %s", vm)
			}
		}
	}
	e.t.Logf("checked %d relocations and %d journal entries for overlap and slots", len(recs), len(js))
}

// checkPlacement: every VM is on exactly one host, checked through the
// simulator's placement and the host lists it publishes.
func (e *env) checkPlacement(vms int) {
	e.t.Helper()
	p := e.placement()
	if len(p) != vms {
		e.t.Errorf("%d VMs placed, want %d", len(p), vms)
	}
	for vm, h := range p {
		if h == "" {
			e.t.Errorf("VM %s is on no host", vm)
		}
	}
}

// interactionsFromLogs maps each interaction to the policy versions the
// workers' logs give for it.
func (e *env) interactionsFromLogs() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, w := range e.workers {
		for _, line := range strings.Split(w.log.String(), "\n") {
			if !strings.Contains(line, `"interaction ended"`) {
				continue
			}
			var rec struct {
				Interaction string `json:"interaction"`
				Policy      string `json:"policy"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Interaction != "" {
				if out[rec.Interaction] == nil {
					out[rec.Interaction] = map[string]bool{}
				}
				out[rec.Interaction][rec.Policy] = true
			}
		}
	}
	return out
}

func (e *env) killStore(i int) {
	e.stores[i].kill(syscall.SIGKILL)
}

func isUnavailable(err error) bool {
	var ae *raftstore.Error
	return errors.As(err, &ae) && (ae.Code == "no_quorum" || ae.Code == "unknown_outcome")
}

func chaosDuration(def time.Duration) time.Duration {
	if v := os.Getenv("PARLEY_CHAOS_DURATION"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return def
}

// soak reports whether a long chaos run was asked for.
func soak() bool {
	return os.Getenv("PARLEY_CHAOS_DURATION") != "" || os.Getenv("PARLEY_SOAK_MIGRATIONS") != ""
}

// addr is where node listens on port: its namespace's address in a lab,
// else a free loopback port.
func (e *env) addr(node, port string) string {
	if e.lab != nil {
		return e.lab.node(node).ip + ":" + port
	}
	return freePort(e.t)
}

// start runs a parley process for node: in its namespace in a lab.
func (e *env) start(node, name string, args ...string) *proc {
	if e.lab != nil {
		n := e.lab.node(node)
		return startWrapped(e.t, name, []string{"ip", "netns", "exec", n.ns}, args...)
	}
	bin := ""
	if e.binFor != nil {
		bin = e.binFor(node)
	}
	return startBin(e.t, bin, name, nil, args...)
}
