package test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/pki"
)

// TestStoreMembersWithOneSetOfFlags: three members started with the same
// flags but --id, as a StatefulSet starts its pods (deploy/kubernetes):
// --bootstrap-id picks the one that bootstraps, --join names all three
// (a member does not join through itself), the tokens come from the
// environment. They form one cluster of three.
func TestStoreMembersWithOneSetOfFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "pki")
	if err := pki.InitCA(ca); err != nil {
		t.Fatal(err)
	}
	admin := raftstore.NewToken()
	t.Setenv("PARLEY_ADMIN_TOKEN", admin)
	t.Setenv("PARLEY_TOKEN", admin)
	var raftAddrs, httpAddrs []string
	for i := 0; i < 3; i++ {
		raftAddrs, httpAddrs = append(raftAddrs, freePort(t)), append(httpAddrs, freePort(t))
	}
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("s%d", i+1)
		if _, err := pki.IssueLocal(ca, id); err != nil {
			t.Fatal(err)
		}
		start(t, "store "+id, "store", "--id", id, "--data", filepath.Join(dir, id),
			"--raft-addr", raftAddrs[i], "--http-addr", httpAddrs[i],
			"--bootstrap-id", "s1", "--join", strings.Join(httpAddrs, ","),
			"--tls-ca", filepath.Join(ca, pki.CAFile), "--tls-cert", pki.CertFile(ca, id), "--tls-key", pki.KeyFile(ca, id))
	}
	tl, err := pki.IssueLocal(ca, "admin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := raftstore.NewClient(httpAddrs, raftstore.WithTLS(tl), raftstore.WithToken(admin))
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = 5 * time.Second
	ctx := ctxFor(t, 2*time.Minute)
	var st *raftstore.Status
	waitFor(t, 90*time.Second, "three members and a leader", func() bool {
		s, err := c.Status(ctx)
		if err == nil {
			st = s
		}
		return err == nil && len(s.Members) == 3 && s.Leader != ""
	})
	if st.Leader == "" {
		t.Fatal("no leader")
	}
	if _, err := c.Acquire(ctx, raftstore.AcquireRequest{Holder: "t", TTLMillis: 10000, Items: []raftstore.AcquireItem{{Key: "lock/one-set"}}}); err != nil {
		t.Errorf("a write to the cluster: %v", err)
	}
}
