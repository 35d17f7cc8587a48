package sync

import (
	"fmt"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/internal/storetest"
	"github.com/shopbridge/shopbridge/storage"
)

// The push window (limit.go) against the simulator: it grows to its cap
// and no further, settles at an upstream's concurrency limit, shrinks on
// 503s and timeouts, pauses the whole push for a Retry-After and grows
// back after an outage. Per-bill order and exactly-once delivery hold
// throughout.

// pairs builds receipts from, from+1, ... from+n-1 (from and n even): a
// SELL then a PAYBACK for each of n/2 bills, from 10 registers.
func pairs(from, n int) []*shopbridge.Receipt {
	var rs []*shopbridge.Receipt
	for i := from; i < from+n; i++ {
		rs = append(rs, receipt(i+1, fmt.Sprintf("dev-%d", i/2%10), fmt.Sprintf("%d", 600000+i/2), []string{"SELL", "PAYBACK"}[i%2]))
	}
	return rs
}

// acceptAll accepts receipts from several goroutines, as registers post
// at once; the receipts of one bill go in their order.
func acceptAll(t *testing.T, st *storage.Store, rs []*shopbridge.Receipt) {
	t.Helper()
	var wg gosync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 2 * g; i < len(rs); i += 16 {
				for _, r := range rs[i:min(i+2, len(rs))] {
					if _, err := st.AcceptReceipt(r); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// overlap is the most receipt calls the simulator was serving at once,
// from each arrival's [Time, Answered].
func overlap(rs []crmsim.Receipt) int {
	type edge struct {
		at time.Time
		d  int
	}
	var es []edge
	for _, r := range rs {
		if r.Answered.IsZero() {
			continue
		}
		es = append(es, edge{r.Time, 1}, edge{r.Answered, -1})
	}
	slices.SortFunc(es, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.d - b.d // an answer before an arrival at the same instant
	})
	n, most := 0, 0
	for _, e := range es {
		n += e.d
		most = max(most, n)
	}
	return most
}

// watchWindow polls the push window until the test ends and returns a
// function reporting the largest seen.
func watchWindow(t *testing.T, s *Syncer) func() int {
	var mu gosync.Mutex
	most := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			w := s.Status().PushWindow
			mu.Lock()
			most = max(most, w)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// TestPushWindowGrowsToItsCap: steady 2xx answers grow the window from 8
// to its cap, 32, and the simulator never serves more than 32 receipts at
// once. The simulated latency is long enough (200 ms) that a busy machine's
// scheduling delays do not read as latency growth.
func TestPushWindowGrowsToItsCap(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Data: &crmsim.Data{}, Latency: 200 * time.Millisecond, Logger: quietLogger()})
	st := storetest.MustOpen(t)
	want := pairs(0, 480)
	acceptAll(t, st, want)
	cfg := testConfig(sim, &journaltest.Journal{})
	cfg.InFlight = 32
	cfg.Timeout = 5 * time.Second
	s := MustOpenSyncer(t, cfg, st)
	most := watchWindow(t, s)
	rs, err := sim.WaitReceipts(waitCtx(t), len(want))
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, rs, want)
	peak := overlap(rs)
	t.Logf("window up to %d; the simulator served up to %d receipts at once", most(), peak)
	if peak > 32 {
		t.Errorf("the simulator served %d receipts at once, over the cap of 32", peak)
	}
	if most() != 32 || peak < 32 {
		t.Errorf("window up to %d, %d served at once: want it to reach the cap, 32", most(), peak)
	}
}

// TestPushWindowFollowsConcurrencyLimit: an upstream that serves 4 calls
// at once and answers 429 to the rest. The window (cap 64) settles near 4:
// few refusals, none parked, every receipt delivered once in bill order.
func TestPushWindowFollowsConcurrencyLimit(t *testing.T) {
	const limit = 4
	sim := crmsimtest.MustOpen(t, crmsim.Config{Data: &crmsim.Data{}, Latency: 20 * time.Millisecond, MaxConcurrent: limit,
		Logger: quietLogger()})
	st := storetest.MustOpen(t)
	want := pairs(0, 800)
	acceptAll(t, st, want)
	cfg := testConfig(sim, &journaltest.Journal{})
	cfg.Interval = time.Hour // no pulls to take the upstream's slots
	cfg.Timeout = 5 * time.Second
	s := MustOpenSyncer(t, cfg, st)
	rs, err := sim.WaitReceipts(waitCtx(t), len(want))
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, rs, want)
	refused := 0
	for _, r := range rs {
		if r.Fault == crmsim.FaultMaxConcurrent {
			refused++
		}
	}
	frac := float64(refused) / float64(len(rs))
	peak, _ := sim.Concurrency()
	t.Logf("%d of %d receipt calls refused (%.1f%%); up to %d calls open at once; window now %d",
		refused, len(rs), 100*frac, peak, s.Status().PushWindow)
	// A window that ignored the 429s (8, the initial one) would see half
	// its calls refused.
	if frac > 0.15 {
		t.Errorf("%.1f%% of receipt calls refused: the window does not follow the upstream's limit of %d", 100*frac, limit)
	}
	if w := s.Status().PushWindow; w > limit+1 {
		t.Errorf("window %d after the drain, want about %d", w, limit)
	}
	poll.Eventually(t, "the outbox to empty", func() bool { return st.OutboxLen() == 0 })
	if p, _ := st.Parked(); len(p) != 0 {
		t.Errorf("%d receipts parked on 429s", len(p))
	}
}

