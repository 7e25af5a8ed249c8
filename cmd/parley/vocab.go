package main

import (
	"context"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
)

// vocabularyKnown returns the constraints workers provide, which every
// policy may call.
func vocabularyKnown() lcc.Known { return policies.Known() }

// policyParams lists the parameter set: every param(Name, Value) a policy
// may state, with its type, range, default and meaning.
func (c *cli) policyParams(_ context.Context, args []string) int {
	fs := c.newFlags("policy params", "policy params [-o table|json]")
	out := fs.String("o", "table", "output format: table or json")
	if _, code, ok := c.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *out == "json" {
		writeJSON(c.stdout, policies.ParamSet)
		return exitOK
	}
	t := newTable(c.stdout, "PARAMETER", "TYPE", "RANGE", "DEFAULT", "MEANING")
	for _, p := range policies.ParamSet {
		def := p.Default
		if def == "" {
			def = "(unset)"
		} else if p.Unit == "s" {
			def += " s"
		}
		t.row(p.Name, string(p.Type), p.Range(), def, p.Doc)
	}
	t.flush()
	return exitOK
}
