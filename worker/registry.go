package worker

import (
	"math"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
)

// The constraint library: the vocabulary, implemented. Each verb lives in
// its own file: observe.go (observation and load), bids.go (choosing a VM,
// fits and bids), rules.go (placement rules), leases.go (reservations and
// leases), migrate.go, reconcile.go, drain.go; params.go reads the
// policy's parameters.

// registry builds the constraint library: exactly the vocabulary.
func (w *Worker) registry() *lcc.Registry {
	r := lcc.NewRegistry()
	impl := map[string]lcc.ConstraintFunc{
		"self_host/1":       w.cSelfHost,
		"load/2":            w.cLoad,
		"capacity/2":        w.cCapacity,
		"vms/1":             w.cVMs,
		"peers/2":           w.cPeers,
		"overloaded/1":      w.cOverloaded,
		"underloaded/1":     w.cUnderloaded,
		"fleet_calm/0":      w.cFleetCalm,
		"pick_vm/3":         w.cPickVM,
		"fits/3":            w.cFits,
		"bid_score/4":       w.cBidScore,
		"best_bid/3":        w.cBestBid,
		"rules_allow/2":     w.cRulesAllow,
		"reserve/4":         w.cReserve,
		"take_leases/4":     w.cTakeLeases,
		"migrate/4":         w.cMigrate,
		"release/1":         w.cRelease,
		"journal_note/2":    w.cJournalNote,
		"vm_count/1":        w.cVMCount,
		"drain_requested/1": w.cDrainRequested,
		"report_drain/2":    w.cReportDrain,
		"set_maintenance/1": w.cSetMaintenance,
	}
	for _, c := range policies.Vocabulary {
		fn, ok := impl[c.Key()]
		if !ok {
			panic("worker: vocabulary entry " + c.Key() + " is not implemented")
		}
		r.MustRegister(c.Name, c.Arity, c.Doc, fn)
	}
	return r
}

func round(f float64) float64 { return math.Round(f*10000) / 10000 }
