package lcc

import (
	"math"
	"sort"
	"strconv"
)

// Hashing: a state is written out canonically (variables numbered by
// first appearance, agent ids renamed for symmetry) and hashed.

type writer struct {
	b        []byte
	m        *machine
	refs     map[*Ref]int
	envs     map[uintptr]int
	live     map[uintptr]map[string]bool // per clause instance, the variables what remains to run still uses
	owned    map[uintptr]bool            // live sets made here (the others are defVars', not to be changed)
	rename   map[string]string
	keepRefs bool
}

// defVars is the set of variable names a definition uses.
func (m *machine) defVars(d Def) map[string]bool {
	if vs, ok := m.vars[d]; ok {
		return vs
	}
	vs := map[string]bool{}
	walkSteps(d, func(st *Step) {
		for _, t := range stepTerms(st) {
			termVars(t, vs)
		}
		for _, l := range st.Cond {
			termVars(litTerm(l), vs)
		}
	})
	m.vars[d] = vs
	return vs
}

// liveVars finds, for each clause instance of a thread, the variables the
// rest of its run can still read: a variable nothing will read again
// does not tell two states apart.
func (w *writer) liveVars(th *mThread) {
	if th == nil {
		return
	}
	use := func(env map[string]*Ref, vs map[string]bool) {
		if env == nil {
			return
		}
		k := envKey(env)
		set, ok := w.live[k]
		switch {
		case !ok:
			w.live[k] = vs // shared with defVars until a second use: most clause instances have one
			return
		case !w.owned[k]:
			own := make(map[string]bool, len(set)+len(vs))
			for v := range set {
				own[v] = true
			}
			set = own
			w.live[k] = set
			w.owned[k] = true
		}
		for v := range vs {
			set[v] = true
		}
	}
	frames := func(fs []frame) {
		for _, f := range fs {
			switch f.kind {
			case fDef, fRecv:
				use(f.env, w.m.defVars(f.def))
			case fOr:
				for _, alt := range f.def.(*Or).Alts[f.next:] {
					use(f.env, w.m.defVars(alt))
				}
			}
		}
	}
	frames(th.k)
	for _, x := range th.wait {
		if x.alt >= 0 && len(th.k) > 0 {
			use(x.env, w.m.defVars(th.k[len(th.k)-1].def.(*Or).Alts[x.alt]))
		}
	}
	for _, b := range th.par {
		w.liveVars(b)
	}
	for fb := th.fb; fb != nil; fb = fb.prev {
		frames(fb.k)
	}
}

func (w *writer) str(s string) {
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
}

func (w *writer) num(n int) { w.b = strconv.AppendInt(w.b, int64(n), 10); w.b = append(w.b, ',') }

func (w *writer) id(s string) {
	if r, ok := w.rename[s]; ok {
		s = r
	}
	w.str(s)
}

func (w *writer) term(t Term) {
	for {
		if r, ok := t.(*Ref); ok && r.Val != nil {
			if w.keepRefs {
				w.b = append(w.b, 'R')
				w.ref(r)
			}
			t = r.Val
			continue
		}
		break
	}
	switch x := t.(type) {
	case nil:
		w.b = append(w.b, '0')
	case *Ref:
		w.b = append(w.b, 'V')
		w.ref(x)
	case *Var:
		w.b = append(w.b, '_')
	case *Atom:
		w.b = append(w.b, 'a')
		w.id(x.Name)
	case *Int:
		w.b = append(w.b, 'i')
		w.b = strconv.AppendInt(w.b, x.V, 10)
	case *Float:
		w.b = append(w.b, 'f')
		w.b = strconv.AppendUint(w.b, math.Float64bits(x.V), 16)
	case *Str:
		w.b = append(w.b, 's')
		w.str(x.V)
	case *Nil:
		w.b = append(w.b, 'n')
	case *Compound:
		w.b = append(w.b, 'c')
		w.str(x.Functor)
		w.num(len(x.Args))
		for _, a := range x.Args {
			w.term(a)
		}
	case *Cons:
		w.b = append(w.b, 'l')
		w.term(x.Head)
		w.term(x.Tail)
	default:
		w.b = append(w.b, '?')
	}
}

func (w *writer) ref(r *Ref) {
	n, ok := w.refs[r]
	if !ok {
		n = len(w.refs)
		w.refs[r] = n
	}
	w.num(n)
}

func (w *writer) env(e map[string]*Ref) {
	if e == nil {
		w.b = append(w.b, 'e')
		return
	}
	k := envKey(e)
	if n, ok := w.envs[k]; ok {
		w.b = append(w.b, 'E')
		w.num(n)
		return
	}
	w.envs[k] = len(w.envs)
	live := w.live[k]
	names := make([]string, 0, len(e))
	for name := range e {
		if live[name] || w.keepRefs {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	w.b = append(w.b, '{')
	for _, name := range names {
		w.str(name)
		w.term(e[name])
	}
	w.b = append(w.b, '}')
}

func (w *writer) frames(fs []frame) {
	w.num(len(fs))
	for _, f := range fs {
		w.b = append(w.b, byte('A'+f.kind))
		w.num(w.m.defIDs[f.def])
		w.env(f.env)
		if f.tail {
			w.b = append(w.b, 't')
		}
		if f.pre {
			w.b = append(w.b, 'p')
		}
		w.num(f.next)
		if f.role != nil {
			w.term(f.role)
		}
	}
}

func (w *writer) thread(th *mThread) {
	if th == nil {
		w.b = append(w.b, '-')
		return
	}
	w.b = append(w.b, 'T')
	w.term(th.role)
	w.num(th.depth)
	w.frames(th.k)
	w.num(len(th.wait))
	for _, x := range th.wait {
		w.num(w.m.defIDs[x.recv])
		w.env(x.env)
		w.num(x.alt)
		w.b = strconv.AppendFloat(w.b, x.ns, 'g', -1, 64)
		if x.expired {
			w.b = append(w.b, 'x')
		}
	}
	w.num(len(th.par))
	for _, b := range th.par {
		w.thread(b)
	}
	w.num(len(th.trail))
	for _, r := range th.trail {
		w.ref(r)
	}
	for fb := th.fb; fb != nil; fb = fb.prev {
		w.b = append(w.b, 'F')
		w.frames(fb.k)
		w.term(fb.role)
		w.num(fb.depth)
		w.num(fb.mark)
	}
}

func hasFallback(th *mThread) bool {
	if th == nil {
		return false
	}
	if th.fb != nil {
		return true
	}
	for _, b := range th.par {
		if hasFallback(b) {
			return true
		}
	}
	return false
}

func (w *writer) agent(ag *mAgent) {
	w.refs = resetMap(w.refs)
	w.envs = resetMap(w.envs)
	w.live = resetMap(w.live)
	w.owned = resetMap(w.owned)
	w.liveVars(ag.root)
	w.keepRefs = hasFallback(ag.root)
	w.b = append(w.b, 'G', byte('0'+ag.status))
	if ag.broken {
		w.b = append(w.b, '!')
	}
	if ag.woken {
		w.b = append(w.b, 'w')
	}
	w.num(len(ag.mbox))
	for _, msg := range ag.mbox {
		w.id(msg.FromID)
		w.term(msg.FromRole)
		w.term(msg.FromCurrent)
		w.id(msg.ToID)
		w.term(msg.ToRole)
		w.term(msg.Body)
	}
	w.num(len(ag.late))
	for _, t := range ag.late {
		w.term(t)
	}
	w.thread(ag.root)
}

// resetMap empties m for reuse, or makes it.
func resetMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	clear(m)
	return m
}
