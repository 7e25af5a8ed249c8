package sim

import (
	"encoding/json"
	"errors"
	"net/http"
)

// ControlHandler serves a small HTTP API for tests and operators of the
// simulator:
//
//	GET  /healthz                           {"status": "ok"} (a container's health check)
//	GET  /relocations                       the relocation record
//	GET  /placement                         VM name -> host name
//	GET  /loads                             host name -> CPU use / capacity
//	GET  /api-stats                         {"calls": N, "objects": N, "by_method": {...}} since start
//	POST /vms/{name}/demand       {"cpu_mhz": N, "mem_mb": N}
//	POST /hosts/{name}/maintenance {"on": true}
//	POST /hosts/{name}/connected   {"connected": false}
//	GET  /faults                            the faults in force (faults.go)
//	POST /faults                  any subset of {"outage": "refuse"|"hang"|"none", "latency_ms": N,
//	                              "jitter_ms": N, "relocate_fail_rate": 0..1, "relocate_fault": "NAME",
//	                              "relocate_stall_rate": 0..1, "expire_sessions": true}
//	DELETE /faults                          clears every fault
func (s *Sim) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { reply(w, map[string]string{"status": "ok"}, nil) })
	mux.HandleFunc("GET /relocations", func(w http.ResponseWriter, r *http.Request) { reply(w, s.Relocations(), nil) })
	mux.HandleFunc("GET /placement", func(w http.ResponseWriter, r *http.Request) { reply(w, s.Placement(), nil) })
	mux.HandleFunc("GET /loads", func(w http.ResponseWriter, r *http.Request) { reply(w, s.HostLoads(), nil) })
	s.faultRoutes(mux)
	mux.HandleFunc("GET /api-stats", func(w http.ResponseWriter, r *http.Request) { reply(w, s.APIStats(), nil) })
	mux.HandleFunc("GET /sdk-url", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"url": s.URL().String()}, nil)
	})
	mux.HandleFunc("POST /vms/{name}/demand", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			CPU int64 `json:"cpu_mhz"`
			Mem int64 `json:"mem_mb"`
		}
		if !decode(w, r, &req) {
			return
		}
		reply(w, map[string]string{"status": "ok"}, s.SetDemand(r.PathValue("name"), req.CPU, req.Mem))
	})
	mux.HandleFunc("POST /hosts/{name}/maintenance", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			On bool `json:"on"`
		}
		if !decode(w, r, &req) {
			return
		}
		reply(w, map[string]string{"status": "ok"}, s.SetMaintenance(r.PathValue("name"), req.On))
	})
	mux.HandleFunc("POST /hosts/{name}/connected", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Connected bool `json:"connected"`
		}
		if !decode(w, r, &req) {
			return
		}
		reply(w, map[string]string{"status": "ok"}, s.SetConnected(r.PathValue("name"), req.Connected))
	})
	return mux
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "bad request body: " + err.Error()})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrNotFound) {
			code = http.StatusNotFound
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}
