package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/raftstore/pki"
	"github.com/parleyhq/parley/worker/local"
)

// metricName finds the series a PromQL expression reads: parley's own
// (parley_...) and raft's through go-metrics (raft_...).
var metricName = regexp.MustCompile(`\b(?:parley|raft)_[A-Za-z0-9_]+`)

// dashboardMetrics lists every series deploy/grafana/parley.json queries.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "parley.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana/parley.json: %v", err)
	}
	seen := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %q reads no parley or raft series", p.Title, tg.Expr)
			}
			for _, n := range names {
				seen[n] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestDashboardQueriesExportedMetrics runs a whole parley in the process
// (3-member store, workers, simulated vCenter, TLS and tokens), waits for a
// migration, scrapes every member's and every worker's /metrics, and
// checks that each series the Grafana dashboard queries is among them.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	want := dashboardMetrics(t)
	for _, must := range []string{"parley_worker_host_load", "parley_worker_migrations_total", "parley_worker_negotiation_seconds_bucket", "parley_apply_seconds_bucket", "raft_state_leader"} {
		if !contains(want, must) {
			t.Errorf("the dashboard does not query %s", must)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := local.Start(ctx, local.Config{Hosts: 4, VMs: 16, Seed: 3, MigrateTime: 200 * time.Millisecond, Interval: 500 * time.Millisecond, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	deadline := time.Now().Add(60 * time.Second)
	for migrated := false; !migrated; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no migration within 60 s")
		}
		js, _ := l.Store.Journal(ctx, 0, 1000)
		for _, j := range js {
			migrated = migrated || (j.Kind == "migration" && j.Outcome == "success")
		}
	}
	tl, err := pki.Load(pki.Files{CA: filepath.Join(l.PKI, "ca.pem"), Cert: filepath.Join(l.PKI, "admin.pem"), Key: filepath.Join(l.PKI, "admin-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	scrape := func(addr string, token string) string {
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tl.ClientConfig(addr)}}
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("scrape %s: %v", addr, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("scrape %s: %d %s", addr, resp.StatusCode, b)
		}
		return string(b)
	}
	var all strings.Builder
	for _, m := range l.Members {
		all.WriteString(scrape(m.HTTPAddr(), l.AdminToken))
	}
	for _, w := range l.Workers {
		all.WriteString(scrape(w.Addr(), ""))
	}
	exported := map[string]bool{}
	for _, line := range strings.Split(all.String(), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			exported[line[:i]] = true
		}
	}
	for _, n := range want {
		if !exported[n] {
			t.Errorf("the dashboard queries %s, which no member or worker exports", n)
		}
	}
	// and they count what happened: the migration waited for above, and
	// the negotiation that led to it
	for _, series := range []string{`parley_worker_migrations_total\{[^}]*outcome="success"[^}]*\} ([0-9.e+]+)`,
		`parley_worker_negotiations_started_total\{[^}]*\} ([0-9.e+]+)`, `parley_worker_offers_total\{[^}]*kind="bid"[^}]*\} ([0-9.e+]+)`,
		`parley_worker_messages_total\{[^}]*direction="in"[^}]*\} ([0-9.e+]+)`,
		`parley_worker_reaction_seconds_count\{[^}]*\} ([0-9.e+]+)`} {
		total := 0.0
		for _, m := range regexp.MustCompile(series).FindAllStringSubmatch(all.String(), -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			total += v
		}
		if total < 1 {
			t.Errorf("%s: %v over every worker, want at least 1", series, total)
		}
	}
	t.Logf("%d series queried, all among %d exported", len(want), len(exported))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
