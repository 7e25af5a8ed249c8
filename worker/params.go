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

// fixesRules: the policy moves a VM breaking a mandatory vCenter rule
// first (param(fix_rules, _)); a text from before the parameter keeps
// what its name had: consolidate and evacuate move VMs for their own
// reasons.
func (w *Worker) fixesRules(p *lcc.Program) bool {
	if pp := w.params(p); pp.HasFixRules {
		return pp.FixRules
	}
	return p == nil || (p.Ref.Name != "consolidate" && p.Ref.Name != "evacuate")
}

// intoDRSClusters: a host whose cluster is left to DRS still gives room to
// the policy's VMs (param(into_drs_clusters, _)); a text from before the
// parameter keeps what its name had: evacuate only.
func (w *Worker) intoDRSClusters(p *lcc.Program) bool {
	if pp := w.params(p); pp.HasIntoDRSClusters {
		return pp.IntoDRSClusters
	}
	return p != nil && p.Ref.Name == "evacuate"
}

// dryRun: the worker's flag or the policy's param(dry_run, true).
func (w *Worker) dryRun(p *lcc.Program) bool { return w.cfg.DryRun || w.params(p).DryRun }
