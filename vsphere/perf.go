package vsphere

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/performance"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// ErrNoStats says vCenter has no realtime sample of a host: the caller
// uses quickStats instead.
var ErrNoStats = errors.New("vsphere: no realtime statistics")

// HostStats is a host's latest realtime (20 s) sample from
// PerformanceManager: cpu.usage.average as a share of capacity and
// mem.active.average as a share of memory.
type HostStats struct {
	CPU, Mem float64
	Time     time.Time
}

// realtimeInterval is vCenter's realtime sampling interval, in seconds.
const realtimeInterval = 20

// HostStats reads host h's latest realtime sample: one QueryPerf (the
// counters' keys are looked up once per client).
func (c *Client) HostStats(ctx context.Context, h Host) (HostStats, error) {
	var out HostStats
	err := c.do(ctx, func(vc *vim25.Client) error {
		cpuKey, memKey, err := c.counterKeys(ctx, vc)
		if err != nil {
			return err
		}
		m := performance.NewManager(vc)
		res, err := m.Query(ctx, []types.PerfQuerySpec{{Entity: hostRef(h.ID), IntervalId: realtimeInterval, MaxSample: 1,
			MetricId: []types.PerfMetricId{{CounterId: cpuKey}, {CounterId: memKey}}}})
		if err != nil {
			return err
		}
		for _, r := range res {
			em, ok := r.(*types.PerfEntityMetric)
			if !ok || len(em.SampleInfo) == 0 {
				continue
			}
			last := len(em.SampleInfo) - 1
			out.Time = em.SampleInfo[last].Timestamp
			seen := 0
			for _, v := range em.Value {
				s, ok := v.(*types.PerfMetricIntSeries)
				if !ok || len(s.Value) <= last || s.Value[last] < 0 {
					continue
				}
				switch s.Id.CounterId {
				case cpuKey:
					out.CPU, seen = float64(s.Value[last])/10000, seen+1
				case memKey:
					if h.MemCapacityMB > 0 {
						out.Mem, seen = float64(s.Value[last])/1024/float64(h.MemCapacityMB), seen+1
					}
				}
			}
			if seen == 2 {
				return nil
			}
		}
		return ErrNoStats
	})
	if errors.Is(err, ErrNoStats) {
		return out, err
	}
	if err != nil {
		return out, fmt.Errorf("vsphere: statistics of %s: %w", h.Name, classify(err))
	}
	return out, nil
}

// counterKeys finds cpu.usage.average and mem.active.average once.
func (c *Client) counterKeys(ctx context.Context, vc *vim25.Client) (cpu, mem int32, err error) {
	c.perfMu.Lock()
	defer c.perfMu.Unlock()
	if c.cpuKey != 0 && c.memKey != 0 {
		return c.cpuKey, c.memKey, nil
	}
	info, err := performance.NewManager(vc).CounterInfoByName(ctx)
	if err != nil {
		return 0, 0, err
	}
	ci, mi := info["cpu.usage.average"], info["mem.active.average"]
	if ci == nil || mi == nil {
		return 0, 0, ErrNoStats
	}
	c.cpuKey, c.memKey = ci.Key, mi.Key
	return c.cpuKey, c.memKey, nil
}
