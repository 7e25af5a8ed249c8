package worker

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/vsphere"
)

// hasFact reports whether the policy states functor(a, b).
func hasFact(p *lcc.Program, functor, a, b string) bool {
	return p != nil && p.Fact(lcc.C(functor, lcc.A(a), lcc.A(b))) != nil
}

// rulesAllow checks the must rules of the policy's facts, and vCenter's
// mandatory rules, for VM on host.
func (w *Worker) rulesAllow(p *lcc.Program, inv *vsphere.Inventory, vm, host string) bool {
	if inv != nil {
		v, okv := inv.VM(vm)
		h, okh := inv.Host(host)
		if okv && okh && inv.RuleProblem(v.ID, h.ID) != "" {
			return false
		}
	}
	if p == nil || p.Model == nil {
		return true
	}
	for _, f := range p.Model.Facts {
		c, ok := f.Term.(*lcc.Compound)
		if !ok || len(c.Args) != 2 {
			continue
		}
		a, _ := c.Args[0].(*lcc.Atom)
		b, _ := c.Args[1].(*lcc.Atom)
		if a == nil || b == nil {
			continue
		}
		switch c.Functor {
		case "must_run_on":
			if a.Name == vm && b.Name != host {
				return false
			}
		case "must_not_run_on":
			if a.Name == vm && b.Name == host {
				return false
			}
		case "anti_affinity":
			other := ""
			if a.Name == vm {
				other = b.Name
			} else if b.Name == vm {
				other = a.Name
			}
			if other != "" && inv != nil {
				h, _ := inv.Host(host)
				for _, v := range inv.VMsOn(h.ID) {
					if v.Name == other {
						return false
					}
				}
			}
		}
	}
	return true
}

func (w *Worker) cRulesAllow(_ context.Context, g *lcc.Goal) (bool, error) {
	vm, ok1 := g.AtomName(0)
	host, ok2 := g.AtomName(1)
	if !ok1 || !ok2 {
		return false, errors.New("rules_allow/2 needs a VM and a host name")
	}
	s, err := w.snap()
	if err != nil {
		return false, err
	}
	return w.rulesAllow(g.Program, s.inv, vm, host), nil
}
