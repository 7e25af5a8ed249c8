// Package raftstore is parley's replicated store: a small Raft group
// (hashicorp/raft, its log and stable store in BoltDB with fsync, or in
// hashicorp/raft-wal with --log-store wal, file snapshots, TCP transport) whose state machine keeps the versioned
// policies with their audit, the leases that fence migrations (VM leases,
// host slots, capacity reservations, cool-downs), live workers, host drain
// requests and a bounded journal.
//
// The package is in layers, each knowing only the one below:
//
//   - the state machine: State, changed only by Commands through the
//     handler table (command.go), refusing with result codes (errors.go),
//     never a transport status; FSM wraps it for raft (fsm.go);
//   - Mem: the same state machine in memory, without Raft or HTTP, for the
//     placement benchmark and unit tests (mem.go);
//   - Store: one raft member and the leader's duties (store.go);
//   - the HTTP API, a file per resource (http*.go), and Member, which serves
//     it (member.go);
//   - Client, which workers and the CLI use (client.go).
//
// Why it is built this way is in DESIGN.md beside this file.
package raftstore
