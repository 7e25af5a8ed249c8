package raftstore

import (
	"strings"
	"time"

	"github.com/parleyhq/parley/raftstore/api"
)

// The one write path. Every write, whether it comes over HTTP to a member
// or is a call on Mem, goes through the same two steps:
//
//  1. prepare, before the command is proposed: the caller's identity is
//     bound into the request (a worker acts in its own name; journal
//     entries carry who wrote them), the store's settings are filled in
//     (lock-delay, journal limit) and the request is validated;
//  2. the state machine, when the command applies: the command carries
//     its identity (Command.Who, Command.Role), and the rules that depend
//     on the state (a worker releases a reservation only while it holds
//     the VM's lease; a worker reports only on its own host) are decided
//     there, on the state the command applies to (authorise, below).
//
// So Mem enforces what a member enforces, and a rule decided on the state
// is decided on the state the command changes, not on a read before it.

// writeSettings are the store's settings a write carries into its command.
type writeSettings struct {
	lockDelay    time.Duration
	journalLimit int
}

func settingsOf(cfg Config) writeSettings {
	return writeSettings{lockDelay: cfg.LeaseLockDelay, journalLimit: cfg.JournalLimit}
}

// prepare binds id into body, fills in the settings and validates it; the
// refusal names what was wrong. body is the request about to become typ's
// command.
func (ws writeSettings) prepare(id Identity, body any) *Error {
	switch b := body.(type) {
	case *AcquireRequest:
		b.LockDelayMillis = ws.lockDelay.Milliseconds()
		return bindName(id, "holder", &b.Holder)
	case *RenewRequest:
		if onlyReservations(b.Keys) {
			// a migrating worker renews and gives back its target's
			// reservations: the state machine decides (authorise)
			if b.Holder == "" {
				return bindName(id, "holder", &b.Holder)
			}
			return nil
		}
		return bindName(id, "holder", &b.Holder)
	case *HeartbeatRequest:
		if e := bindName(id, "id", &b.ID); e != nil {
			return e
		}
		if e := badLoad(b); e != nil {
			return e
		}
		if b.Load != nil {
			b.Cluster = b.Load.Cluster
		}
	case *JournalRequest:
		b.Limit = ws.journalLimit
		if id.Name != "" && !id.Member {
			for i := range b.Entries {
				b.Entries[i].Worker = id.Name // recorded, never claimed
			}
		}
	case *HostRequest:
		if id.Name != "" {
			b.Who = id.Name
		}
	}
	return nil
}

// bindName checks that a worker acts in its own name: claimed is the name
// the request gives (a holder, a worker id); a worker's empty claim becomes
// its name. Other roles pass: an admin may act in any name; an operator's
// release is forced, and audited.
func bindName(id Identity, field string, claimed *string) *Error {
	if id.Name == "" || id.Member || id.Role != RoleWorker {
		return nil
	}
	if *claimed == "" {
		*claimed = id.Name
	}
	if *claimed != id.Name {
		return errf(CodeForbidden, field, "worker %q may act only in its own name, not as %q", id.Name, *claimed)
	}
	return nil
}

func onlyReservations(keys []string) bool {
	for _, k := range keys {
		if !strings.HasPrefix(k, api.PrefixReserve) {
			return false
		}
	}
	return len(keys) > 0
}

// authorise decides, when a command applies, the rules that depend on the
// state, for a command a worker sent. Commands written before commands
// carried their role (Role "") were checked by the member that proposed
// them, and are applied as they were.
func (s *State) authorise(at applied, c *Command, body any) *Error {
	if c.Role != RoleWorker || c.Who == "" {
		return nil
	}
	switch b := body.(type) {
	case *AcquireRequest:
		return ownName(c.Who, "holder", b.Holder)
	case *HeartbeatRequest:
		return ownName(c.Who, "id", b.ID)
	case *RenewRequest:
		if b.Holder == c.Who {
			return nil
		}
		return s.migratorOfReservations(at.now, c.Who, b.Keys)
	case *HostReport:
		own := ""
		if wk := s.Workers[c.Who]; wk != nil {
			own = wk.Host
		}
		if own != b.Name {
			return errf(CodeForbidden, "name", "worker %q reports only on its own host (%q), not %q", c.Who, own, b.Name)
		}
	case *JournalRequest:
		for i, e := range b.Entries {
			if e.Worker != c.Who {
				return errf(CodeForbidden, "entries", "entry %d names worker %q; worker %q writes only its own", i, e.Worker, c.Who)
			}
		}
	}
	return nil
}

func ownName(who, field, claimed string) *Error {
	if claimed != who {
		return errf(CodeForbidden, field, "worker %q may act only in its own name, not as %q", who, claimed)
	}
	return nil
}

// migratorOfReservations is the one case where a worker renews or releases
// a lease it does not hold: a target's reservations for a VM
// (reserve/HOST/VM) are kept alive and given back by the worker that
// migrates the VM, which holds the VM's lease (vm/VM).
func (s *State) migratorOfReservations(now int64, who string, keys []string) *Error {
	for _, k := range keys {
		key, ok := api.ParseKey(k)
		if !ok || key.Kind != api.KeyReserve {
			return errf(CodeForbidden, "holder", "worker %q may act only in its own name: %s is not a reservation it may give back", who, k)
		}
		if s.Leases[k] == nil {
			continue // given back already: the release is refused as stale, as for its holder
		}
		l := s.Leases[api.VMKey(key.VM)]
		if l == nil || l.Holder != who || l.Expiry <= now {
			return errf(CodeForbidden, "holder", "worker %q may renew or release reservation %s only while it holds %s", who, k, api.VMKey(key.VM))
		}
	}
	return nil
}
