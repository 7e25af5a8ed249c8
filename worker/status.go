package worker

import (
	"math"
	"net/http"
	"time"

	"github.com/parleyhq/parley/raftstore/pki"
)

// Status is what a worker tells the dashboard about its host: capacity and
// use as vCenter last reported them, the smoothed load the policies act on,
// the VMs on it, and the interactions it took part in lately. A store
// member gathers every live worker's (GET /v1/fleet) for the web
// dashboard; like traces, it is served to holders of a certificate of the
// cluster's CA.
type Status struct {
	Worker         string              `json:"worker"`
	Host           string              `json:"host"`
	Cluster        string              `json:"cluster,omitempty"` // the cluster's name; "" for a standalone host
	InMaintenance  bool                `json:"in_maintenance"`
	CPUCapacityMHz int64               `json:"cpu_capacity_mhz"`
	CPUUsedMHz     int64               `json:"cpu_used_mhz"`
	MemCapacityMB  int64               `json:"mem_capacity_mb"`
	MemUsedMB      int64               `json:"mem_used_mb"`
	LoadCPU        float64             `json:"load_cpu"` // smoothed shares, as the policies see them
	LoadMem        float64             `json:"load_mem"`
	VMs            []StatusVM          `json:"vms"`
	Interactions   []InteractionStatus `json:"interactions"`                   // newest first
	Missing        []string            `json:"missing_capabilities,omitempty"` // optional parts this worker lacks, and what is off
	VCenterUp      bool                `json:"vcenter_up"`                     // vCenter answers, with a view fresh enough to act on
	VCenterReason  string              `json:"vcenter_reason,omitempty"`       // why not, when it does not
	ViewAgeSeconds float64             `json:"view_age_seconds"`               // how old the view of the host is (-1: none yet)
	Time           time.Time           `json:"time"`
}

// StatusVM is one VM on the host.
type StatusVM struct {
	Name   string `json:"name"`
	CPUMHz int64  `json:"cpu_mhz"`
	MemMB  int64  `json:"mem_mb"`
}

// InteractionStatus is a worker's part in one interaction.
type InteractionStatus struct {
	ID      string    `json:"id"`
	Policy  string    `json:"policy"`
	Role    string    `json:"role"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Outcome string    `json:"outcome,omitempty"` // closed, failed or timed out, with a reason; "" while running
}

// summaries lists the interactions kept, newest first.
func (b *traceBook) summaries() []InteractionStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]InteractionStatus, 0, len(b.order))
	for i := len(b.order) - 1; i >= 0; i-- {
		steps := b.steps[b.order[i]]
		if len(steps) == 0 {
			continue
		}
		s := InteractionStatus{ID: b.order[i], Policy: steps[0].Policy, Role: steps[0].Role, Started: steps[0].Time}
		for _, st := range steps {
			if st.Kind == "outcome" && st.Agent == steps[0].Agent {
				s.Ended, s.Outcome = st.Time, st.Term
			}
		}
		out = append(out, s)
	}
	return out
}

// status is this worker's Status now.
func (w *Worker) status() Status {
	w.mu.Lock()
	st := Status{Worker: w.cfg.ID, Host: w.cfg.Host, LoadCPU: mean(w.samples), LoadMem: mean(w.memSamples), VMs: []StatusVM{}, Time: time.Now(), Missing: w.caps.missing()}
	inv := w.inv
	w.mu.Unlock()
	// viewAge and vcenterUp take their own locks: not under w.mu, which
	// is not reentrant (a status request held w.mu for good, and the
	// worker with it)
	st.VCenterUp, st.VCenterReason = w.vcenterUp()
	st.ViewAgeSeconds = -1
	if age := w.viewAge(st.Time); age != noView {
		st.ViewAgeSeconds = math.Round(age.Seconds()*10) / 10
	}
	if inv != nil {
		if h, ok := inv.Host(w.cfg.Host); ok {
			st.InMaintenance, st.CPUCapacityMHz, st.CPUUsedMHz, st.MemCapacityMB, st.MemUsedMB = h.InMaintenance, h.CPUCapacityMHz, h.CPUUsedMHz, h.MemCapacityMB, h.MemUsedMB
			st.Cluster = h.Cluster
			for _, c := range inv.Clusters {
				if c.ID == h.Cluster {
					st.Cluster = c.Name
				}
			}
			for _, v := range inv.VMsOn(h.ID) {
				st.VMs = append(st.VMs, StatusVM{Name: v.Name, CPUMHz: v.CPUDemandMHz, MemMB: v.MemMB})
			}
		}
	}
	if w.traces != nil {
		st.Interactions = w.traces.summaries()
	}
	return st
}

// handleStatus serves GET /v1/status.
func (w *Worker) handleStatus(rw http.ResponseWriter, r *http.Request) {
	if w.cfg.TLS != nil && pki.PeerName(r.TLS) == "" {
		httpError(rw, http.StatusUnauthorized, "the status is served to readers with a certificate of the cluster's CA")
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	writeJSONTo(rw, w.status())
}