// TestPushWindowShrinksOn503AndTimeouts: 503s take the window down to its
// floor, one per refusal, and so do timeouts, by halves; the upstream
// stays (or comes back) online and everything is delivered afterwards.
func TestPushWindowShrinksOn503AndTimeouts(t *testing.T) {
	for _, f := range []crmsim.Fault{
		{Mode: crmsim.Fault503, Kind: crmsim.KindReceipts},
		{Mode: crmsim.FaultHang, Kind: crmsim.KindReceipts},
	} {
		t.Run(f.Mode, func(t *testing.T) {
			sim := crmsimtest.MustOpen(t, crmsim.Config{Data: &crmsim.Data{}, Latency: 5 * time.Millisecond, Logger: quietLogger()})
			st := storetest.MustOpen(t)
			cfg := testConfig(sim, &journaltest.Journal{})
			cfg.Timeout = 300 * time.Millisecond
			s := MustOpenSyncer(t, cfg, st)
			poll.Eventually(t, "online", s.Online)
			if s.Status().PushWindow != windowInitial {
				t.Fatalf("window %d at start, want %d", s.Status().PushWindow, windowInitial)
			}
			if err := sim.SetFault(f); err != nil {
				t.Fatal(err)
			}
			want := pairs(0, 100)
			acceptAll(t, st, want)
			poll.Eventually(t, "the window at its floor", func() bool { return s.Status().PushWindow == 1 })
			if err := sim.SetFault(crmsim.Fault{}); err != nil {
				t.Fatal(err)
			}
			poll.Eventually(t, "the outbox to drain", func() bool { return st.OutboxLen() == 0 })
			got := deliveredOnceLenient(sim.Receipts())
			for _, w := range want {
				if _, ok := got[w.EventID]; !ok {
					t.Errorf("receipt %s lost", w.EventID)
				}
			}
			if p, _ := st.Parked(); len(p) != 0 {
				t.Errorf("%d receipts parked", len(p))
			}
		})
	}
}

// TestPushHonoursRetryAfter: a 429 with Retry-After: 4 pauses the whole
// push, not only that receipt's bill: nothing reaches the upstream until
// the 4 s have passed.
func TestPushHonoursRetryAfter(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Data: &crmsim.Data{}, Logger: quietLogger()})
	st := storetest.MustOpen(t)
	s := MustOpenSyncer(t, testConfig(sim, &journaltest.Journal{}), st)
	poll.Eventually(t, "online", s.Online)
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.Fault429, Kind: crmsim.KindReceipts, RetryAfter: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	want := pairs(0, 40)
	acceptAll(t, st, want)
	poll.Eventually(t, "the push paused with nothing in flight", func() bool {
		ss := s.Status()
		return ss.PushWindow == 0 && ss.InFlight == 0
	})
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	rs, err := sim.WaitReceipts(waitCtx(t), len(want))
	if err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for _, r := range rs {
		if r.Status == 429 && (first.IsZero() || r.Time.Before(first)) {
			first = r.Time
		}
	}
	// Receipts already on their way when the 429 came back may arrive
	// just after it (a busy machine may take a while); then nothing until
	// Retry-After has passed.
	for _, r := range rs {
		if d := r.Time.Sub(first); d > 1500*time.Millisecond && d < 4*time.Second {
			t.Errorf("receipt %s arrived %v after the first 429 with Retry-After: 4", r.EventID, d.Round(time.Millisecond))
		}
	}
	checkDelivered(t, rs, want)
	if !s.Online() {
		t.Error("a 429 made the upstream offline")
	}
}

// TestPushWindowRecoversAfterOutage: pushing at the cap, the upstream goes
// away (connections refused) while receipts keep coming; when it is back
// the window grows to the cap again and the backlog drains, nothing lost,
// in bill order. (200 ms of latency, as in TestPushWindowGrowsToItsCap.)
func TestPushWindowRecoversAfterOutage(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Data: &crmsim.Data{}, Latency: 200 * time.Millisecond, Logger: quietLogger()})
	st := storetest.MustOpen(t)
	cfg := testConfig(sim, &journaltest.Journal{})
	cfg.InFlight = 16
	cfg.Timeout = 5 * time.Second
	s := MustOpenSyncer(t, cfg, st)
	poll.Eventually(t, "online", s.Online)
	before := pairs(0, 240)
	acceptAll(t, st, before)
	poll.Eventually(t, "pushing at the cap", func() bool { return s.Status().PushWindow == 16 })
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse}); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "offline", func() bool { return !s.Online() })
	after := pairs(240, 320)
	acceptAll(t, st, after)
	back := time.Now()
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "the outbox to drain", func() bool { return st.OutboxLen() == 0 })
	rs := sim.Receipts()
	var since []crmsim.Receipt
	for _, r := range rs {
		if r.Time.After(back) {
			since = append(since, r)
		}
	}
	peak := overlap(since)
	t.Logf("after the outage the simulator served up to %d receipts at once", peak)
	if peak != 16 {
		t.Errorf("after the outage up to %d receipts served at once, want the cap, 16", peak)
	}
	// The outage cut connections with answers on their way: the simulator
	// may count a receipt twice; the first deliveries keep bill order.
	got := deliveredOnceLenient(rs)
	last := map[string]int{}
	for _, w := range append(before, after...) {
		g, ok := got[w.EventID]
		if !ok {
			t.Errorf("receipt %s lost", w.EventID)
			continue
		}
		if g.Seq < last[w.OrderKey()] {
			t.Errorf("receipt %s overtook an earlier receipt of %s", w.EventID, w.OrderKey())
		}
		last[w.OrderKey()] = g.Seq
	}
}
