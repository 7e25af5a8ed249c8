package raftstore

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/raftstore/pki"
)

// fakeWorker stands in for a worker's message endpoint (worker.Status at
// /v1/status, traces at /v1/traces/{id}), served with a certificate of the
// test CA, as a real worker serves them.
func fakeWorker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if pki.PeerName(r.TLS) == "" {
			http.Error(w, "certificate needed", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"worker":"w1","host":"h1","cpu_capacity_mhz":1000,"cpu_used_mhz":500,"vms":[{"name":"vm1"}]}`)
	})
	mux.HandleFunc("GET /v1/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "w1-1-ab" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `[{"time":"2026-01-01T00:00:02Z","agent":"w1","kind":"outcome","term":"closed"},{"time":"2026-01-01T00:00:01Z","agent":"w1","kind":"send","peer":"w2","term":"cfp(vm1)"}]`)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(tls.NewListener(ln, testTLS(t, "w1").ServerConfig(false)))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func tokenClient(t *testing.T, cert, secret string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: withToken{secret, httpClient(testTLS(t, cert), 0).Transport}}
}

func getJSON(t *testing.T, cl *http.Client, url string, want int, into any) {
	t.Helper()
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, b)
		}
	}
}

// TestDashboardRoutes: the page is public and locked to its own origin;
// whoami, the fleet, an interaction's steps and the event stream need a
// token, and answer what the store and the workers hold.
func TestDashboardRoutes(t *testing.T) {
	c := startCluster(t, 1)
	ctx := ctxT(t)
	base := "https://" + c.cfgs[0].HTTPAddr
	reader, worker := NewToken(), NewToken()
	if _, err := c.client.CreateToken(ctx, "rd", RoleReader, reader); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CreateToken(ctx, "w1", RoleWorker, worker); err != nil {
		t.Fatal(err)
	}
	anon, rd := tokenClient(t, "admin", ""), tokenClient(t, "admin", reader)

	resp, err := anon.Get(base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `<script src="app.js"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("/ui/ without a token: %d, CSP %q:\n%.200s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), page)
	}
	getJSON(t, anon, base+"/ui/app.js", 200, nil)
	if !strings.Contains(string(page), `<script src="contract.js"`) {
		t.Fatalf("/ui/ does not load the contract's words before app.js:\n%.300s", page)
	}
	resp, err = anon.Get(base + "/ui/contract.js")
	if err != nil {
		t.Fatal(err)
	}
	words, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(words), `"kindMigration":"migration"`) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("/ui/contract.js: %d %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), words)
	}
	getJSON(t, anon, base+"/v1/whoami", 401, nil)
	getJSON(t, anon, base+"/v1/fleet", 401, nil)
	var who map[string]string
	getJSON(t, rd, base+"/v1/whoami", 200, &who)
	if who["role"] != RoleReader || who["name"] != "rd" {
		t.Fatalf("whoami: %v", who)
	}

	// a worker registers with the address of its (fake) endpoint
	wc := tokenClient(t, "w1", worker) // a worker's token comes with its certificate
	body := strings.NewReader(`{"id":"w1","host":"h1","addr":"` + fakeWorker(t) + `"}`)
	if resp, err := wc.Post(base+"/v1/workers/heartbeat", "application/json", body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("heartbeat: %v %v", resp, err)
	}
	var fleet Fleet
	getJSON(t, rd, base+"/v1/fleet", 200, &fleet)
	if len(fleet.Hosts) != 1 || fleet.Hosts[0].Status == nil || !fleet.Hosts[0].Live || len(fleet.History) != 1 || fleet.History[0].Max != 0.5 || fleet.History[0].StdDev != 0 {
		t.Fatalf("fleet: %+v", fleet)
	}
	var it struct {
		Steps []struct {
			Kind string `json:"kind"`
		} `json:"steps"`
		Workers []string `json:"workers"`
	}
	getJSON(t, rd, base+"/v1/interactions/w1-1-ab", 200, &it)
	if len(it.Steps) != 2 || it.Steps[0].Kind != "send" || it.Steps[1].Kind != "outcome" || len(it.Workers) != 1 {
		t.Fatalf("interaction: steps not merged in time order: %+v", it)
	}
	getJSON(t, rd, base+"/v1/interactions/w1-2-cd", 404, nil)
	getJSON(t, rd, base+"/v1/interactions/a%20b", 400, nil)

	// the event stream: a change now, and another after a write
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", base+"/v1/events", nil)
	stream, err := (&http.Client{Transport: rd.Transport}).Do(req)
	if err != nil || stream.StatusCode != 200 || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %v %v", stream, err)
	}
	defer stream.Body.Close()
	events := bufio.NewScanner(stream.Body)
	next := func() uint64 {
		for events.Scan() {
			if data, ok := strings.CutPrefix(events.Text(), "data: "); ok {
				var ev struct {
					Index uint64 `json:"index"`
				}
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Fatal(err)
				}
				return ev.Index
			}
		}
		t.Fatalf("event stream ended: %v", events.Err())
		return 0
	}
	first := next()
	if _, err := c.client.Push(ctx, PushRequest{Name: "p", Text: okPolicy}); err != nil {
		t.Fatal(err)
	}
	if second := next(); second <= first {
		t.Fatalf("after a write the stream said index %d, then %d", first, second)
	}
}
