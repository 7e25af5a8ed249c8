package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/raftstore"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSecureByDefault: servers refuse to start without TLS and say how to
// get it; unsafe vCenter settings are refused with what was wrong.
func TestSecureByDefault(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runCLI(t, "store", "--id", "s1", "--data", filepath.Join(dir, "s1"), "--bootstrap")
	if code != exitUsage || !strings.Contains(errs, "TLS is required") || !strings.Contains(errs, "parley cert init") {
		t.Errorf("store without TLS: %d %q", code, errs)
	}
	code, _, errs = runCLI(t, "worker", "--id", "w1", "--host", "h1", "--vsphere", "https://u:p@vc.example.com/sdk")
	if code != exitUsage || !strings.Contains(errs, "TLS is required") {
		t.Errorf("worker without TLS: %d %q", code, errs)
	}
	code, _, errs = runCLI(t, "worker", "--id", "w1", "--host", "h1", "--vsphere", "http://u:p@vc.example.com/sdk")
	if code != exitUsage || !strings.Contains(errs, "plaintext") {
		t.Errorf("worker with an http vCenter: %d %q", code, errs)
	}
	creds := filepath.Join(dir, "creds")
	os.WriteFile(creds, []byte("u:p"), 0o644)
	code, _, errs = runCLI(t, "worker", "--id", "w1", "--host", "h1", "--vsphere", "https://vc.example.com/sdk", "--credentials-file", creds)
	if code != exitUsage || !strings.Contains(errs, "readable by others") {
		t.Errorf("worker with a world-readable credentials file: %d %q", code, errs)
	}
	code, _, errs = runCLI(t, "worker", "--id", "w1", "--host", "h1", "--vsphere", "https://u:p@vc.example.com/sdk", "--thumbprint", "AB:CD")
	if code != exitUsage || !strings.Contains(errs, "thumbprint") {
		t.Errorf("worker with a malformed thumbprint: %d %q", code, errs)
	}
	pkiDir := filepath.Join(dir, "pki")
	if code, _, errs := runCLI(t, "cert", "issue", pkiDir, "s1"); code != exitUsage || !strings.Contains(errs, "cert init") {
		t.Errorf("issue before init: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, "cert", "init", pkiDir); code != exitOK {
		t.Fatalf("cert init: %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, "cert", "init", pkiDir); code != exitFailed {
		t.Errorf("a second cert init: %d, want %d", code, exitFailed)
	}
	if code, _, errs := runCLI(t, "cert", "issue", pkiDir, "w1", "--host", "127.0.0.1"); code != exitOK {
		t.Fatalf("cert issue: %d %q", code, errs)
	}
	// a worker whose certificate is another's is refused: peers would
	// refuse its messages
	code, _, errs = runCLI(t, "worker", "--id", "w2", "--host", "h2", "--vsphere", "https://u:p@vc.example.com/sdk",
		"--tls-ca", filepath.Join(pkiDir, "ca.pem"), "--tls-cert", filepath.Join(pkiDir, "w1.pem"), "--tls-key", filepath.Join(pkiDir, "w1-key.pem"))
	if code != exitUsage || !strings.Contains(errs, `"w1"`) {
		t.Errorf("worker w2 with w1's certificate: %d %q", code, errs)
	}
}

// TestTokensThroughTheCLI runs a TLS store member in this process and
// drives tokens with the CLI: create prints the secret as its last line,
// a reader may read and not push, a revoked token stops working, and the
// first admin token is written mode 0600 when its file does not exist.
func TestTokensThroughTheCLI(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	runCLI(t, "cert", "init", pkiDir)
	for _, n := range []string{"s1", "admin"} {
		if code, _, errs := runCLI(t, "cert", "issue", pkiDir, n, "--host", "127.0.0.1"); code != exitOK {
			t.Fatalf("issue %s: %d %s", n, code, errs)
		}
	}
	tlsArgs := func(n string) []string {
		return []string{"--tls-ca", filepath.Join(pkiDir, "ca.pem"), "--tls-cert", filepath.Join(pkiDir, n+".pem"), "--tls-key", filepath.Join(pkiDir, n+"-key.pem")}
	}
	httpAddr, adminFile := freeAddr(t), filepath.Join(dir, "admin.token")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"store", "--id", "s1", "--data", filepath.Join(dir, "s1"), "--raft-addr", freeAddr(t),
			"--http-addr", httpAddr, "--bootstrap", "--admin-token-file", adminFile}, tlsArgs("s1")...), &out, &errb)
		if code != exitOK {
			t.Errorf("store: %d %s", code, errb.String())
		}
		done <- code
	}()
	defer func() { cancel(); <-done }()
	t.Setenv("PARLEY_STORE", httpAddr)
	t.Setenv("PARLEY_TLS_CA", filepath.Join(pkiDir, "ca.pem"))
	t.Setenv("PARLEY_TOKEN_FILE", adminFile)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _, _ := runCLI(t, "cluster", "status", "--timeout", "1s"); code == exitOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fi, err := os.Stat(adminFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", fi, err)
	}
	code, out, errs := runCLI(t, "token", "create", "--role", "reader", "--name", "dashboard")
	if code != exitOK {
		t.Fatalf("token create: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	if !strings.HasPrefix(secret, "parley_") {
		t.Fatalf("the last line is not the secret: %q", out)
	}
	if code, _, _ := runCLI(t, "token", "create", "--role", "superuser", "--name", "x"); code != exitUsage {
		t.Errorf("a role that does not exist: %d", code)
	}
	code, out, _ = runCLI(t, "token", "list")
	if code != exitOK || !strings.Contains(out, "dashboard") || strings.Contains(out, secret) || strings.Contains(out, raftstore.HashToken(secret)) {
		t.Errorf("token list: %d %q", code, out)
	}
	readerFile := filepath.Join(dir, "reader.token")
	os.WriteFile(readerFile, []byte(secret), 0o600)
	policy := writeTemp(t, "p.lcc", "r(x, initial)\na(x, X) :: null.\n")
	if code, _, errs := runCLI(t, "policy", "list", "--token-file", readerFile); code != exitOK {
		t.Errorf("a reader listing policies: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "policy", "push", "p", policy, "--no-verify", "--token-file", readerFile); code != exitFailed || !strings.Contains(errs, "may not") {
		t.Errorf("a reader pushing: %d %q", code, errs)
	}
	os.Chmod(readerFile, 0o644)
	if code, _, errs := runCLI(t, "policy", "list", "--token-file", readerFile); code != exitUsage || !strings.Contains(errs, "readable by others") {
		t.Errorf("a world-readable token file: %d %q", code, errs)
	}
	os.Chmod(readerFile, 0o600)

	// policy push verifies first: a policy that can deadlock is refused
	// and nothing is stored, unless --no-verify.
	stuck := writeTemp(t, "stuck.lcc", `r(overloaded, initial)
r(underloaded, necessary, 1)
a(overloaded, H) :: null <- overloaded(L) and peers(underloaded, [P | _]) then ask => a(underloaded, P) then answer <= a(underloaded, P).
a(underloaded, U) :: ask <= a(overloaded, O) then ( answer => a(overloaded, O) <- fits(vm1, 1, 1) or null <- migrate(vm1, O, r, l) ).
`)
	if code, _, errs := runCLI(t, "policy", "push", "stuck", stuck); code != exitFailed || !strings.Contains(errs, "deadlock: h1 (overloaded) waits for answer") || !strings.Contains(errs, "nothing was pushed") {
		t.Errorf("push of a policy that deadlocks: %d %q", code, errs)
	}
	if code, out, _ := runCLI(t, "policy", "list"); code != exitOK || strings.Contains(out, "stuck") {
		t.Errorf("a refused push stored something: %q", out)
	}
	if code, out, errs := runCLI(t, "policy", "push", "stuck", stuck, "--no-verify"); code != exitOK || !strings.Contains(out, "pushed version 1") {
		t.Errorf("push --no-verify: %d %q %q", code, out, errs)
	}
	if code, out, errs := runCLI(t, "policy", "push", "balance", "../../policies/balance.lcc"); code != exitOK || !strings.Contains(out, "pushed version 1") {
		t.Errorf("push of the shipped balance policy, verified: %d %q %q", code, out, errs)
	}

	if code, _, errs := runCLI(t, "token", "revoke", "dashboard"); code != exitOK {
		t.Fatalf("revoke: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "policy", "list", "--token-file", readerFile); code != exitFailed || !strings.Contains(errs, "not known") {
		t.Errorf("a revoked token: %d %q", code, errs)
	}
	t.Setenv("PARLEY_TOKEN_FILE", "")
	if code, _, errs := runCLI(t, "policy", "list"); code != exitFailed || !strings.Contains(errs, "needs a token") {
		t.Errorf("no token: %d %q", code, errs)
	}
}
