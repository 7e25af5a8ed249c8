package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func init() {
	topLevel["health"] = command{"health", "check a part's health endpoint (exit 0 when it answers 200): a container health check that needs no shell", (*cli).health}
}

// health GETs a URL and exits 0 when it answers 200 OK, 1 when it
// answers anything else or nothing. It needs no token (/healthz and
// /readyz are public); for https it trusts --tls-ca (or PARLEY_TLS_CA),
// else the system's CAs. It is what an image without a shell runs as its
// health check.
func (c *cli) health(ctx context.Context, args []string) int {
	fs := c.newFlags("health", "health --url URL [--tls-ca CA] [--timeout D]")
	u := fs.String("url", os.Getenv("PARLEY_HEALTH_URL"), "the endpoint, e.g. https://127.0.0.1:7070/readyz (env PARLEY_HEALTH_URL)")
	ca := fs.String("tls-ca", os.Getenv("PARLEY_TLS_CA"), "CA that signs the part's certificate (env PARLEY_TLS_CA)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	target, err := url.Parse(*u)
	if *u == "" || err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		fmt.Fprintf(c.stderr, "parley health: --url %q: want http(s)://HOST:PORT/PATH\n", *u)
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(c.stderr, "parley health: --timeout must be positive")
		return exitUsage
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	if *ca != "" && target.Scheme == "https" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			fmt.Fprintln(c.stderr, "parley health: --tls-ca:", err)
			return exitUsage
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintf(c.stderr, "parley health: --tls-ca %s holds no PEM certificate\n", *ca)
			return exitUsage
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, target.String(), nil)
	if err != nil {
		fmt.Fprintln(c.stderr, "parley health:", err)
		return exitUsage
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		fmt.Fprintf(c.stderr, "parley health: %s: %v\n", target.Redacted(), err)
		return exitFailed
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(c.stderr, "parley health: %s answered %s: %s\n", target.Redacted(), resp.Status, text)
		return exitFailed
	}
	fmt.Fprintf(c.stdout, "%s: %s\n", target.Redacted(), text)
	return exitOK
}
