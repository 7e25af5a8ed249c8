package raftstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"
)

// The fleet as its workers see it, for the dashboard: a member asks every
// live worker for its status (GET /v1/status on the worker's message
// endpoint, with the member's certificate) at most once a second however
// many dashboards are open, and keeps the imbalance over time. Workers own
// this data (vCenter's figures and the policies' smoothed load); nothing
// of it goes through the log.

const (
	fleetMaxAge      = time.Second
	fleetHistory     = 720 // samples kept: 24 minutes at one every 2 s
	fleetEvery       = 2 * time.Second
	fleetConcurrency = 32
	workerAnswerMax  = 4 << 20 // bytes read from one worker's answer
)

// FleetHost is one registered worker and what it said about its host.
type FleetHost struct {
	Worker   string          `json:"worker"`
	Host     string          `json:"host"`
	Addr     string          `json:"addr"`
	Live     bool            `json:"live"` // its heartbeat is within the worker TTL
	LastSeen int64           `json:"last_seen"`
	Status   json.RawMessage `json:"status,omitempty"` // the worker's answer (worker.Status)
	Error    string          `json:"error,omitempty"`  // why it gave none
}

// FleetSample is the fleet's CPU imbalance at one time: the standard
// deviation and the maximum of the hosts' CPU use over capacity, as vCenter
// reported it to the workers.
type FleetSample struct {
	Time   int64   `json:"time"`
	StdDev float64 `json:"stddev"`
	Max    float64 `json:"max"`
}

// Fleet is GET /v1/fleet's answer.
type Fleet struct {
	Time    int64         `json:"time"`
	Member  string        `json:"member"`
	Hosts   []FleetHost   `json:"hosts"`
	History []FleetSample `json:"history"`
}

type fleetCache struct {
	mu      sync.Mutex
	at      time.Time
	hosts   []FleetHost
	history []FleetSample
}

func (h *server) fleet(w http.ResponseWriter, r *http.Request) {
	c := &h.s.fleet
	c.mu.Lock() // one refresh at a time; the others wait for it and share it
	defer c.mu.Unlock()
	if time.Since(c.at) > fleetMaxAge {
		c.hosts = h.gatherFleet(r.Context())
		c.at = time.Now()
		if n := len(c.history); n == 0 || time.Since(time.Unix(0, c.history[n-1].Time)) >= fleetEvery {
			if s, ok := imbalance(c.hosts); ok {
				s.Time = c.at.UnixNano()
				c.history = append(c.history, s)
				if len(c.history) > fleetHistory {
					c.history = append([]FleetSample(nil), c.history[len(c.history)-fleetHistory:]...)
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, Fleet{Time: c.at.UnixNano(), Member: h.s.cfg.ID, Hosts: c.hosts, History: c.history})
}

// gatherFleet asks every live worker for its status.
func (h *server) gatherFleet(ctx context.Context) []FleetHost {
	var hosts []FleetHost
	now := time.Now().UnixNano()
	h.s.fsm.read(func(s *State) {
		for _, wk := range s.Workers {
			hosts = append(hosts, FleetHost{Worker: wk.ID, Host: wk.Host, Addr: wk.Addr, LastSeen: wk.LastSeen, Live: wk.live(now, 0)})
		}
	})
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Host < hosts[j].Host })
	h.eachLive(ctx, hosts, func(fh *FleetHost) {
		b, err := h.askWorker(ctx, fh.Addr, "/v1/status")
		if err != nil {
			fh.Error = err.Error()
			return
		}
		fh.Status = b
	})
	return hosts
}

// eachLive calls fn for every live worker, a bounded number at once.
func (h *server) eachLive(ctx context.Context, hosts []FleetHost, fn func(*FleetHost)) {
	sem := make(chan struct{}, fleetConcurrency)
	var wg sync.WaitGroup
	for i := range hosts {
		if !hosts[i].Live {
			hosts[i].Error = "no heartbeat within the worker TTL"
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(fh *FleetHost) {
			defer func() { <-sem; wg.Done() }()
			fn(fh)
		}(&hosts[i])
	}
	wg.Wait()
}

// errNotThere is a worker's 404: it keeps nothing under that name.
var errNotThere = fmt.Errorf("not found")

// askWorker GETs path from a worker's message endpoint with this member's
// certificate.
func (h *server) askWorker(ctx context.Context, addr, path string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme(h.s.cfg.TLS)+addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.s.workersHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, workerAnswerMax))
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNotThere
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("worker answered %d", resp.StatusCode)
	case !json.Valid(b):
		return nil, fmt.Errorf("worker's answer is not JSON")
	}
	return b, nil
}

