// Package test holds end-to-end and chaos tests that start real parley
// processes: store members, the simulated vCenter and workers.
package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var parleyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "parley-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	parleyBin = filepath.Join(dir, "parley")
	build := exec.Command("go", "build", "-o", parleyBin, "../cmd/parley")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building parley:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one real parley process whose log is kept.
type proc struct {
	t    *testing.T
	bin  string // the parley binary; parleyBin when empty (an upgrade test runs an earlier release's)
	name string
	wrap []string // a command that runs parley (ip netns exec NS), or none
	args []string
	cmd  *exec.Cmd
	log  *lockedBuffer
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs parley with args; its stderr is kept and printed if the
// test fails.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startWrapped(t, name, nil, args...)
}

// startWrapped runs parley with args under wrap (e.g. ip netns exec NS).
func startWrapped(t *testing.T, name string, wrap []string, args ...string) *proc {
	t.Helper()
	return startBin(t, "", name, wrap, args...)
}

// startBin runs the parley binary bin (parleyBin when empty).
func startBin(t *testing.T, bin, name string, wrap []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, bin: bin, name: name, wrap: wrap, args: args, log: &lockedBuffer{}, out: &lockedBuffer{}}
	p.run()
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("---- log of %s (%s) ----\n%s", p.name, strings.Join(p.args, " "), tail(p.log.String(), 60))
		}
	})
	return p
}

func (p *proc) run() {
	p.t.Helper()
	bin := parleyBin
	if p.bin != "" {
		bin = p.bin
	}
	if len(p.wrap) > 0 {
		p.cmd = exec.Command(p.wrap[0], append(append(p.wrap[1:len(p.wrap):len(p.wrap)], bin), p.args...)...)
	} else {
		p.cmd = exec.Command(bin, p.args...)
	}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.log
	p.cmd.Env = append(os.Environ(), "PARLEY_LOG_LEVEL=info")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
}

// kill sends sig and, for SIGKILL and SIGTERM, waits for the exit.
func (p *proc) kill(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// restart starts the same command again.
func (p *proc) restart() {
	p.kill(syscall.SIGKILL)
	fmt.Fprintf(p.log, "\n---- restarted ----\n")
	p.run()
}

// waitOutput waits for a line of stdout starting with prefix and returns
// the rest of it.
func (p *proc) waitOutput(prefix string, d time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(p.out.String()))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				return strings.TrimSpace(rest)
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q:\n%s", p.name, prefix, tail(p.log.String(), 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s did not print %q within %v", p.name, prefix, d)
	return ""
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
