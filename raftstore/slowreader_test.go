package raftstore

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSlowReaderDoesNotStallTheStore: a client that asks for a snapshot of
// a state of several MB and reads none of it holds only its own
// connection. Writes, reads and status calls keep working meanwhile (each
// within a bound far above their normal latency, far below the stall the
// store once had, when the response was written under the state's lock).
func TestSlowReaderDoesNotStallTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large state")
	}
	c := startCluster(t, 1)
	ctx := ctxT(t)
	filler := "// " + strings.Repeat("x", 200<<10) + "\n"
	for i := 0; i < 40; i++ { // about 8 MB of policy texts
		if _, err := c.client.Push(ctx, PushRequest{Name: fmt.Sprintf("p%d", i), Text: okPolicy + filler, Author: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := net.Dial("tcp", c.cfgs[0].HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10) // keep as little as the kernel allows in flight
	}
	conn := tls.Client(raw, testTLS(t, "admin").ClientConfig(c.cfgs[0].HTTPAddr))
	fmt.Fprintf(conn, "GET /v1/cluster/snapshot HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", testAdminToken)
	// read only the status line, then nothing: the server's writes block
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("snapshot status: %q %v", line, err)
	}
	time.Sleep(500 * time.Millisecond) // the server is now stuck writing
	const bound = 5 * time.Second
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, err := c.client.Heartbeat(ctx, HeartbeatRequest{ID: fmt.Sprintf("w%d", i), Host: "h"}); err != nil {
			t.Fatalf("write %d while a reader stalls: %v", i, err)
		}
		if _, err := c.client.Leases(ctx, "", false); err != nil {
			t.Fatalf("read %d while a reader stalls: %v", i, err)
		}
		if _, err := c.client.Status(ctx); err != nil {
			t.Fatalf("status %d while a reader stalls: %v", i, err)
		}
		if d := time.Since(start); d > bound {
			t.Fatalf("a write, a read and a status call took %s while a reader stalled (bound %s)", d, bound)
		}
	}
}
