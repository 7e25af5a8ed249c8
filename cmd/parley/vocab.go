package main

import (
	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
)

// vocabularyKnown returns the constraints workers provide, which every
// policy may call.
func vocabularyKnown() lcc.Known { return policies.Known() }
