package raftstore

import "encoding/json"

// PolicyVersion is one pushed text of a policy.
type PolicyVersion struct {
	Version int    `json:"version"`
	Text    string `json:"text,omitempty"`
	SHA256  string `json:"sha256"`
	Author  string `json:"author"` // the authenticated identity that pushed it
	Message string `json:"message"`
	Note    string `json:"note,omitempty"` // an author the client named, when it was not the identity
	Time    int64  `json:"time"`           // commit time, unix nanoseconds, from the leader
}

// Activation is one audit entry: which version became active, when and by whom.
type Activation struct {
	Who    string `json:"who"`
	Time   int64  `json:"time"`
	From   int    `json:"from"` // 0: none was active
	To     int    `json:"to"`
	Reason string `json:"reason"` // push, activate, rollback, restore
	Note   string `json:"note,omitempty"`
}

// Policy is a name with every version ever pushed.
type Policy struct {
	Name        string          `json:"name"`
	Versions    []PolicyVersion `json:"versions"`
	Active      int             `json:"active"` // 0: none
	Activations []Activation    `json:"activations"`
}

// Lease is a held key.
type Lease struct {
	Key            string            `json:"key"`
	Holder         string            `json:"holder"`
	Token          uint64            `json:"token"`  // fencing token: the raft index of the grant
	Expiry         int64             `json:"expiry"` // unix nanoseconds
	TTL            int64             `json:"ttl"`    // nanoseconds
	Granted        int64             `json:"granted"`
	Attrs          map[string]string `json:"attrs,omitempty"`
	NeedsReconcile bool              `json:"needs_reconcile,omitempty"` // the previous holder let it expire
}

// LeaseView is a lease as listed, with its state at the time of the read.
type LeaseView struct {
	Lease
	State string `json:"state"` // held, or needs-reconcile (a VM lease that expired instead of being released)
}

// Worker is a live agent.
type Worker struct {
	ID       string `json:"id"`
	Host     string `json:"host"`
	Cluster  string `json:"cluster,omitempty"` // its host's cluster, as its heartbeats last said
	Addr     string `json:"addr"`
	LastSeen int64  `json:"last_seen"` // the last write about it: registered, back, or marked down
	// Down: the leader heard no heartbeat within the worker TTL. Heartbeats
	// that change nothing are kept by the leader alone (liveness.go): at
	// steady state liveness writes nothing to the log.
	Down bool `json:"down,omitempty"`
}

// JournalEntry is one negotiation or migration event.
type JournalEntry struct {
	Index       uint64 `json:"index"`
	Time        int64  `json:"time"`
	Kind        string `json:"kind"` // negotiation, migration, would-migrate, reconcile, ...
	Interaction string `json:"interaction,omitempty"`
	Policy      string `json:"policy,omitempty"`
	Version     int    `json:"version,omitempty"`
	VM          string `json:"vm,omitempty"`
	From        string `json:"from,omitempty"`
	To          string `json:"to,omitempty"`
	Outcome     string `json:"outcome,omitempty"`
	Reason      string `json:"reason,omitempty"`
	DurationMS  int64  `json:"duration_ms,omitempty"`
	Worker      string `json:"worker,omitempty"`
	Fault       string `json:"fault,omitempty"` // vCenter's fault type, for a failed migration
}

// Result is what the FSM returns for a command: data or an error.
type Result struct {
	Error *Error          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	// Fingerprint identifies the request a remembered result answered
	// (see fingerprint); never sent to clients.
	Fingerprint string `json:"fp,omitempty"`
}

func okResult(v any) *Result {
	b, err := json.Marshal(v)
	if err != nil {
		return &Result{Error: errf(CodeInternal, "", "encode result: %v", err)}
	}
	return &Result{Data: b}
}

func refused(e *Error) *Result { return &Result{Error: e} }

// PushRequest pushes a new policy version.
type PushRequest struct {
	Name          string `json:"name"`
	Text          string `json:"text"`
	Author        string `json:"author"`
	Message       string `json:"message"`
	ExpectVersion *int   `json:"expect_version,omitempty"` // compare-and-set on the latest version
	NoActivate    bool   `json:"no_activate,omitempty"`
	Note          string `json:"note,omitempty"` // set by the member
}

// PushResult says what a push did.
type PushResult struct {
	Name      string `json:"name"`
	Version   int    `json:"version"`
	Active    int    `json:"active"`
	SHA256    string `json:"sha256"`
	Unchanged bool   `json:"unchanged,omitempty"` // identical to the active version: nothing written
}

// ActivateRequest makes a version active, or rolls back when Rollback is set.
type ActivateRequest struct {
	Name     string `json:"name"`
	Version  int    `json:"version,omitempty"`
	Who      string `json:"who"`
	Rollback bool   `json:"rollback,omitempty"`
	Note     string `json:"note,omitempty"` // set by the member
}

// ActivateResult reports the change.
type ActivateResult struct {
	Name      string `json:"name"`
	From      int    `json:"from"`
	Active    int    `json:"active"`
	Unchanged bool   `json:"unchanged,omitempty"`
}

