package raftstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestOnlyWritesThatAreNotIdempotentCarryARequestID: heartbeats and host
// reports take no room in the store's deduplication window; a journal
// append or a lease acquire carries an id. The server is a fake standing
// in for a store member that records the header.
func TestOnlyWritesThatAreNotIdempotentCarryARequestID(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Get(HeaderRequestID)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, err := NewClient([]string{srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Heartbeat(ctx, HeartbeatRequest{ID: "w1", Host: "h1"})
	c.ReportHost(ctx, HostReport{Name: "h1", State: "draining"})
	c.AppendJournal(ctx, JournalEntry{Kind: "migration"})
	c.Acquire(ctx, AcquireRequest{Holder: "w1", TTLMillis: 1000, Items: []AcquireItem{{Key: "vm/x"}}})
	for path, want := range map[string]bool{"/v1/workers/heartbeat": false, "/v1/hosts/h1/report": false, "/v1/journal": true, "/v1/leases/acquire": true} {
		if got := seen[path] != ""; got != want {
			t.Errorf("%s carried a request id: %v, want %v (%v)", path, got, want, seen)
		}
	}
}
