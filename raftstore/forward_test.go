package raftstore

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFollowerWaitsOutAnElection: a write sent to a follower just after
// the leader is gone is answered once the next leader is elected, not
// refused with a 503 while the election runs (the client would otherwise
// back off and learn of the new leader late).
func TestFollowerWaitsOutAnElection(t *testing.T) {
	for round := range 2 {
		c := startCluster(t, 3)
		l := c.waitLeader()
		f := (l + 1) % 3
		base := "https://" + c.cfgs[f].HTTPAddr
		c.stop(l)
		start := time.Now()
		body := `{"holder":"w1","ttl_ms":30000,"items":[{"key":"vm/r` + string(rune('0'+round)) + `"}]}`
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/leases/acquire", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(HeaderRequestID, NewRequestID())
		resp, err := testHTTP(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("round %d: a write to a follower during the election: %d %s, want it answered by the next leader", round, resp.StatusCode, b)
		}
		t.Logf("round %d: answered in %v", round, time.Since(start).Round(time.Millisecond))
	}
}
