package sim

import (
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Statistics from the load model. vcsim's PerformanceManager replays
// sample data unrelated to a host's quickStats; the simulator answers
// QueryPerf for its hosts' cpu.usage.average (hundredths of a percent of
// capacity) and mem.active.average (KB) from the same load model as
// quickStats: one sample every PerfEvery (20 s, vCenter's realtime
// interval), the last hour kept, and the moment of the query as the
// newest, oldest first. Other entities and counters get vcsim's answer.

const perfKept = 180 // an hour of 20 s samples

type perfSample struct {
	t        time.Time
	cpu, mem int64 // hundredths of a percent, KB
}

type perfManager struct {
	*simulator.PerformanceManager
	sim            *Sim
	cpuKey, memKey int32
}

// wrapPerf puts the load model's statistics in place of vcsim's samples.
func (s *Sim) wrapPerf() {
	reg := s.model.Map()
	si, ok := reg.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	if !ok || si.Content.PerfManager == nil {
		return
	}
	pm, ok := reg.Get(*si.Content.PerfManager).(*simulator.PerformanceManager)
	if !ok {
		return
	}
	w := &perfManager{PerformanceManager: pm, sim: s}
	for _, c := range pm.PerfCounter {
		if c.RollupType != types.PerfSummaryTypeAverage {
			continue
		}
		switch c.GroupInfo.GetElementDescription().Key + "." + c.NameInfo.GetElementDescription().Key {
		case "cpu.usage":
			w.cpuKey = c.Key
		case "mem.active":
			w.memKey = c.Key
		}
	}
	reg.Put(w)
	s.samplePerf()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.PerfEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.samplePerf()
			}
		}
	}()
}

// perfNowLocked is a host's sample now, from the load model.
func (s *Sim) perfNowLocked(id string, now time.Time) (perfSample, bool) {
	h, ok := s.hosts[id]
	if !ok {
		return perfSample{}, false
	}
	capMHz := int64(h.Summary.Hardware.CpuMhz) * int64(h.Summary.Hardware.NumCpuCores)
	if capMHz <= 0 {
		return perfSample{}, false
	}
	cpu, mem := s.loadLocked(id)
	return perfSample{t: now, cpu: cpu * 10000 / capMHz, mem: mem * 1024}, true
}

// samplePerf records every host's sample.
func (s *Sim) samplePerf() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perf == nil {
		s.perf = map[string][]perfSample{}
	}
	now := time.Now()
	for id := range s.hosts {
		if p, ok := s.perfNowLocked(id, now); ok {
			h := append(s.perf[id], p)
			if len(h) > perfKept {
				h = h[len(h)-perfKept:]
			}
			s.perf[id] = h
		}
	}
}

// QueryPerf answers for the simulator's hosts from the load model.
func (p *perfManager) QueryPerf(ctx *simulator.Context, req *types.QueryPerf) soap.HasFault {
	ours := len(req.QuerySpec) > 0
	for _, qs := range req.QuerySpec {
		p.sim.mu.Lock()
		_, host := p.sim.hosts[qs.Entity.Value]
		p.sim.mu.Unlock()
		if qs.Entity.Type != "HostSystem" || !host || qs.Format == string(types.PerfFormatCsv) {
			ours = false
		}
	}
	if !ours {
		return p.PerformanceManager.QueryPerf(ctx, req)
	}
	body := &methods.QueryPerfBody{Res: &types.QueryPerfResponse{}}
	for _, qs := range req.QuerySpec {
		body.Res.Returnval = append(body.Res.Returnval, p.series(qs))
	}
	return body
}

func (p *perfManager) series(qs types.PerfQuerySpec) *types.PerfEntityMetric {
	s := p.sim
	now := time.Now()
	s.mu.Lock()
	samples := append([]perfSample(nil), s.perf[qs.Entity.Value]...)
	if cur, ok := s.perfNowLocked(qs.Entity.Value, now); ok {
		samples = append(samples, cur)
	}
	s.mu.Unlock()
	var kept []perfSample
	for _, x := range samples {
		if (qs.StartTime == nil || x.t.After(*qs.StartTime)) && (qs.EndTime == nil || !x.t.After(*qs.EndTime)) {
			kept = append(kept, x)
		}
	}
	if qs.MaxSample > 0 && len(kept) > int(qs.MaxSample) {
		kept = kept[len(kept)-int(qs.MaxSample):]
	}
	interval := int32(s.cfg.PerfEvery / time.Second)
	m := &types.PerfEntityMetric{PerfEntityMetricBase: types.PerfEntityMetricBase{Entity: qs.Entity}}
	for _, x := range kept {
		m.SampleInfo = append(m.SampleInfo, types.PerfSampleInfo{Timestamp: x.t, Interval: interval})
	}
	for _, id := range qs.MetricId {
		ser := &types.PerfMetricIntSeries{PerfMetricSeries: types.PerfMetricSeries{Id: id}, Value: make([]int64, len(kept))}
		for i, x := range kept {
			switch id.CounterId {
			case p.cpuKey:
				ser.Value[i] = x.cpu
			case p.memKey:
				ser.Value[i] = x.mem
			}
		}
		m.Value = append(m.Value, ser)
	}
	return m
}
