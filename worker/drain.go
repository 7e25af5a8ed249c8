package worker

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
)

func (w *Worker) draining() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.drain != nil
}

func (w *Worker) cDrainRequested(_ context.Context, g *lcc.Goal) (bool, error) {
	w.mu.Lock()
	d := w.drain
	w.mu.Unlock()
	if d == nil {
		return false, nil
	}
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	if s.host.InMaintenance && d.State == api.HostDrained {
		return false, nil // done, and reported: a report lost on the way is made again
	}
	who := d.RequestedBy
	if who == "" {
		who = "operator"
	}
	return g.Unify(0, lcc.A(who)), nil
}

func (w *Worker) cReportDrain(ctx context.Context, g *lcc.Goal) (bool, error) {
	state, ok := g.AtomName(0)
	if !ok {
		return false, errors.New("report_drain/2: the state must be an atom")
	}
	reason := lcc.FormatTerm(g.Arg(1))
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	left := 0
	for _, v := range s.inv.VMsOn(s.host.ID) {
		if v.PoweredOn() {
			left++
		}
	}
	if err := w.store.ReportHost(ctx, raftstore.HostReport{Name: w.cfg.Host, State: state, Reason: reason, VMsLeft: left}); err != nil {
		return false, err
	}
	w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("state", state).Str("reason", reason).Int("vms_left", left).Msg("host state reported")
	return true, nil
}

func (w *Worker) cSetMaintenance(ctx context.Context, g *lcc.Goal) (bool, error) {
	on, ok := g.AtomName(0)
	if !ok || (on != "true" && on != "false") {
		return false, errors.New("set_maintenance/1 takes true or false")
	}
	if w.dryRun(g.Program) {
		w.log.Info().Str("interaction", g.Interaction).Str("maintenance", on).Msg("would set maintenance mode (dry run)")
		return true, nil
	}
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	if s.host.InMaintenance == (on == "true") {
		return true, nil // already so (a drain whose report is being made again)
	}
	if err := w.vs.SetMaintenance(ctx, s.host.ID, on == "true"); err != nil {
		return false, err
	}
	w.log.Info().Str("interaction", g.Interaction).Str("policy", g.Policy.String()).Str("maintenance", on).Msg("maintenance mode set")
	return true, nil
}