// imbalance is the standard deviation and maximum of the answering hosts'
// CPU use over capacity.
func imbalance(hosts []FleetHost) (FleetSample, bool) {
	var loads []float64
	for _, fh := range hosts {
		var st struct {
			Cap  int64 `json:"cpu_capacity_mhz"`
			Used int64 `json:"cpu_used_mhz"`
		}
		if fh.Status == nil || json.Unmarshal(fh.Status, &st) != nil || st.Cap <= 0 {
			continue
		}
		loads = append(loads, float64(st.Used)/float64(st.Cap))
	}
	if len(loads) == 0 {
		return FleetSample{}, false
	}
	var sum, mx float64
	for _, l := range loads {
		sum += l
		mx = math.Max(mx, l)
	}
	mean, ss := sum/float64(len(loads)), 0.0
	for _, l := range loads {
		ss += (l - mean) * (l - mean)
	}
	return FleetSample{StdDev: math.Sqrt(ss / float64(len(loads))), Max: mx}, true
}

var interactionID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// interaction serves one interaction's steps from every live worker that
// kept them, in time order, and the journal's entries about it.
func (h *server) interaction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !interactionID.MatchString(id) {
		writeErr(w, badRequest("id", "an interaction id is 1 to 128 letters, digits and ._:-"))
		return
	}
	var hosts []FleetHost
	var journal []JournalEntry
	now := time.Now().UnixNano()
	h.s.fsm.read(func(s *State) {
		for _, wk := range s.Workers {
			hosts = append(hosts, FleetHost{Worker: wk.ID, Host: wk.Host, Addr: wk.Addr, Live: wk.live(now, 0)})
		}
		for _, e := range s.Journal {
			if e.Interaction == id {
				journal = append(journal, e)
			}
		}
	})
	type step struct {
		Time time.Time `json:"time"`
		raw  json.RawMessage
	}
	var mu sync.Mutex
	var steps []step
	from, missing := []string{}, []string{}
	h.eachLive(r.Context(), hosts, func(fh *FleetHost) {
		b, err := h.askWorker(r.Context(), fh.Addr, "/v1/traces/"+id)
		mu.Lock()
		defer mu.Unlock()
		if err == errNotThere {
			return
		}
		var raws []json.RawMessage
		if err == nil {
			err = json.Unmarshal(b, &raws)
		}
		if err != nil {
			missing = append(missing, fh.Worker+": "+err.Error())
			return
		}
		from = append(from, fh.Worker)
		for _, raw := range raws {
			var s step
			if json.Unmarshal(raw, &s) == nil {
				s.raw = raw
				steps = append(steps, s)
			}
		}
	})
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].Time.Before(steps[j].Time) })
	out := make([]json.RawMessage, len(steps))
	for i, s := range steps {
		out[i] = s.raw
	}
	if len(out) == 0 && len(journal) == 0 {
		writeErr(w, errf(CodeNotFound, "id", "no live worker keeps interaction %s and the journal has nothing on it", id))
		return
	}
	sort.Strings(from)
	writeJSON(w, http.StatusOK, map[string]any{"interaction": id, "steps": out, "workers": from, "unanswered": missing, "journal": journal})
}
