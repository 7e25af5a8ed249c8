package sim

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/simulator"
)

// What the simulator serves, counted, so that the load a client puts on
// vCenter can be measured (GET /api-stats on the control API): SDK calls
// (one per SOAP request to /sdk), by method, and the managed objects the
// property collector returned (objects of RetrievePropertiesEx and
// ContinueRetrievePropertiesEx, object sets of WaitForUpdatesEx).
type apiStats struct {
	calls   atomic.Int64
	objects atomic.Int64
	mu      sync.Mutex
	methods map[string]int64
}

// APIStats is the count since the simulator started.
type APIStats struct {
	Calls    int64            `json:"calls"`
	Objects  int64            `json:"objects"`
	ByMethod map[string]int64 `json:"by_method"`
}

// APIStats returns what the simulator has served since it started.
func (s *Sim) APIStats() APIStats {
	st := &s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	out := APIStats{Calls: st.calls.Load(), Objects: st.objects.Load(), ByMethod: make(map[string]int64, len(st.methods))}
	for k, v := range st.methods {
		out.ByMethod[k] = v
	}
	return out
}

// sdkMethod finds the method of a SOAP request: the first element in its Body.
var sdkMethod = regexp.MustCompile(`<(?:[A-Za-z0-9_]+:)?Body[^>]*>\s*<(?:[A-Za-z0-9_]+:)?([A-Za-z0-9_]+)`)

// maxSOAPRequest bounds what the counter reads of a request to find its method.
const maxSOAPRequest = 64 << 20

// countSDK puts the counter in front of vcsim's SDK endpoint. A POST to
// /sdk is more specific than vcsim's own pattern (/sdk, any method), so
// the mux sends SDK calls here first.
func (s *Sim) countSDK(svc *simulator.Service) {
	if svc.ServeMux == nil {
		svc.ServeMux = http.NewServeMux()
	}
	svc.ServeMux.HandleFunc("POST /sdk", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSOAPRequest))
		if err != nil {
			http.Error(w, "read request", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		method := "unknown"
		if m := sdkMethod.FindSubmatch(body); m != nil {
			method = string(m[1])
		}
		s.stats.calls.Add(1)
		s.stats.mu.Lock()
		if s.stats.methods == nil {
			s.stats.methods = map[string]int64{}
		}
		s.stats.methods[method]++
		s.stats.mu.Unlock()
		s.sessionCookie(r)
		if !s.serveFaulty(w, r) {
			return
		}
		switch method {
		case "RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "RetrieveProperties":
			cw := &countingWriter{ResponseWriter: w, tag: []byte("<objects>")}
			svc.ServeSDK(cw, r)
			s.stats.objects.Add(cw.n)
		case "WaitForUpdatesEx", "WaitForUpdates", "CheckForUpdates":
			cw := &countingWriter{ResponseWriter: w, tag: []byte("<objectSet>")}
			svc.ServeSDK(cw, r)
			s.stats.objects.Add(cw.n)
		default:
			svc.ServeSDK(w, r)
		}
	})
}

// countingWriter counts a tag in what it writes, across writes.
type countingWriter struct {
	http.ResponseWriter
	tag  []byte
	tail []byte // the last len(tag)-1 bytes written, where a tag may begin
	n    int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	buf := append(c.tail, p...)
	c.n += int64(bytes.Count(buf, c.tag))
	k := len(c.tag) - 1
	if len(buf) < k {
		k = len(buf)
	}
	c.tail = append(c.tail[:0], buf[len(buf)-k:]...)
	return c.ResponseWriter.Write(p)
}
