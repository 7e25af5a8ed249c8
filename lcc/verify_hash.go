package lcc

import (
	"hash/maphash"
	"sort"
)

// hash writes s canonically: within each symmetry group, agents are
// ordered by their state with the group's ids blanked, and renamed to the
// group's ids in that order.
func (v *verifier) hash(s *mState) uint64 {
	w := &writer{m: v.m}
	order := make([]int, len(s.agents))
	for i := range order {
		order[i] = i
	}
	sig := ""
	var rename map[string]string
	if len(v.groups) > 0 {
		rename = map[string]string{}
		for _, g := range v.groups {
			sorted := append([]int(nil), g...)
			keys := make(map[int]string, len(g))
			for _, i := range g {
				keys[i] = string(v.agentBytes(s.agents[i], "?", v.blank))
			}
			sort.SliceStable(sorted, func(a, b int) bool { return keys[sorted[a]] < keys[sorted[b]] })
			for k, i := range g {
				order[i] = sorted[k]
				if sorted[k] != i {
					rename[v.m.specs[sorted[k]].id] = v.m.specs[i].id
					sig += v.m.specs[sorted[k]].id + ">" + v.m.specs[i].id + ","
				}
			}
		}
	}
	for _, i := range order {
		w.b = append(w.b, v.agentBytes(s.agents[i], sig, rename)...)
	}
	w.refs = map[*Ref]int{}
	w.rename = rename
	for _, ms := range s.mon {
		w.b = append(w.b, 'M')
		w.num(len(ms.items))
		for _, it := range ms.items {
			w.num(int(it.mask))
			for _, t := range it.vals {
				w.term(t)
			}
		}
	}
	return maphash.Bytes(v.seed, w.b)
}

// agentBytes is an agent's canonical form under a renaming, cached on
// the agent.
func (v *verifier) agentBytes(ag *mAgent, sig string, rename map[string]string) []byte {
	if b, ok := ag.ser[sig]; ok {
		return b
	}
	if v.scratch == nil {
		v.scratch = &writer{m: v.m}
	}
	w := v.scratch
	w.b, w.rename = w.b[:0], rename
	w.agent(ag)
	b := append([]byte(nil), w.b...)
	if sig == "" || sig == "?" { // the forms most states share; others are rarely asked for twice
		if ag.ser == nil {
			ag.ser = map[string][]byte{}
		}
		ag.ser[sig] = b
	}
	return b
}
