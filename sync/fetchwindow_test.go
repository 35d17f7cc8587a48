package sync

import (
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/internal/storetest"
	"github.com/shopbridge/shopbridge/storage"
)

// TestFetchWindowAgainstBusyUpstream: an upstream that answers 429 above 4
// calls at once still gets every bill mirrored, byte for byte; the refused
// fetches go again, the upstream never counts as offline for them, and the
// window keeps the refusals to a small share of the bill calls.
func TestFetchWindowAgainstBusyUpstream(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Data: crmsim.Generate(300, time.Now()), Latency: 20 * time.Millisecond,
		MaxConcurrent: 4, Logger: quietLogger()})
	st := storetest.MustOpen(t)
	cfg := testConfig(sim, &journaltest.Journal{})
	cfg.Interval = time.Hour // one pull: every bill must come from it
	s := MustOpenSyncer(t, cfg, st)

	poll.Eventually(t, "300 bills stored", func() bool { return storedBodies(st) == 300 })
	// Calls of the test's own would be refused too: lift the limit first.
	if err := sim.SetMaxConcurrent(0); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetLatency(0); err != nil {
		t.Fatal(err)
	}
	if !mirrored(t, sim, st) {
		t.Fatal("the store does not hold every upstream bill byte for byte")
	}
	if n := s.m.stateChanges.Load(); n != 1 {
		t.Errorf("%d online/offline changes, want 1 (first contact): refusals counted as failures", n)
	}
	if n := s.m.pulls.err.Load(); n != 0 {
		t.Errorf("%d pulls failed", n)
	}
	calls := sim.Counters()[crmsim.KindBill]
	_, refused := sim.Concurrency()
	if refused == 0 {
		t.Logf("no call refused (%d bill calls): the window never went above the limit", calls)
	}
	// 300 bills were asked at least once each; every refused call asked
	// one again. Without the window (all at once) most would be refused.
	if calls < 300 || refused > calls/4 {
		t.Errorf("%d bill calls, %d refused: want 300 or more, a quarter or less refused", calls, refused)
	}
}

// TestFetchWindowGrows: against an upstream that takes any number of calls,
// the window grows past the 8 fetches of its start.
func TestFetchWindowGrows(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Data: crmsim.Generate(400, time.Now()), Latency: 50 * time.Millisecond, Logger: quietLogger()})
	st := storetest.MustOpen(t)
	cfg := testConfig(sim, &journaltest.Journal{})
	cfg.Interval = time.Hour
	cfg.Timeout = 5 * time.Second
	MustOpenSyncer(t, cfg, st)

	poll.Eventually(t, "400 bills stored", func() bool { return storedBodies(st) == 400 })
	if peak, _ := sim.Concurrency(); peak <= 8 || peak > DefaultInFlight+2 {
		t.Errorf("peak %d calls at once, want above the initial 8 and at most the cap %d (+2 list calls)", peak, DefaultInFlight)
	}
	if err := sim.SetLatency(0); err != nil {
		t.Fatal(err)
	}
	if !mirrored(t, sim, st) {
		t.Fatal("the store does not hold every upstream bill byte for byte")
	}
}

// storedBodies counts the listed bills whose body the store holds.
func storedBodies(st *storage.Store) int {
	sums, err := st.List(storage.ListQuery{})
	if err != nil {
		return 0
	}
	n := 0
	for _, sum := range sums {
		if _, err := st.Bill(sum.ID); err == nil {
			n++
		}
	}
	return n
}
