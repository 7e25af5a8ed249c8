package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/vsphere"
)

// vCenter as the worker sees it: whether it answers, how old the worker's
// view of its host is, and, while it does not answer, when to ask again.
//
// A worker whose view is older than max_view_age neither offers, bids nor
// starts a vMotion, and resumes by itself when vCenter answers. It says
// so once per change (one log line, one journal entry of kind vcenter,
// outcome unavailable or available, with the reason), and reminds at
// most once a minute in its log. While vCenter does not answer, it asks
// again after a backoff (5 s doubling to 30 s, with jitter), so that an
// outage costs vCenter no more calls than a steady state does.

// vcenterCallTimeout bounds one observation of vCenter (the inventory, and
// the host's statistics): a hung vCenter costs a tick, never the worker.
const vcenterCallTimeout = 10 * time.Second

// vcenterRemindEvery is how often a worker repeats, in its log, that
// vCenter is still unavailable.
const vcenterRemindEvery = time.Minute

// vcenterBackoffMax caps the wait between reads while vCenter is away.
const vcenterBackoffMax = 30 * time.Second

type vcenterState struct {
	mu       sync.Mutex
	known    bool // a first answer or failure has been seen
	up       bool
	since    time.Time // when the current state began
	reason   string    // why it is unavailable
	reminded time.Time
	failures int       // reads failed in a row
	nextTry  time.Time // no read before this while unavailable
	rng      *rand.Rand
}

// vcenterDue says whether Tick should read vCenter now: always while it
// answers; while it does not, once its backoff has passed.
func (w *Worker) vcenterDue(now time.Time) bool {
	v := &w.vc
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.up || !v.known || !now.Before(v.nextTry)
}

// vcenterFailed records a read that failed (or a view too old to act on)
// and says so when vCenter was answering until now.
func (w *Worker) vcenterFailed(ctx context.Context, reason string) {
	v := &w.vc
	now := time.Now()
	v.mu.Lock()
	v.failures++
	if v.rng == nil {
		v.rng = rand.New(rand.NewPCG(uint64(now.UnixNano()), 3))
	}
	back := min(5*time.Second<<min(v.failures-1, 3), vcenterBackoffMax)
	back = time.Duration(float64(back) * (0.8 + 0.4*v.rng.Float64()))
	v.nextTry = now.Add(back)
	changed := !v.known || v.up
	remind := !changed && now.Sub(v.reminded) >= vcenterRemindEvery
	downFor := now.Sub(v.since)
	if changed {
		v.known, v.up, v.since, v.reason, v.reminded = true, false, now, reason, now
	} else if remind {
		v.reminded = now
	}
	v.mu.Unlock()
	w.mx.vcenterUp.Set(0)
	switch {
	case changed:
		w.log.Warn().Str("reason", reason).Dur("view_age", w.viewAge(now)).Msg("vCenter unavailable: no offers, bids or vMotions until it answers")
		w.journal(ctx, raftstore.JournalEntry{Kind: api.KindVCenter, From: w.cfg.Host, Outcome: api.OutcomeVCenterDown, Reason: reason, Worker: w.cfg.ID})
	case remind:
		w.log.Warn().Str("reason", reason).Dur("for", downFor.Round(time.Second)).Dur("view_age", w.viewAge(now)).Msg("vCenter still unavailable")
	}
}

// vcenterAnswered records a read that succeeded, with a view fresh enough
// to act on, and says so when vCenter was unavailable until now.
func (w *Worker) vcenterAnswered(ctx context.Context) {
	v := &w.vc
	now := time.Now()
	v.mu.Lock()
	changed := v.known && !v.up
	downFor, reason := now.Sub(v.since), v.reason
	v.known, v.up, v.failures, v.nextTry = true, true, 0, time.Time{}
	if changed {
		v.since, v.reason = now, ""
	}
	v.mu.Unlock()
	w.mx.vcenterUp.Set(1)
	if changed {
		msg := fmt.Sprintf("answering again after %s unavailable (%s)", downFor.Round(time.Second), reason)
		w.log.Info().Dur("after", downFor.Round(time.Second)).Msg("vCenter available again")
		w.journal(ctx, raftstore.JournalEntry{Kind: api.KindVCenter, From: w.cfg.Host, Outcome: api.OutcomeVCenterUp, Reason: msg, Worker: w.cfg.ID})
	}
}

// vcenterUp is what the worker last saw of vCenter (true before it has
// seen anything), and the reason when it is unavailable.
func (w *Worker) vcenterUp() (bool, string) {
	v := &w.vc
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.up || !v.known, v.reason
}

// noView is viewAge before any view: older than any max_view_age.
const noView = time.Duration(1<<63 - 1)

// viewAge is how old the worker's view of its host is: since vCenter last
// vouched for it (vsphere.Inventory.ReadAt); noView before any.
func (w *Worker) viewAge(now time.Time) time.Duration {
	w.mu.Lock()
	at := w.observed
	w.mu.Unlock()
	if at.IsZero() {
		return noView
	}
	return max(0, now.Sub(at))
}

// staleView says why the worker's view of its host is too old, under a
// policy's max_view_age, to offer, bid or start a vMotion from; "" when it
// is fresh enough.
func (w *Worker) staleView(maxAge time.Duration) string {
	age := w.viewAge(time.Now())
	if age <= maxAge {
		return ""
	}
	if age == noView {
		return "no view of this host from vCenter yet"
	}
	return fmt.Sprintf("the view of this host is %s old (max_view_age %s): vCenter has not answered for it", age.Round(time.Second), maxAge)
}

// faultOf names vCenter's fault behind a failed relocation, "" if none.
func faultOf(err error) string {
	var me *vsphere.MigrateError
	if errors.As(err, &me) && me.Fault != "" {
		return me.Fault
	}
	return vsphere.FaultName(err)
}
