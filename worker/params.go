package worker

import (
	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
)

// params returns a program's parameters (policies.ParamSet, defaults
// filled in), read once per compiled program. A nil program, before any
// policy is followed, gives the defaults.
func (w *Worker) params(p *lcc.Program) policies.Params {
	if p == nil {
		return policies.DefaultParams()
	}
	if v, ok := w.paramCache.Load(p); ok {
		return v.(policies.Params)
	}
	pp := policies.ReadParams(p.Model)
	w.paramCache.Store(p, pp)
	return pp
}

// dryRun: the worker's flag or the policy's param(dry_run, true).
func (w *Worker) dryRun(p *lcc.Program) bool { return w.cfg.DryRun || w.params(p).DryRun }
