// Package api holds the words of parley's store contract that every side
// spells the same way: the lease keys and their parts, the states a lease
// view shows, the journal's kinds and outcomes, and the states a host is
// reported in. The store, the workers, the CLI and the dashboard build and
// read them here, so a key or an outcome is written in one place only.
//
// The wire types themselves (requests, replies, errors) are still in
// package raftstore.
package api

import (
	"strconv"
	"strings"
)

// Lease key prefixes. A key is one of
//
//	vm/VM                 the VM's lease: one migration of VM at a time
//	host/HOST/slot/N      one of a host's concurrent-vMotion slots
//	reserve/HOST/VM       capacity HOST promised to VM's negotiation
//	cool/VM               VM's cool-down after a migration
//	lock/NAME             a named lock
const (
	PrefixVM      = "vm/"
	PrefixHost    = "host/"
	PrefixReserve = "reserve/"
	PrefixCool    = "cool/"
	PrefixLock    = "lock/"
)

// VMKey is VM's migration lease.
func VMKey(vm string) string { return PrefixVM + vm }

// CoolKey is VM's cool-down lease.
func CoolKey(vm string) string { return PrefixCool + vm }

// ReserveKey is host's reservation for VM.
func ReserveKey(host, vm string) string { return ReservePrefix(host) + vm }

// ReservePrefix is the prefix of every reservation host has given.
func ReservePrefix(host string) string { return PrefixReserve + host + "/" }

// SlotPrefix is the prefix of host's vMotion slots: an acquire asks for
// any free one of SlotPrefix(host)+"0" .. +"N-1".
func SlotPrefix(host string) string { return PrefixHost + host + "/slot/" }

// KeyKind names what a lease key is for.
type KeyKind string

// The kinds of lease key.
const (
	KeyVM      KeyKind = "vm"
	KeySlot    KeyKind = "slot"
	KeyReserve KeyKind = "reserve"
	KeyCool    KeyKind = "cool"
	KeyLock    KeyKind = "lock"
)

// Key is a lease key taken apart.
type Key struct {
	Kind KeyKind
	VM   string // vm, reserve and cool keys
	Host string // slot and reserve keys
	Slot int    // slot keys
	Name string // lock keys
}

// ParseKey takes a lease key apart; ok is false for a key of no known
// shape. It checks shape only: the store's validation decides what a
// segment may hold.
func ParseKey(k string) (key Key, ok bool) {
	switch {
	case strings.HasPrefix(k, PrefixVM):
		vm := k[len(PrefixVM):]
		return Key{Kind: KeyVM, VM: vm}, vm != "" && !strings.Contains(vm, "/")
	case strings.HasPrefix(k, PrefixCool):
		vm := k[len(PrefixCool):]
		return Key{Kind: KeyCool, VM: vm}, vm != "" && !strings.Contains(vm, "/")
	case strings.HasPrefix(k, PrefixReserve):
		host, vm, found := strings.Cut(k[len(PrefixReserve):], "/")
		return Key{Kind: KeyReserve, Host: host, VM: vm}, found && host != "" && vm != "" && !strings.Contains(vm, "/")
	case strings.HasPrefix(k, PrefixLock):
		name := k[len(PrefixLock):]
		return Key{Kind: KeyLock, Name: name}, name != ""
	case strings.HasPrefix(k, PrefixHost):
		host, n, found := strings.Cut(k[len(PrefixHost):], "/slot/")
		slot, err := strconv.Atoi(n)
		return Key{Kind: KeySlot, Host: host, Slot: slot}, found && host != "" && !strings.Contains(host, "/") && err == nil && slot >= 0
	}
	return Key{}, false
}

// The states a lease view shows.
const (
	LeaseHeld           = "held"            // held and not expired
	LeaseNeedsReconcile = "needs-reconcile" // a VM lease that expired without release
)
