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

// TestPolicyModelCatchesLostVersion shows the policy check can fail: a
// version number reused by a second push is refused.
func TestPolicyModelCatchesLostVersion(t *testing.T) {
	m := policyModel.ToModel()
	ok := []porcupine.Operation{
		{ClientId: 0, Input: policyInput{Op: "push"}, Call: 0, Output: policyOutput{Version: 1, Active: 1}, Return: 10},
		{ClientId: 1, Input: policyInput{Op: "push"}, Call: 20, Output: policyOutput{Version: 2, Active: 2}, Return: 30},
		{ClientId: 0, Input: policyInput{Op: "activate", Version: 1}, Call: 40, Output: policyOutput{Active: 1, From: 2}, Return: 50},
	}
	if !porcupine.CheckOperations(m, ok) {
		t.Fatal("a correct history failed the check")
	}
	reused := append(ok[:2:2], porcupine.Operation{ClientId: 0, Input: policyInput{Op: "push"}, Call: 40, Output: policyOutput{Version: 2, Active: 2}, Return: 50})
	if porcupine.CheckOperations(m, reused) {
		t.Fatal("a reused version number passed the check")
	}
	wrongFrom := append(ok[:2:2], porcupine.Operation{ClientId: 0, Input: policyInput{Op: "activate", Version: 1}, Call: 40, Output: policyOutput{Active: 1, From: 1}, Return: 50})
	if porcupine.CheckOperations(m, wrongFrom) {
		t.Fatal("an activation that misreports the active version passed the check")
	}
}
