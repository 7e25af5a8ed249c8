//go:build !linux

package main

import "os/exec"

// dieWithParent: only Linux can tie a child's life to its parent's; on
// other systems the bench's deferred stop ends its stores.
func dieWithParent(*exec.Cmd) {}
