package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// findChromium is Debian's chromium (installed by .ci/run when absent), or
// another Chromium or Chrome on the PATH.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

var dashboardLine = regexp.MustCompile(`dashboard: (https://\S+/ui/) \(sign in with the operator token in (\S+); the certificate is the demo CA's, (\S+)\)`)

// TestDashboardInABrowser runs 'parley demo' as a process and drives its
// dashboard in headless Chromium: it signs in, sees every host, waits for
// a migration to appear without reloading, opens a diff of two policy
// versions and saves a screenshot. Any JavaScript exception, console error
// or failed request fails it.
func TestDashboardInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	chrome := findChromium()
	if chrome == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium on the PATH: .ci/run installs Debian's chromium package")
		}
		t.Skip("no chromium on the PATH (apt-get install chromium)")
	}
	const hosts = 6
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	demo := exec.CommandContext(ctx, parleyBin, "demo", "--until-quiet=false", "--duration", "150s", "--every", "1h",
		"--hosts", fmt.Sprint(hosts), "--vms", "48", "--seed", "4")
	demo.Cancel = func() error { return demo.Process.Signal(syscall.SIGKILL) }
	out, err := demo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var demoErr bytes.Buffer
	demo.Stderr = &demoErr
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { demo.Process.Kill(); demo.Wait() }()
	var url, tokenFile, caFile string
	sc := bufio.NewScanner(out)
	for url == "" && sc.Scan() {
		if m := dashboardLine.FindStringSubmatch(sc.Text()); m != nil {
			url, tokenFile, caFile = m[1], m[2], m[3]
		}
	}
	if url == "" {
		t.Fatalf("the demo printed no dashboard address; stderr:\n%s", demoErr.String())
	}
	go func() { // keep reading, so the demo never blocks on its output
		for sc.Scan() {
		}
	}()
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	pushSecondVersion(t, ctx, strings.TrimSuffix(url, "/ui/"), token, caFile)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("ignore-certificate-errors", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.WindowSize(1400, 1000))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	urls := map[network.RequestID]string{}
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			problem("JavaScript exception at %s:%d: %s %s", d.URL, d.LineNumber, d.Text, desc)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				problem("console error: %s", strings.Join(args, " "))
			}
		case *network.EventRequestWillBeSent:
			mu.Lock()
			urls[e.RequestID] = e.Request.URL
			mu.Unlock()
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				problem("request %s answered %d", e.Response.URL, e.Response.Status)
			}
		case *network.EventLoadingFailed:
			if !e.Canceled {
				mu.Lock()
				u := urls[e.RequestID]
				mu.Unlock()
				problem("request %s failed: %s", u, e.ErrorText)
			}
		}
	}))
	defer cancelB()
	// the first call gets the tab's own context: the tab lives as long as it
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 100*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			// what the page showed when the step gave up, to say why
			dctx, cancelD := context.WithTimeout(bctx, 10*time.Second)
			shown, _ := chromedp.Run(dctx, chromedp.Evaluate[json.RawMessage](`({migrations: document.querySelectorAll('#migrations tr.migration').length,
				live: (document.getElementById('live') || {}).textContent, notReloaded: window.__notReloaded === true,
				error: (document.getElementById('error') || {}).textContent, cluster: (document.getElementById('cluster') || {}).textContent,
				drained: window.__drained || null, drain: !!document.querySelector('#hosts .host[data-host="' + (window.__drained || '') + '"] button[data-action=undrain]')})`))
			cancelD()
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: %v (the page: %s; problems so far: %v)", what, err, shown, problems)
		}
	}
	eval := func(what, expr string, into any) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[json.RawMessage](expr))
		if err == nil {
			err = json.Unmarshal(v, into)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll := func(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))(ctx, tg)
			return err
		})
	}
	screenshot := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		shot, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		saveScreenshot(t, name, shot)
	}
	step("open the sign-in page", chromedp.Navigate(url), chromedp.WaitVisible("#token"))
	step("sign in", chromedp.SendKeys("#token", token), chromedp.Click("#signin"), chromedp.WaitVisible("#app"))
	step("see every host live", poll(fmt.Sprintf(`document.querySelectorAll('#hosts .host .dot.live').length === %d`, hosts), 45*time.Second))
	var names []string
	eval("read the hosts shown", `[...document.querySelectorAll('#hosts .host')].map(h => h.dataset.host)`, &names)
	for i := range hosts {
		if want := fmt.Sprintf("DC0_C0_H%d", i); !contains(names, want) {
			t.Errorf("the dashboard does not show host %s (it shows %v)", want, names)
		}
	}
	var before int
	eval("mark the page and count migrations", `window.__notReloaded = true; document.querySelectorAll('#migrations tr.migration').length`, &before)
	// the demo's first balancing may be over by now: drain the host with
	// the most VMs from its card, as an operator would, so that VMs leave
	// while we watch
	step("drain a host from its card", poll(`(() => {
		let best = null, most = 0;
		for (const h of document.querySelectorAll('#hosts .host')) {
			const b = h.querySelector('button[data-action=drain]'), m = /(\d+) VMs/.exec(h.textContent);
			if (b && m && +m[1] > most) { most = +m[1]; best = b; }
		}
		if (!best) return false;
		window.__drained = best.dataset.host; best.click(); return true; })()`, 30*time.Second))
	step("see a migration arrive live", poll(fmt.Sprintf(
		`document.querySelectorAll('#migrations tr.migration').length > %d && window.__notReloaded === true && document.getElementById('live').textContent === 'live'`, before), 90*time.Second))
	step("let the bars settle", chromedp.Sleep(2500*time.Millisecond))
	screenshot("dashboard.png")
	step("open the migrations tab", chromedp.Click(`#tabs button[data-tab=migrations]`), poll(`document.querySelector('#chart polyline') !== null`, 30*time.Second))
	step("open a migration's interaction as a sequence chart", chromedp.Click(`#migrations tr.migration`),
		poll(`document.querySelectorAll('#trace line[marker-end]').length > 0 && document.getElementById('trace-journal').textContent.includes('journal: migration')`, 30*time.Second))
	var vm string
	eval("pick a VM", `document.querySelector('#migrations tr.migration').dataset.vm`, &vm)
	step("search the journal", chromedp.Click(`#tabs button[data-tab=journal]`), chromedp.SendKeys("#journal-search", vm),
		poll(fmt.Sprintf(`(() => { const rows = [...document.querySelectorAll('#journal tr')]; return rows.length > 0 && rows.every(r => r.textContent.includes(%q)) })()`, vm), 10*time.Second))
	step("open a diff of balance v1 and v2", chromedp.Click(`#tabs button[data-tab=policies]`),
		poll(`document.querySelector('#policies [data-policy=balance]') !== null && [...document.getElementById('diff-b').options].some(o => o.value === '2')`, 30*time.Second),
		chromedp.SetValue("#diff-policy", "balance"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[any](`document.getElementById('diff-policy').dispatchEvent(new Event('change'))`)(ctx, tg)
			return err
		}),
		chromedp.SetValue("#diff-a", "1"), chromedp.SetValue("#diff-b", "2"),
		chromedp.Click("#diff-btn"), chromedp.WaitVisible("#diff td.add"))
	var added []string
	eval("read the diff", `[...document.querySelectorAll('#diff td.add')].map(td => td.textContent)`, &added)
	if !strings.Contains(strings.Join(added, "\n"), "dashboard test") {
		t.Errorf("the diff's added lines are %q, want the line pushed as v2", added)
	}
	screenshot("dashboard-diff.png")
	var shown string
	eval("read the page's error line", `document.getElementById('error').textContent`, &shown)
	if shown != "" {
		t.Errorf("the page shows an error: %s", shown)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
}

