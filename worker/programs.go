package worker

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
)

// program compiles a stored version (cached by hash), checking that the
// text matches its recorded hash.
func (w *Worker) program(name string, v *raftstore.PolicyVersion) (*lcc.Program, error) {
	hash := lcc.HashSource([]byte(v.Text))
	if hash != v.SHA256 {
		return nil, fmt.Errorf("worker: policy %s v%d: text hash %s does not match the recorded %s", name, v.Version, hash[:12], v.SHA256[:12])
	}
	w.mu.Lock()
	p := w.programs[hash]
	w.mu.Unlock()
	if p != nil && p.Ref.Version == v.Version && p.Ref.Name == name {
		return p, nil
	}
	p, diags, err := lcc.Compile(fmt.Sprintf("%s@v%d", name, v.Version), []byte(v.Text), lcc.PolicyRef{Name: name, Version: v.Version, Hash: hash}, policies.Known())
	if err != nil {
		return nil, fmt.Errorf("worker: policy %s v%d does not compile here: %v", name, v.Version, diags.Errors())
	}
	w.mu.Lock()
	w.programs[hash] = p
	w.mu.Unlock()
	return p, nil
}

// resolve fetches the exact version a peer's message names.
func (w *Worker) resolve(ctx context.Context, ref lcc.PolicyRef) (*lcc.Program, error) {
	w.mu.Lock()
	p := w.programs[ref.Hash]
	w.mu.Unlock()
	if p != nil && p.Ref == ref {
		return p, nil
	}
	v, err := w.store.PolicyVersion(ctx, ref.Name, ref.Version)
	if err != nil {
		return nil, err
	}
	p, err = w.program(ref.Name, v)
	if err != nil {
		return nil, err
	}
	if p.Ref != ref {
		return nil, fmt.Errorf("%w: the store's %s has hash %.12s, the message names %.12s", lcc.ErrPolicyMismatch, p.Ref, p.Ref.Hash, ref.Hash)
	}
	return p, nil
}
