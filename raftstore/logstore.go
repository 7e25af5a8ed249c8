package raftstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
)

// Log stores a member may keep its raft log and stable state in
// (Config.LogStore, parley store --log-store). Both fsync every batch of
// entries before raft counts them written: BoltDB (raft.db) commits a
// transaction per batch, two fsyncs; raft-wal (wal/) appends to segment
// files, one. Unset (LogStoreAuto), a member keeps the kind its data
// folder holds and starts a new folder on BoltDB: the store the design
// names and the one every test runs, though raft-wal measures about twice
// as fast (`cd bench && go run . store --log-store bolt|wal`).
const (
	LogStoreAuto = ""
	LogStoreBolt = "bolt"
	LogStoreWAL  = "wal"
)

// defaultLogStore is the kind a new data folder gets.
const defaultLogStore = LogStoreBolt

// walSegmentSize is the size raft-wal preallocates for each segment file.
// Its default, 64 MiB, is sized for Consul's traffic; parley's entries are
// a few hundred bytes, so 16 MiB is over 40,000 entries a segment, and a
// test suite's many small clusters do not each claim 192 MiB of disk.
const walSegmentSize = 16 << 20

type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// walStore closes raft-wal's metadata database too, which WAL.Close
// leaves open (a member restarted in the same process would wait on its
// lock for ever).
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func (w walStore) Close() error { return errors.Join(w.WAL.Close(), w.meta.Close()) }

// closedDrops is a log store whose stable-store writes after Close are
// dropped rather than failed. raft answers heartbeats on the transport's
// goroutines, which can still be running one when the member shuts down:
// a heartbeat of a new term then saves the term, and raft panics when
// that fails. Only that fast path reaches the store after raft.Shutdown
// (votes and appends go through raft's stopped main loop), and a
// heartbeat's term needs no persisting: the member learns it again.
type closedDrops struct {
	logStore
	closed atomic.Bool
}

func (c *closedDrops) Close() error {
	c.closed.Store(true)
	return c.logStore.Close()
}

func (c *closedDrops) Set(k, v []byte) error {
	if c.closed.Load() {
		return nil
	}
	return c.logStore.Set(k, v)
}

func (c *closedDrops) SetUint64(k []byte, v uint64) error {
	if c.closed.Load() {
		return nil
	}
	return c.logStore.SetUint64(k, v)
}

// openLogStore opens the member's log store, refusing a data folder that
// holds the other kind: starting on it would begin an empty log beside
// the real one, and the member would come back with nothing.
func openLogStore(cfg Config, hl hclog.Logger) (logStore, error) {
	boltPath, walDir := filepath.Join(cfg.DataDir, "raft.db"), filepath.Join(cfg.DataDir, "wal")
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	other := func(have, flag string) error {
		return fmt.Errorf("data folder %s holds a %s log: start with --log-store %s (to change a member's log store, remove it from the cluster, empty its folder and add it back)", cfg.DataDir, have, flag)
	}
	kind := cfg.LogStore
	if kind == LogStoreAuto {
		switch {
		case exists(boltPath):
			kind = LogStoreBolt
		case exists(walDir):
			kind = LogStoreWAL
		default:
			kind = defaultLogStore
		}
	}
	switch kind {
	case LogStoreBolt:
		if exists(walDir) && !exists(boltPath) {
			return nil, other("raft-wal", LogStoreWAL)
		}
		b, err := raftboltdb.New(raftboltdb.Options{Path: boltPath, BoltOptions: &bbolt.Options{Timeout: 5 * time.Second}})
		if err != nil {
			return nil, fmt.Errorf("open log store %s: %w", boltPath, err)
		}
		return &closedDrops{logStore: b}, nil
	case LogStoreWAL:
		if exists(boltPath) && !exists(walDir) {
			return nil, other("BoltDB", LogStoreBolt)
		}
		if err := os.MkdirAll(walDir, 0o750); err != nil {
			return nil, fmt.Errorf("open log store %s: %w", walDir, err)
		}
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(walDir, wal.WithLogger(hl), wal.WithMetaStore(meta), wal.WithSegmentSize(walSegmentSize))
		if err != nil {
			meta.Close()
			return nil, fmt.Errorf("open log store %s: %w", walDir, err)
		}
		return &closedDrops{logStore: walStore{w, meta}}, nil
	}
	return nil, errors.New("unknown log store " + kind)
}