// pushSecondVersion pushes balance again with one comment line more,
// without activating it, so that the dashboard has two versions to compare.
func pushSecondVersion(t *testing.T, ctx context.Context, base, token, caFile string) {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(method, path string, body any, into any) {
		var rd bytes.Buffer
		if body != nil {
			json.NewEncoder(&rd).Encode(body)
		}
		req, _ := http.NewRequestWithContext(ctx, method, base+path, &rd)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
		if into != nil {
			json.NewDecoder(resp.Body).Decode(into)
		}
	}
	var v1 struct {
		Text string `json:"text"`
	}
	do("GET", "/v1/policies/balance/versions/1", nil, &v1)
	if v1.Text == "" {
		t.Fatal("balance v1 has no text")
	}
	do("POST", "/v1/policies/balance", map[string]any{"text": v1.Text + "// dashboard test: a second version\n", "message": "dashboard test", "no_activate": true}, nil)
}

// saveScreenshot writes a screenshot to the test's folder, or to
// test/testdata when PARLEY_UPDATE_SCREENSHOTS is set (the README shows
// test/testdata/dashboard.png).
func saveScreenshot(t *testing.T, name string, png []byte) {
	dir := t.TempDir()
	if os.Getenv("PARLEY_UPDATE_SCREENSHOTS") != "" {
		dir = "testdata"
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d KB)", path, len(png)>>10)
}
