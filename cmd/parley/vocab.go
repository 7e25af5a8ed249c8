package main

import "github.com/parleyhq/parley/lcc"

// vocabularyKnown returns the constraints workers provide, which every
// policy may call. It is empty until the worker's library exists.
func vocabularyKnown() lcc.Known { return lcc.Known{} }