// AcquireItem is one key to take. With AnyOf > 0, Key is a prefix and the
// store takes the first free key Prefix+n for n in [0, AnyOf): a slot.
type AcquireItem struct {
	Key   string            `json:"key"`
	AnyOf int               `json:"any_of,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// AcquireRequest takes every item or none.
type AcquireRequest struct {
	Holder    string        `json:"holder"`
	TTLMillis int64         `json:"ttl_ms"`
	Items     []AcquireItem `json:"items"`
	// LockDelayMillis is set by the leader from its configuration.
	LockDelayMillis int64 `json:"lock_delay_ms,omitempty"`
}

// Grant is the result of a successful acquire.
type Grant struct {
	Holder string   `json:"holder"`
	Token  uint64   `json:"token"`
	Expiry int64    `json:"expiry"`
	Keys   []string `json:"keys"`
	// NeedsReconcile lists VM keys whose previous holder let the lease
	// expire: check the VM's real state before acting on it.
	NeedsReconcile []string `json:"needs_reconcile,omitempty"`
}

// LeaseHeldDetails is the Details of a lease_held or lock_delay error.
type LeaseHeldDetails struct {
	Key    string `json:"key"`
	Holder string `json:"holder"`
	Expiry int64  `json:"expiry"`
}

// RenewRequest renews or releases keys held under one token.
type RenewRequest struct {
	Keys      []string `json:"keys"`
	Holder    string   `json:"holder"`
	Token     uint64   `json:"token"`
	TTLMillis int64    `json:"ttl_ms,omitempty"`
}

// HeartbeatRequest registers a live worker. Load, when given, is the
// worker's host as it last read it: the leader keeps it in memory for its
// term (never in the log) and answers each heartbeat with the loads of
// the worker's peers (HeartbeatReply), so that a worker need not read
// the whole inventory from vCenter to know them.
type HeartbeatRequest struct {
	ID   string    `json:"id"`
	Host string    `json:"host"`
	Addr string    `json:"addr"`
	Load *HostLoad `json:"load,omitempty"`
	// Cluster is the host's cluster; the store takes it from the load
	// when there is one.
	Cluster string `json:"cluster,omitempty"`
}

// HostLoad is what a worker reports of its host with each heartbeat.
type HostLoad struct {
	Host            string `json:"host"`
	Cluster         string `json:"cluster,omitempty"` // the cluster's id; "" for a standalone host
	ConnectionState string `json:"connection_state"`
	InMaintenance   bool   `json:"in_maintenance,omitempty"`
	CPUUsedMHz      int64  `json:"cpu_used_mhz"`
	CPUCapacityMHz  int64  `json:"cpu_capacity_mhz"`
	MemUsedMB       int64  `json:"mem_used_mb"`
	MemCapacityMB   int64  `json:"mem_capacity_mb"`
	At              int64  `json:"at"` // unix ns: when the worker read it
}

// HeartbeatReply answers a heartbeat: the worker as the store has it, and,
// when the heartbeat carried a load and was kept by the leader
// (PeersKnown), the latest load of every other live worker's host in the
// same cluster that the leader heard within the worker TTL this term. A
// heartbeat that was written to the log answers without them; the next
// one carries them.
type HeartbeatReply struct {
	Worker
	PeersKnown bool       `json:"peers_known,omitempty"`
	Peers      []HostLoad `json:"peers,omitempty"`
	// RosterIndex is the store's roster index (State.RosterIndex) when the
	// leader kept the heartbeat: while it stays the same, the roster the
	// worker last read is current. 0 says nothing: read the roster.
	RosterIndex uint64 `json:"roster_index,omitempty"`
}

// Roster is what a worker needs of its peers and of the operators' drain
// requests, as of one roster index (GET /v1/roster).
type Roster struct {
	Index   uint64      `json:"roster_index"`
	Workers []Worker    `json:"workers"` // live workers
	Hosts   []HostState `json:"hosts"`
}

// JournalRequest appends entries; Limit is set by the leader.
type JournalRequest struct {
	Entries []JournalEntry `json:"entries"`
	Limit   int            `json:"limit,omitempty"`
}

// MemberRequest records a member's HTTP address.
type MemberRequest struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr,omitempty"`
}

// HostState is an operator's drain request for a host and the worker's
// report of its progress.
type HostState struct {
	Name        string `json:"name"`
	Drain       bool   `json:"drain"`
	RequestedBy string `json:"requested_by,omitempty"`
	RequestedAt int64  `json:"requested_at,omitempty"`
	State       string `json:"state,omitempty"`  // draining, drained, blocked, standby
	Reason      string `json:"reason,omitempty"` // why a drain is blocked, for example
	VMsLeft     int    `json:"vms_left"`
	Updated     int64  `json:"updated,omitempty"`
}

// HostRequest asks for a drain (Drain true) or withdraws it.
type HostRequest struct {
	Name  string `json:"name"`
	Who   string `json:"who"`
	Drain bool   `json:"drain"`
}

// HostReport is a worker's report on its host.
type HostReport struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	VMsLeft int    `json:"vms_left"`
}
