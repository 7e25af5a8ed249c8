package worker

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/vsphere"
)

// refusingReports is raftstore.Mem, standing in for the store, refusing
// the first host reports it is sent (as the store does while it elects,
// or before the worker's first heartbeat registered it).
type refusingReports struct {
	*raftstore.Mem
	refuse int
	tries  int
}

func (s *refusingReports) ReportHost(ctx context.Context, r raftstore.HostReport) error {
	s.tries++
	if s.refuse > 0 {
		s.refuse--
		return errors.New("no leader")
	}
	return s.Mem.ReportHost(ctx, r)
}

// TestDRSReportIsSentAgainUntilTaken: the host's cluster is balanced by
// DRS; the store refuses the worker's report of it twice, and the worker
// sends it again at each observation until the store has it, journaling
// the change once. Once taken, it is not sent again.
func TestDRSReportIsSentAgainUntilTaken(t *testing.T) {
	ctx := context.Background()
	st := &refusingReports{Mem: raftstore.NewMem(raftstore.Config{}), refuse: 2}
	dc := newTestDC()
	dc.inv.Clusters = []vsphere.Cluster{{ID: "domain-c1", Name: "c1", DRSEnabled: true}}
	for i := range dc.inv.Hosts {
		dc.inv.Hosts[i].Cluster = "domain-c1"
	}
	if _, err := st.Heartbeat(ctx, raftstore.HeartbeatRequest{ID: "w1", Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop()}, dc, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	state := func() string {
		hs, _ := st.Hosts(ctx, false)
		for _, h := range hs {
			if h.Name == "h1" {
				return h.State
			}
		}
		return ""
	}
	for i := range 4 {
		if err := w.Observe(ctx); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "drs", false: ""}[i >= 2]; state() != want {
			t.Fatalf("after observation %d: host state %q, want %q", i+1, state(), want)
		}
	}
	if st.tries != 3 {
		t.Fatalf("%d reports sent, want 3 (two refused, one taken, none after)", st.tries)
	}
	js, _ := st.Journal(ctx, 0, 100)
	n := 0
	for _, j := range js {
		if j.Kind == "drs" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d drs journal entries, want 1", n)
	}
}
