package test

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestLeaseModelCatchesDoubleGrant shows the linearizability check can
// fail: two grants of one key that overlap in time, with no release
// between them, are refused; the same grants one after a release pass.
func TestLeaseModelCatchesDoubleGrant(t *testing.T) {
	m := leaseModel.ToModel()
	bad := []porcupine.Operation{
		{ClientId: 0, Input: leaseInput{Op: "acquire", Key: "k", Holder: "a"}, Call: 0, Output: leaseOutput{OK: true, Token: 5}, Return: 10},
		{ClientId: 1, Input: leaseInput{Op: "acquire", Key: "k", Holder: "b"}, Call: 20, Output: leaseOutput{OK: true, Token: 7}, Return: 30},
	}
	if porcupine.CheckOperations(m, bad) {
		t.Fatal("a double grant passed the check")
	}
	good := []porcupine.Operation{
		bad[0],
		{ClientId: 0, Input: leaseInput{Op: "release", Key: "k", Holder: "a", Token: 5}, Call: 12, Output: leaseOutput{OK: true}, Return: 15},
		bad[1],
	}
	if !porcupine.CheckOperations(m, good) {
		t.Fatal("a grant after a release failed the check")
	}
	// a stale token must not be accepted after someone else got the key
	stale := append(good, porcupine.Operation{ClientId: 0, Input: leaseInput{Op: "renew", Key: "k", Holder: "a", Token: 5}, Call: 40, Output: leaseOutput{OK: true}, Return: 45})
	if porcupine.CheckOperations(m, stale) {
		t.Fatal("a renew with a stale token passed the check")
	}
	// tokens must grow
	backwards := []porcupine.Operation{
		bad[0],
		{ClientId: 0, Input: leaseInput{Op: "release", Key: "k", Holder: "a", Token: 5}, Call: 12, Output: leaseOutput{OK: true}, Return: 15},
		{ClientId: 1, Input: leaseInput{Op: "acquire", Key: "k", Holder: "b"}, Call: 20, Output: leaseOutput{OK: true, Token: 3}, Return: 30},
	}
	if porcupine.CheckOperations(m, backwards) {
		t.Fatal("a token that went backwards passed the check")
	}
}
