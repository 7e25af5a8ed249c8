package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/pki"
)

const adminToken = "parley_bench-admin-secret-of-some-length"

// parleyStore is a 3-member parley store on loopback, as `parley store`
// runs it (TLS, tokens, default timeouts, fsync'd BoltDB), in this
// process. With raw set, a pair is two bare raft.Apply calls on the
// leader of a command of the size of an acquire, which the FSM skips: the
// baseline of what the API costs.
type parleyStore struct {
	members []*raftstore.Member
	leader  *raftstore.Member
	client  *raftstore.Client
	raw     bool
	noop    []byte
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// benchPKI makes (once) a CA under dir and returns its folder.
func benchPKI(dir string) (string, error) {
	p := filepath.Join(dir, "pki")
	if _, err := os.Stat(filepath.Join(p, pki.CAFile)); err == nil {
		return p, nil
	}
	if err := pki.InitCA(p); err != nil {
		return "", err
	}
	return p, nil
}

func startParley(ctx context.Context, dir string, raw bool, logStore string) (*parleyStore, error) {
	name := "parley"
	if raw {
		name = "raft"
	}
	certs, err := benchPKI(dir)
	if err != nil {
		return nil, err
	}
	p := &parleyStore{raw: raw}
	var first string
	for i := range 3 {
		id := fmt.Sprintf("%s%d", name, i+1)
		cfg := raftstore.DefaultConfig()
		cfg.ID, cfg.DataDir, cfg.LogStore = id, filepath.Join(dir, id), logStore
		if cfg.RaftAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if cfg.HTTPAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if cfg.TLS, err = pki.IssueLocal(certs, id); err != nil {
			return nil, err
		}
		cfg.AdminToken, cfg.Token = adminToken, adminToken
		if i == 0 {
			cfg.Bootstrap, first = true, cfg.HTTPAddr
		} else {
			cfg.Join = []string{first}
		}
		m, err := raftstore.Start(ctx, cfg)
		if err != nil {
			p.close()
			return nil, err
		}
		p.members = append(p.members, m)
		if i == 0 {
			if err := waitUntil(ctx, 10*time.Second, m.IsLeader); err != nil {
				p.close()
				return nil, fmt.Errorf("no leader: %w", err)
			}
		}
	}
	if err := waitUntil(ctx, 20*time.Second, func() bool { return len(p.members[0].Status().Members) == 3 }); err != nil {
		p.close()
		return nil, fmt.Errorf("members did not join: %w", err)
	}
	for _, m := range p.members {
		if m.IsLeader() {
			p.leader = m
		}
	}
	if p.leader == nil {
		p.close()
		return nil, errors.New("no leader")
	}
	admin, err := pki.IssueLocal(certs, "bench-"+name)
	if err != nil {
		return nil, err
	}
	addr, _ := p.leader.LeaderHTTP()
	if p.client, err = raftstore.NewClient([]string{addr}, raftstore.WithTLS(admin), raftstore.WithToken(adminToken)); err != nil {
		return nil, err
	}
	// a command of an acquire's size that the FSM skips
	body, _ := json.Marshal(raftstore.AcquireRequest{Holder: "client-00", TTLMillis: 30000, Items: []raftstore.AcquireItem{{Key: "vm/vm-00000000"}}})
	p.noop, _ = json.Marshal(raftstore.Command{V: 1, Type: "bench.noop", Flags: raftstore.FlagIgnoreUnknown,
		RequestID: raftstore.NewRequestID(), Time: time.Now().UnixNano(), Who: "admin", Body: body})
	return p, nil
}

func (p *parleyStore) name() string {
	if p.raw {
		return "raft"
	}
	return "parley"
}

func (p *parleyStore) pair(ctx context.Context, c, i int) error {
	if p.raw {
		if err := p.leader.ApplyRaw(p.noop); err != nil {
			return err
		}
		return p.leader.ApplyRaw(p.noop)
	}
	key, holder := fmt.Sprintf("vm/vm-%08d", i), fmt.Sprintf("client-%02d", c)
	g, err := p.client.Acquire(ctx, raftstore.AcquireRequest{Holder: holder, TTLMillis: 30000, Items: []raftstore.AcquireItem{{Key: key}}})
	if err != nil {
		return err
	}
	return p.client.Release(ctx, raftstore.RenewRequest{Keys: []string{key}, Holder: holder, Token: g.Token})
}

func (p *parleyStore) term() uint64 {
	var t uint64
	for _, m := range p.members {
		t = max(t, m.Status().Term)
	}
	return t
}

func (p *parleyStore) close() {
	for _, m := range p.members {
		m.Close()
	}
}

func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func pkiLocal(certs, name string) (*pki.TLS, error) { return pki.IssueLocal(certs, name) }
