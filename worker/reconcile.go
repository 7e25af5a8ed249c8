package worker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
)

// reconcile settles leases still held in this worker's name, from before
// a restart: a migration still running in vCenter is waited for, then
// everything is released and journaled.
func (w *Worker) reconcile(ctx context.Context) error {
	ls, err := w.store.Leases(ctx, "", false)
	if err != nil {
		return err
	}
	byToken := map[uint64][]raftstore.LeaseView{}
	for _, l := range ls {
		if l.Holder == w.cfg.ID && !strings.HasPrefix(l.Key, api.PrefixCool) {
			byToken[l.Token] = append(byToken[l.Token], l)
		}
	}
	if len(byToken) == 0 {
		return nil
	}
	inv, err := w.vs.Inventory(ctx)
	if err != nil {
		return err
	}
	for token, group := range byToken {
		var keys []string
		vm := ""
		for _, l := range group {
			keys = append(keys, l.Key)
			if strings.HasPrefix(l.Key, api.PrefixVM) {
				vm = strings.TrimPrefix(l.Key, api.PrefixVM)
			}
		}
		outcome := api.OutcomeReleased
		if vm != "" {
			vmID := ""
			if v, ok := inv.VM(vm); ok {
				vmID = v.ID
			}
			for vmID != "" {
				st, err := w.vs.VMState(ctx, vmID)
				if err != nil || !st.Running {
					break
				}
				outcome = api.OutcomeFinished
				if _, err := w.store.Renew(ctx, raftstore.RenewRequest{Keys: keys, Holder: w.cfg.ID, Token: token, TTLMillis: 30000}); err != nil {
					w.log.Warn().Err(err).Str("vm", vm).Strs("keys", keys).Msg("reconcile: renew the leases of a migration still running")
				}
				if !sleep(ctx, time.Second) {
					return ctx.Err()
				}
			}
		}
		w.releaseKeys(ctx, w.cfg.ID, token, keys)
		w.journal(ctx, raftstore.JournalEntry{Kind: api.KindReconcile, VM: vm, From: w.cfg.Host, Outcome: outcome, Worker: w.cfg.ID,
			Reason: fmt.Sprintf("leases %v held from before a restart", keys)})
		w.log.Info().Str("vm", vm).Strs("keys", keys).Str("outcome", outcome).Msg("reconciled leases from before a restart")
	}
	return nil
}
