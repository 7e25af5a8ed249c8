package api

// Journal kinds: what an entry is about.
const (
	KindMigration    = "migration"     // a relocation parley started, or decided not to start
	KindWouldMigrate = "would-migrate" // a dry run's migration
	KindNegotiation  = "negotiation"   // an interaction that ended without a move
	KindReconcile    = "reconcile"     // leases from before a restart, set right
	KindDRS          = "drs"           // a cluster left to DRS, or taken back
	KindVCenter      = "vcenter"       // vCenter went away or came back, as one worker saw it
	KindAudit        = "audit"         // an administrative command
)

// Journal outcomes.
const (
	OutcomeSuccess   = "success"   // the relocation completed
	OutcomeFailed    = "failed"    // vCenter failed the relocation (the entry's fault says how)
	OutcomeStalled   = "stalled"   // the relocation made no progress and was cancelled
	OutcomeCancelled = "cancelled" // the lease was lost before or during the relocation
	OutcomeDryRun    = "dry-run"   // a would-migrate entry
	OutcomeNoMove    = "no-move"   // a negotiation ended without a move (the reason says why)
	OutcomeSkipped   = "skipped"   // nothing to do: the VM had moved, or left the host
	OutcomeReleased  = "released"  // reconcile: a lease given back, nothing in flight
	OutcomeFinished  = "finished"  // reconcile: a relocation found finished

	OutcomeLeftToDRS        = "left to DRS"
	OutcomeBalancedByParley = "balanced by parley"
	OutcomeVCenterDown      = "unavailable" // vcenter: the worker's view of its host is stale
	OutcomeVCenterUp        = "available"   // vcenter: answering again
	OutcomeVCenterStillDown = "still unavailable"
)

// The states a host is reported in.
const (
	HostDraining = "draining"
	HostDrained  = "drained"
	HostBlocked  = "blocked"
	HostStandby  = "standby"
	HostDRS      = "drs" // its cluster is left to DRS
)
