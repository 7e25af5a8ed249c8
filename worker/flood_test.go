package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
)

// floodMemoryBound is what a flood of messages may make a worker hold:
// 1,024 responders, and at most 2^20 term nodes of waiting messages.
const floodMemoryBound = 256 << 20

// TestFloodStaysWithinItsBound floods a worker's message endpoint over
// real HTTP: thousands of forged interactions naming the real policy
// version, from one peer and from thousands, and large messages into the
// interactions it accepted. Past its bounds it answers 429 (413 for a
// message over the size limit), counts the refusals in /metrics, and its
// live heap grows by less than floodMemoryBound. raftstore.Mem stands in
// for the store and fakeDC for vCenter.
func TestFloodStaysWithinItsBound(t *testing.T) {
	if testing.Short() {
		t.Skip("flood")
	}
	ctx := context.Background()
	st := raftstore.NewMem(raftstore.Config{})
	text, _ := policies.Source("balance")
	v, err := st.Push(ctx, raftstore.PushRequest{Name: "balance", Text: string(text), Author: "t"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop()}, newTestDC(), st)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ref := lcc.PolicyRef{Name: "balance", Version: v.Version, Hash: v.SHA256}
	url := "http://" + w.Addr() + "/v1/lcc/messages"
	post := func(iid, from, body string) int {
		m := lcc.Message{Interaction: iid, Policy: ref, FromID: from, FromRole: lcc.A("overloaded"), ToID: "w1", ToRole: lcc.A("underloaded")}
		wm := encodeMessage(m)
		wm.Body = body
		b, _ := json.Marshal(wm)
		resp, err := http.Post(url, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	flood := func(n int, iid func(i int) string, from func(i int) string, body string) {
		sem := make(chan struct{}, 16)
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				c := post(iid(i), from(i), body)
				mu.Lock()
				codes[c]++
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	// one peer, many interactions: 32 responders, then 429
	flood(300, func(i int) string { return fmt.Sprintf("one-%d", i) }, func(int) string { return "mallory" }, "hello")
	if codes[http.StatusAccepted] != maxPerPeer || codes[http.StatusTooManyRequests] != 300-maxPerPeer {
		t.Fatalf("one peer: %v, want %d accepted", codes, maxPerPeer)
	}
	// many peers: up to 1,024 interactions in all
	flood(1200, func(i int) string { return fmt.Sprintf("many-%d", i) }, func(i int) string { return fmt.Sprintf("p%d", i) }, "hello")
	if codes[http.StatusAccepted] != maxInteractions {
		t.Fatalf("many peers: %v, want %d accepted in all", codes, maxInteractions)
	}
	// large messages into accepted interactions, until the queue is full
	large := "big([" + strings.Repeat("a, ", 20000) + "a])"
	before := codes[http.StatusTooManyRequests]
	flood(200, func(i int) string { return fmt.Sprintf("many-%d", i%maxInteractions) }, func(i int) string { return fmt.Sprintf("p%d", i%maxInteractions) }, large)
	if codes[http.StatusTooManyRequests] == before {
		t.Fatalf("large messages were never refused: %v", codes)
	}
	huge := "big([" + strings.Repeat("a, ", 40000) + "a])" // over the size limit
	if c := post("many-1", "p1", huge); c != http.StatusRequestEntityTooLarge {
		t.Fatalf("a message over %d bytes: %d, want 413", maxMessageBytes, c)
	}
	grown := int64(heap()) - int64(base)
	t.Logf("codes %v; live heap grew by %d MB (bound %d MB)", codes, grown>>20, floodMemoryBound>>20)
	if grown > floodMemoryBound {
		t.Fatalf("a flood made the worker hold %d MB, over its bound of %d MB", grown>>20, floodMemoryBound>>20)
	}
	resp, err := http.Get("http://" + w.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if c := regexp.MustCompile(`reason="overloaded"[^}]*} (\d+)`).FindSubmatch(m); c == nil || string(c[1]) == "0" {
		t.Fatalf("/metrics does not count the refusals:\n%s", m)
	}
}
