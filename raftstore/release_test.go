package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Rolling upgrades read what earlier releases wrote. testdata/release/
// holds, for each release, a member's data folder (raft's BoltDB log and
// stable store with a raft snapshot and entries after it) and a state
// snapshot, both written by that release (TestWriteReleaseData, run by
// hand at a release); every later build must open them.

// releaseExpect is what a release's data holds.
type releaseExpect struct {
	Policy   string   `json:"policy"`
	Versions int      `json:"versions"`
	Active   int      `json:"active"`
	Tokens   []string `json:"tokens"`
	Markers  []string `json:"markers"` // journal entries of kind release-marker, by reason
}

// TestWriteReleaseData writes testdata/release/$PARLEY_WRITE_RELEASE (e.g.
// v0.3.0): run at a release, and commit what it writes.
func TestWriteReleaseData(t *testing.T) {
	rel := os.Getenv("PARLEY_WRITE_RELEASE")
	if rel == "" {
		t.Skip("PARLEY_WRITE_RELEASE=vX.Y.Z writes that release's data folder into testdata/release")
	}
	out := filepath.Join("testdata", "release", rel)
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("%s exists", out)
	}
	data := filepath.Join(out, "data")
	c := startCluster(t, 1, func(cfg *Config) { cfg.DataDir = data })
	ctx := ctxT(t)
	for i, text := range []string{okPolicy, okPolicy + "\n// two\n", okPolicy + "\n// three\n"} {
		if _, err := c.client.Push(ctx, PushRequest{Name: "p", Text: text, Author: "release"}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := c.client.AppendJournal(ctx, JournalEntry{Kind: "release-marker", Reason: "before-snapshot"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.client.CreateToken(ctx, "rd", RoleReader, NewToken()); err != nil {
				t.Fatal(err)
			}
			if _, err := c.client.Acquire(ctx, AcquireRequest{Holder: "release", TTLMillis: 60000, Items: []AcquireItem{{Key: "lock/release"}}}); err != nil {
				t.Fatal(err)
			}
			if err := c.members[0].raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.client.AppendJournal(ctx, JournalEntry{Kind: "release-marker", Reason: "after-snapshot"}); err != nil {
		t.Fatal(err)
	}
	var snap []byte
	c.members[0].fsm.read(func(s *State) { snap, _ = json.Marshal(s) })
	if err := os.WriteFile(filepath.Join(out, "snapshot.json"), snap, 0o644); err != nil {
		t.Fatal(err)
	}
	exp, _ := json.MarshalIndent(releaseExpect{Policy: "p", Versions: 3, Active: 3, Tokens: []string{"admin", "rd"}, Markers: []string{"before-snapshot", "after-snapshot"}}, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "expect.json"), exp, 0o644); err != nil {
		t.Fatal(err)
	}
	c.members[0].Close()
	c.members[0] = nil
}

// TestOpensEveryEarlierRelease opens each release's data folder as a
// member (it elects itself and serves what it holds) and decodes each
// release's snapshot.
func TestOpensEveryEarlierRelease(t *testing.T) {
	rels, _ := filepath.Glob(filepath.Join("testdata", "release", "v*"))
	if len(rels) == 0 {
		t.Fatal("no release data in testdata/release")
	}
	for _, rel := range rels {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			var exp releaseExpect
			b, err := os.ReadFile(filepath.Join(rel, "expect.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &exp); err != nil {
				t.Fatal(err)
			}
			snap, err := os.Open(filepath.Join(rel, "snapshot.json"))
			if err != nil {
				t.Fatal(err)
			}
			st, err := decodeState(snap)
			snap.Close()
			if err != nil {
				t.Fatalf("snapshot.json: %v", err)
			}
			if p := st.Policies[exp.Policy]; p == nil || len(p.Versions) != exp.Versions || p.Active != exp.Active {
				t.Errorf("snapshot.json: policy %s is %+v, want %d versions, %d active", exp.Policy, p, exp.Versions, exp.Active)
			}

			// the data folder, copied (a member writes to it), opened as s1
			data := filepath.Join(t.TempDir(), "data")
			copyTree(t, filepath.Join(rel, "data"), data)
			cfg := testConfig(t, "s1")
			cfg.DataDir = data
			m, err := Start(context.Background(), cfg)
			if err != nil {
				t.Fatalf("open %s's data folder: %v", filepath.Base(rel), err)
			}
			defer m.Close()
			waitFor(t, 20*time.Second, "the member to lead", m.IsLeader)
			c, err := testClient(t, []string{m.HTTPAddr()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := ctxT(t)
			h, err := c.History(ctx, exp.Policy)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Versions) != exp.Versions || h.Active != exp.Active {
				t.Errorf("policy %s: %d versions, active %d; want %d, %d", exp.Policy, len(h.Versions), h.Active, exp.Versions, exp.Active)
			}
			ts, err := c.Tokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tk := range ts {
				names = append(names, tk.Name)
			}
			if strings.Join(names, ",") != strings.Join(exp.Tokens, ",") {
				t.Errorf("tokens %v, want %v", names, exp.Tokens)
			}
			js, err := c.Journal(ctx, 0, 100000)
			if err != nil {
				t.Fatal(err)
			}
			var markers []string
			for _, j := range js {
				if j.Kind == "release-marker" {
					markers = append(markers, j.Reason)
				}
			}
			if strings.Join(markers, ",") != strings.Join(exp.Markers, ",") {
				t.Errorf("journal markers %v, want %v (from before and after the raft snapshot)", markers, exp.Markers)
			}
			// and it takes writes
			if _, err := c.Push(ctx, PushRequest{Name: exp.Policy, Text: okPolicy + "\n// upgraded\n", Author: "upgrade"}); err != nil {
				t.Errorf("a push after the upgrade: %v", err)
			}
		})
	}
}

// TestNewerEncodingsAreRefused: a state or a command written by a newer
// release is refused with ErrNewerVersion, never misread; one written
// before the state was versioned reads as version 1.
func TestNewerEncodingsAreRefused(t *testing.T) {
	if _, err := decodeState(strings.NewReader(`{"v": 2, "policies": {}, "leases": {}, "workers": {}, "members": {}, "requests": {}}`)); !errors.Is(err, ErrNewerVersion) {
		t.Errorf("a state of version 2: %v, want ErrNewerVersion", err)
	}
	st, err := decodeState(strings.NewReader(`{"policies": {}, "leases": {}, "workers": {}, "members": {}, "requests": {}}`))
	if err != nil || st.V != stateVersion {
		t.Errorf("a state without a version: %v, v=%v; want it read as version %d", err, st, stateVersion)
	}
	if _, err := decodeCommand([]byte(`{"v": 2, "type": "lease.acquire", "time": 1}`)); !errors.Is(err, ErrNewerVersion) {
		t.Errorf("a command of envelope version 2: %v, want ErrNewerVersion", err)
	}
	if _, err := decodeCommand([]byte(`{"v": 1, "type": "lease.acquire", "time": 1}`)); err != nil {
		t.Errorf("a command of version 1: %v", err)
	}
	b, _ := json.Marshal(newState())
	if !strings.Contains(string(b), `"v":1`) {
		t.Errorf("a new state encodes without its version: %.80s", b)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
