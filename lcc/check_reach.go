package lcc

// messageFlow answers, for every role, which messages the roles it can
// reach by role changes send and receive, in time linear in the model
// (times the number of distinct messages / 64): the role-change graph is
// condensed into strongly connected components (a recursive role, or a
// ring of roles, is one), and each component's message set is its own
// union that of every component it reaches, computed once in reverse
// topological order as bit sets. Asking each send and receive for its own
// reachable set, as the checker once did, was quadratic: 41 s for 11,000
// chained roles.
type messageFlow struct {
	comp        map[string]int // role key -> component
	sends, recv []bitset       // per component: message keys reachable
	anySend     []bool         // a reachable send of a message with no fixed name
	anyRecv     []bool
	msgID       map[string]int
}

type bitset []uint64

func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}

func (c *checker) flow() *messageFlow {
	if c.flows == nil {
		c.flows = newMessageFlow(c.m, c.clauses)
	}
	return c.flows
}

// reaches reports whether a role reachable from role (by role changes,
// itself included) sends (or, with sends false, receives) message key mk.
func (f *messageFlow) reaches(role, mk string, sends bool) bool {
	ci, ok := f.comp[role]
	if !ok {
		return false
	}
	if sends {
		if f.anySend[ci] {
			return true
		}
	} else if f.anyRecv[ci] {
		return true
	}
	id, ok := f.msgID[mk]
	if !ok {
		return false
	}
	if sends {
		return f.sends[ci].has(id)
	}
	return f.recv[ci].has(id)
}

func newMessageFlow(m *Model, clauses map[string]*Clause) *messageFlow {
	f := &messageFlow{comp: map[string]int{}, msgID: map[string]int{}}
	// roles in model order, for a deterministic numbering
	var roles []string
	index := map[string]int{}
	for _, cl := range m.Clauses {
		k := RoleKey(cl.Head.Role)
		if _, dup := index[k]; !dup && clauses[k] == cl {
			index[k] = len(roles)
			roles = append(roles, k)
		}
	}
	edges := make([][]int, len(roles))
	type msgs struct {
		sends, recv []int
		anyS, anyR  bool
	}
	own := make([]msgs, len(roles))
	id := func(k string) int {
		i, ok := f.msgID[k]
		if !ok {
			i = len(f.msgID)
			f.msgID[k] = i
		}
		return i
	}
	for i, k := range roles {
		walkSteps(clauses[k].Body, func(s *Step) {
			switch ev := s.Event.(type) {
			case *RoleChange:
				if j, ok := index[RoleKey(ev.Agent.Role)]; ok {
					edges[i] = append(edges[i], j)
				}
			case *Send:
				if mk := Key(ev.Msg); mk != "" {
					own[i].sends = append(own[i].sends, id(mk))
				} else {
					own[i].anyS = true
				}
			case *Recv:
				if mk := Key(ev.Msg); mk != "" {
					own[i].recv = append(own[i].recv, id(mk))
				} else {
					own[i].anyR = true
				}
			}
		})
	}
	comps := tarjan(edges)
	words := (len(f.msgID) + 63) / 64
	compOf := make([]int, len(roles))
	for ci, members := range comps {
		for _, r := range members {
			compOf[r] = ci
		}
	}
	f.sends, f.recv = make([]bitset, len(comps)), make([]bitset, len(comps))
	f.anySend, f.anyRecv = make([]bool, len(comps)), make([]bool, len(comps))
	// tarjan emits a component after every component it reaches: in that
	// order, each component's successors are complete when it is built
	for ci, members := range comps {
		s, r := make(bitset, words), make(bitset, words)
		for _, v := range members {
			for _, x := range own[v].sends {
				s.set(x)
			}
			for _, x := range own[v].recv {
				r.set(x)
			}
			f.anySend[ci] = f.anySend[ci] || own[v].anyS
			f.anyRecv[ci] = f.anyRecv[ci] || own[v].anyR
			for _, w := range edges[v] {
				if cw := compOf[w]; cw != ci {
					s.or(f.sends[cw])
					r.or(f.recv[cw])
					f.anySend[ci] = f.anySend[ci] || f.anySend[cw]
					f.anyRecv[ci] = f.anyRecv[ci] || f.anyRecv[cw]
				}
			}
		}
		f.sends[ci], f.recv[ci] = s, r
	}
	for k, i := range index {
		f.comp[k] = compOf[i]
	}
	return f
}

// tarjan returns the strongly connected components of a graph, each
// after every component reachable from it. It keeps its own stack, so a
// chain of any length uses no Go stack.
func tarjan(edges [][]int) [][]int {
	n := len(edges)
	idx, low := make([]int, n), make([]int, n)
	on := make([]bool, n)
	for i := range idx {
		idx[i] = -1
	}
	var stack, comps = []int{}, [][]int{}
	next := 0
	type frame struct{ v, e int }
	for root := 0; root < n; root++ {
		if idx[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		idx[root], low[root] = next, next
		next++
		stack = append(stack, root)
		on[root] = true
		for len(call) > 0 {
			fr := &call[len(call)-1]
			v := fr.v
			if fr.e < len(edges[v]) {
				w := edges[v][fr.e]
				fr.e++
				if idx[w] < 0 {
					idx[w], low[w] = next, next
					next++
					stack = append(stack, w)
					on[w] = true
					call = append(call, frame{w, 0})
				} else if on[w] {
					low[v] = min(low[v], idx[w])
				}
				continue
			}
			if low[v] == idx[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					on[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				comps = append(comps, comp)
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].v
				low[u] = min(low[u], low[v])
			}
		}
	}
	return comps
}
