package raftstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"
)

// fuzzCommand turns a few bytes into one command, drawing every field from
// a small domain so that commands collide on keys, holders and tokens.
func fuzzCommand(b []byte, index uint64) (string, any) {
	at := func(i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	keys := []string{"vm/a", "vm/b", "host/h1/slot/", "reserve/h1/vm/a", "cool/a", "vm/../x", "", "vm/a\u0007"}
	holders := []string{"w1", "w2", "", "w\u202e"}
	key := keys[int(at(1))%len(keys)]
	holder := holders[int(at(2))%len(holders)]
	ttl := []int64{1000, 0, -5, 1 << 62, 3600000}[int(at(3))%5]
	token := []uint64{0, 1, index - 1, index / 2}[int(at(4))%4]
	switch at(0) % 12 {
	case 0:
		it := AcquireItem{Key: key}
		if key == "host/h1/slot/" {
			it.AnyOf = int(at(5)%4) - 1
		}
		if at(5)%3 == 0 {
			it.Attrs = map[string]string{"cpu_mhz": fmt.Sprint(int(at(6)) - 128), "mem_mb": "x"}
		}
		return cmdAcquire, AcquireRequest{Holder: holder, TTLMillis: ttl, Items: []AcquireItem{it}, LockDelayMillis: int64(at(7)) * 10}
	case 1:
		return cmdRenew, RenewRequest{Keys: []string{key}, Holder: holder, Token: token, TTLMillis: ttl}
	case 2:
		return cmdRelease, RenewRequest{Keys: []string{key}, Holder: holder, Token: token}
	case 3:
		text := []string{okPolicy, okPolicy + "// v2\n", "", "x\xff"}[int(at(5))%4]
		var expect *int
		if at(6)%2 == 0 {
			n := int(at(6) % 4)
			expect = &n
		}
		return cmdPush, PushRequest{Name: []string{"balance", "b", "Bad", ""}[int(at(1))%4], Text: text, Author: holder, ExpectVersion: expect}
	case 4:
		return cmdActivate, ActivateRequest{Name: "balance", Version: int(at(5)%5) - 1, Rollback: at(6)%2 == 0}
	case 5:
		return cmdHeartbeat, HeartbeatRequest{ID: holder, Host: "h1", Addr: "a:1"}
	case 6:
		return cmdJournal, JournalRequest{Entries: []JournalEntry{{Kind: "migration", VM: key, DurationMS: int64(at(5)) - 100}}, Limit: int(at(6) % 8)}
	case 7:
		return cmdSweep, nil
	case 8:
		return cmdLeaderExtend, nil
	case 9:
		return cmdHostDrain, HostRequest{Name: []string{"h1", "a/b", "", "h2"}[int(at(5))%4], Drain: at(6)%2 == 0}
	case 10:
		return cmdHostReport, HostReport{Name: "h1", State: "drained", VMsLeft: int(at(5)) - 128}
	default:
		return "no.such.command", map[string]int{"x": 1}
	}
}

// FuzzStateMachine applies random command sequences through the FSM, as
// raft would: no panic (a recovered one is a refusal with code internal),
// and after every step the state passes the same validation as a restore
// (names, versions and hashes, lease keys and tokens, quotas).
func FuzzStateMachine(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 4, 0, 0, 0, 0, 0, 1, 0})
	f.Add([]byte{0, 3, 0, 0, 0, 0, 200, 0, 0, 2, 1, 4, 0, 3, 0, 0, 9, 0, 0, 0, 0, 1, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM(zerolog.Nop())
		now := time.Unix(1_700_000_000, 0)
		for i, index := 0, uint64(1); i+8 <= len(data) && index < 200; i, index = i+8, index+1 {
			chunk := data[i : i+8]
			typ, body := fuzzCommand(chunk, index)
			now = now.Add(time.Duration(chunk[7]) * 37 * time.Millisecond)
			enc, err := encodeCommand(typ, fmt.Sprintf("r%d", chunk[6]%4), "", now.UnixNano(), body)
			if err != nil {
				t.Fatal(err)
			}
			r, ok := fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: enc}).(*Result)
			if !ok {
				t.Fatalf("step %d: no result", index)
			}
			if r.Error != nil && r.Error.Code == CodeInternal {
				t.Fatalf("step %d (%s %+v): the state machine panicked: %v", index, typ, body, r.Error)
			}
			var problem error
			fsm.read(func(s *State) { problem = validateState(s) })
			if problem != nil {
				t.Fatalf("step %d (%s %+v) left an invalid state: %v", index, typ, body, problem)
			}
		}
	})
}

