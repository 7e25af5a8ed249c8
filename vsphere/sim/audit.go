package sim

import (
	"fmt"
	"sort"
	"time"
)

// Audit checks a relocation record for the invariants a scheduler must keep
// and returns one line per violation:
//   - no VM had two overlapping migrations;
//   - no host took part (as source or target) in more than slots at once;
//   - no successful move left its target above high + tolerance.
func Audit(recs []Relocation, slots int, high, tolerance float64) []string {
	var out []string
	byVM := map[string][]Relocation{}
	type edge struct {
		at    time.Time
		delta int
	}
	byHost := map[string][]edge{}
	for _, r := range recs {
		byVM[r.VM] = append(byVM[r.VM], r)
		for _, h := range []string{r.From, r.To} {
			byHost[h] = append(byHost[h], edge{r.Start, 1}, edge{r.End, -1})
		}
		if r.Result == "success" && r.TargetLoad > high+tolerance {
			out = append(out, fmt.Sprintf("oversubscription: %s took %s to %.3f, over %.2f", r.To, r.VM, r.TargetLoad, high))
		}
	}
	for vm, rs := range byVM {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Start.Before(rs[j].Start) })
		for i := 1; i < len(rs); i++ {
			if rs[i].Start.Before(rs[i-1].End) {
				out = append(out, fmt.Sprintf("overlap: %s migrated %v-%v and %v-%v", vm, rs[i-1].Start, rs[i-1].End, rs[i].Start, rs[i].End))
			}
		}
	}
	for h, es := range byHost {
		sort.Slice(es, func(i, j int) bool {
			if es[i].at.Equal(es[j].at) {
				return es[i].delta < es[j].delta // an end before a start at the same instant
			}
			return es[i].at.Before(es[j].at)
		})
		n, peak := 0, 0
		for _, e := range es {
			n += e.delta
			peak = max(peak, n)
		}
		if peak > slots {
			out = append(out, fmt.Sprintf("slots: host %s took part in %d migrations at once (limit %d)", h, peak, slots))
		}
	}
	sort.Strings(out)
	return out
}
