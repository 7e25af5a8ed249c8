package worker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/raftstore"
)

// A worker learns of a new active policy version through a blocking query
// kept open per policy (raftstore.Client.WaitActivePolicy: the store
// answers when the active version changes, or after policyWait) instead
// of a linearizable read at every tick. The answer comes from any member's
// state: a change is seen as soon as that member has applied it. Where the
// store cannot wait (raftstore.Mem) or the watch is not current, the tick
// reads the active version as before.

// policyWaiter is a store that answers blocking queries.
type policyWaiter interface {
	WaitActivePolicy(ctx context.Context, name, sha256 string, wait time.Duration) (*raftstore.PolicyVersion, error)
}

// policyWait is how long one blocking query waits: under the store
// client's HTTP timeout.
const policyWait = 10 * time.Second

type policyWatch struct {
	mu   sync.Mutex
	seen map[string]watchedPolicy
}

type watchedPolicy struct {
	v  *raftstore.PolicyVersion
	at time.Time // when the store last answered
}

// watchPolicies keeps a blocking query open for each policy the worker may
// follow, until ctx ends.
func (w *Worker) watchPolicies(ctx context.Context) {
	pw := w.caps.waiter
	if pw == nil {
		return
	}
	names := w.policies
	if !slices.Contains(names, evacuatePolicy) {
		names = append(slices.Clone(names), evacuatePolicy)
	}
	for _, name := range names {
		go func() {
			have := ""
			for ctx.Err() == nil {
				v, err := pw.WaitActivePolicy(ctx, name, have, policyWait)
				if err != nil {
					w.watch.forget(name)
					if !sleep(ctx, time.Second) {
						return
					}
					continue
				}
				have = v.SHA256
				w.watch.note(name, v)
			}
		}()
	}
}

func (p *policyWatch) note(name string, v *raftstore.PolicyVersion) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]watchedPolicy{}
	}
	p.seen[name] = watchedPolicy{v: v, at: time.Now()}
}

func (p *policyWatch) forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.seen, name)
}

// current is the watched active version of name, if the store answered
// for it lately.
func (p *policyWatch) current(name string) (*raftstore.PolicyVersion, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.seen[name]
	if !ok || time.Since(s.at) > 2*policyWait+5*time.Second {
		return nil, false
	}
	return s.v, true
}

// evacuatePolicy is followed by every worker whose host is being drained,
// whatever its list: a drain always works, as maintenance mode does in DRS.
const evacuatePolicy = "evacuate"

// followPolicies returns the active version of each policy the worker
// follows now, in priority order: evacuate first while its host is being
// drained, then its list. A policy without an active version is skipped
// (and logged). The first of the list sets the thresholds the worker
// observes its host with. Running interactions keep their own versions.
func (w *Worker) followPolicies(ctx context.Context) []*lcc.Program {
	names := w.policies
	if w.draining() && !slices.Contains(names, evacuatePolicy) {
		names = append([]string{evacuatePolicy}, names...)
	}
	var out []*lcc.Program
	for _, name := range names {
		prog, err := w.followPolicy(ctx, name)
		if err != nil {
			w.log.Warn().Err(err).Str("policy", name).Msg("no usable active policy")
			continue
		}
		out = append(out, prog)
		if name == w.policies[0] {
			w.mu.Lock()
			w.active = prog
			w.mu.Unlock()
		}
	}
	return out
}

// followPolicy returns the active version of one policy, compiling it when
// it changed.
func (w *Worker) followPolicy(ctx context.Context, name string) (*lcc.Program, error) {
	v, ok := w.watch.current(name)
	if !ok {
		var err error
		if v, err = w.store.ActivePolicy(ctx, name, false); err != nil {
			return nil, err
		}
	}
	prog, err := w.program(name, v)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	changed := w.following[name] != prog.Ref
	w.following[name] = prog.Ref
	w.mu.Unlock()
	if changed {
		w.log.Info().Str("policy", prog.Ref.String()).Str("sha256", prog.Ref.Hash[:12]).Msg("following policy version")
	}
	return prog, nil
}