// FuzzRestore feeds arbitrary bytes to the restore path: decoding never
// panics, and a restore that is accepted leaves a valid state that a sweep
// and a snapshot can handle.
func FuzzRestore(f *testing.F) {
	valid := func() []byte {
		s := newState()
		s.Policies["balance"] = &Policy{Name: "balance", Versions: []PolicyVersion{{Version: 1, Text: okPolicy, SHA256: sha(okPolicy)}}, Active: 1}
		s.Leases["vm/a"] = &Lease{Key: "vm/a", Holder: "w1", Token: 3, Expiry: 2_000_000_000_000_000_000, TTL: 1}
		s.LastIndex = 10
		b, _ := json.Marshal(s)
		return b
	}()
	f.Add(valid)
	f.Add(bytes.Replace(valid, []byte(`"vm/a":{`), []byte(`"vm/a":null,"x":{`), 1))
	f.Add([]byte(`{"policies":{},"leases":{"vm/a":null},"workers":{},"members":{},"requests":{}}`))
	f.Add([]byte(`{"policies":{"p":{"name":"p","versions":[],"active":3}},"leases":{},"workers":{},"members":{},"requests":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM(zerolog.Nop())
		enc, err := json.Marshal(Command{V: envelopeVersion, Type: cmdRestore, Time: 1_700_000_000_000_000_000, Body: json.RawMessage(data)})
		if err != nil {
			return // not JSON: the HTTP layer refuses it before a command exists
		}
		r := fsm.Apply(&raft.Log{Index: 100, Type: raft.LogCommand, Data: enc}).(*Result)
		if r.Error != nil && r.Error.Code == CodeInternal {
			t.Fatalf("restore panicked: %v", r.Error)
		}
		sweep, _ := encodeCommand(cmdSweep, "", "", 1_800_000_000_000_000_000, nil)
		if r := fsm.Apply(&raft.Log{Index: 101, Type: raft.LogCommand, Data: sweep}).(*Result); r.Error != nil {
			t.Fatalf("sweep after a restore: %v", r.Error)
		}
		var problem error
		fsm.read(func(s *State) { problem = validateState(s) })
		if problem != nil {
			t.Fatalf("an accepted restore left an invalid state: %v", problem)
		}
		if _, err := fsm.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}

func sha(text string) string {
	p := &State{Policies: map[string]*Policy{}}
	r := p.push(0, &PushRequest{Name: "x", Text: text})
	var out PushResult
	json.Unmarshal(r.Data, &out)
	return out.SHA256
}

// FuzzDecode feeds arbitrary bodies to the handlers' strict decoder for
// every request type: it never panics, refuses what is not valid UTF-8,
// and names a field or the body in every refusal.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"holder": "w1", "ttl_ms": 1000, "items": [{"key": "vm/a", "any_of": 2, "attrs": {"cpu_mhz": "1"}}]}`))
	f.Add([]byte(`{"keys": ["vm/a"], "holder": "w1", "token": 3}`))
	f.Add([]byte(`{"name": "balance", "text": "r(x, initial)", "expect_version": 1}`))
	f.Add([]byte(`{"entries": [{"kind": "migration", "duration_ms": 5}]}`))
	f.Add([]byte("{\"id\": \"\xff\"}"))
	f.Add([]byte(`{"id": "s1", "raft_addr": "a:1"} {"x": 1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&AcquireRequest{}, &RenewRequest{}, &PushRequest{}, &ActivateRequest{}, &HeartbeatRequest{},
			&JournalRequest{}, &HostRequest{}, &HostReport{}, &MemberRequest{}} {
			e := decode(body, v)
			if e == nil {
				if !utf8.Valid(body) {
					t.Fatalf("accepted a body that is not UTF-8: %q", body)
				}
				continue
			}
			if e.Code != CodeBadRequest || e.Field == "" {
				t.Fatalf("refusal without a code or field: %+v", e)
			}
		}
	})
}
