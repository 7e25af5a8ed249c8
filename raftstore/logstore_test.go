package raftstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestWALLogStore: a cluster whose members keep their log in raft-wal
// keeps acknowledged writes across a restart of every member; a data
// folder holding one kind of log is refused by the other, naming the
// flag to use, and left as it was.
func TestWALLogStore(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.LogStore = LogStoreWAL })
	ctx := ctxT(t)
	if _, err := c.client.Push(ctx, PushRequest{Name: "p", Text: okPolicy}); err != nil {
		t.Fatal(err)
	}
	for i := range c.members {
		if _, err := os.Stat(filepath.Join(c.cfgs[i].DataDir, "wal")); err != nil {
			t.Fatalf("%s: no wal folder: %v", c.cfgs[i].ID, err)
		}
		if _, err := os.Stat(filepath.Join(c.cfgs[i].DataDir, "raft.db")); err == nil {
			t.Fatalf("%s: a raft.db beside the wal", c.cfgs[i].ID)
		}
	}
	for i := range c.members {
		c.stop(i)
	}
	for i := range c.members {
		c.restart(i)
	}
	c.waitLeader()
	pv, err := c.client.ActivePolicy(ctx, "p", false)
	if err != nil || pv.Text != okPolicy {
		t.Fatalf("after restarting every member: %+v, %v", pv, err)
	}

	// the other kind of log store on the same folder: refused, nothing made
	cfg := c.cfgs[0]
	c.stop(0)
	cfg.LogStore, cfg.Bootstrap, cfg.Join = LogStoreBolt, false, nil
	_, err = Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--log-store wal") {
		t.Fatalf("a wal folder opened as bolt: %v, want a refusal naming --log-store wal", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft.db")); err == nil {
		t.Error("the refused start made a raft.db")
	}
	cfg.LogStore = "leveldb"
	if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), `"leveldb"`) {
		t.Fatalf("log store leveldb: %v, want a refusal naming it", err)
	}
}

// TestClosedStoreDropsTermWrites: after Close, the stable store takes a
// write without failing (raft would panic on a heartbeat's term that a
// transport goroutine still delivers while the member shuts down), and
// the write is not kept.
func TestClosedStoreDropsTermWrites(t *testing.T) {
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		cfg := Config{DataDir: t.TempDir(), LogStore: kind}
		st, err := openLogStore(cfg, newHclog(zerolog.Nop(), "log"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetUint64([]byte("CurrentTerm"), 2); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if err := st.SetUint64([]byte("CurrentTerm"), 3); err != nil {
			t.Errorf("%s: a term saved after Close failed: %v", kind, err)
		}
		st, err = openLogStore(cfg, newHclog(zerolog.Nop(), "log"))
		if err != nil {
			t.Fatal(err)
		}
		if v, err := st.GetUint64([]byte("CurrentTerm")); err != nil || v != 2 {
			t.Errorf("%s: term %d, %v after reopening, want 2", kind, v, err)
		}
		st.Close()
	}
}

// TestUnsetLogStoreFollowsTheFolder: with no log store named, a member
// keeps the kind its data folder holds (a member started once with
// --log-store wal is not refused when restarted without it) and a new
// folder gets BoltDB.
func TestUnsetLogStoreFollowsTheFolder(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) {
		if cfg.ID == "s1" {
			cfg.LogStore = LogStoreWAL
		} else {
			cfg.LogStore = LogStoreAuto
		}
	})
	ctx := ctxT(t)
	if _, err := c.client.Push(ctx, PushRequest{Name: "p", Text: okPolicy}); err != nil {
		t.Fatal(err)
	}
	kinds := func(i int) (bolt, wal bool) {
		_, errB := os.Stat(filepath.Join(c.cfgs[i].DataDir, "raft.db"))
		_, errW := os.Stat(filepath.Join(c.cfgs[i].DataDir, "wal"))
		return errB == nil, errW == nil
	}
	for i := 1; i < 3; i++ {
		if bolt, wal := kinds(i); !bolt || wal {
			t.Fatalf("%s, a new folder with no log store named: raft.db %v, wal %v; want raft.db only", c.cfgs[i].ID, bolt, wal)
		}
	}
	// s1 restarts with no log store named: it keeps its raft-wal log
	c.stop(0)
	c.cfgs[0].LogStore = LogStoreAuto
	c.restart(0)
	if bolt, wal := kinds(0); bolt || !wal {
		t.Fatalf("s1, a wal folder restarted with no log store named: raft.db %v, wal %v; want wal only", bolt, wal)
	}
	c.waitLeader()
	s1, _ := testClient(t, []string{c.cfgs[0].HTTPAddr})
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := s1.ActivePolicy(ctx, "p", true) // s1's own state
		if err == nil && v.Text == okPolicy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("s1 after its restart: %+v, %v; want the pushed policy", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
