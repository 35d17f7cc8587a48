package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/internal/storetest"
)

// The upstream-wide backoff (backoff.go): its schedule and Retry-After
// parsing on their own, then against the simulator: a backlog pushed into
// an upstream answering 500 goes out at the rate the schedule allows and
// drains once the upstream is back; a list answered 429 Retry-After is
// not asked again (nor anything else) before the time says; 429 and 503,
// on and off, never make the upstream offline nor log outages.

func TestParseRetryAfterForms(t *testing.T) {
	now := time.Date(2026, 3, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		in   string
		want time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "30", 30 * time.Second},
		{"seconds padded", " 7 ", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"huge seconds, no overflow", "99999999999", retryAfterLongest * time.Second},
		{"fraction", "1.5", 0},
		{"IMF-fixdate", "Sun, 22 Mar 2026 10:00:45 GMT", 45 * time.Second},
		{"RFC 850 date", "Sunday, 22-Mar-26 10:01:00 GMT", time.Minute},
		{"asctime date", "Sun Mar 22 10:00:05 2026", 5 * time.Second},
		{"date in the past", "Sun, 22 Mar 2026 09:59:00 GMT", 0},
		{"date now", "Sun, 22 Mar 2026 10:00:00 GMT", 0},
		{"garbage", "soon", 0},
		{"seconds with a unit", "30s", 0},
		{"date without zone", "2026-03-22 10:00:30", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	now := time.Now()
	answer := func(status int, retryAfter string) *response {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return &response{status: status, header: h}
	}
	timeout := fmt.Errorf("no answer within 5s: %w", context.DeadlineExceeded)
	for _, tc := range []struct {
		name string
		resp *response
		err  error
		want verdict
		ra   time.Duration
	}{
		{"200", answer(200, ""), nil, vOK, 0},
		{"404", answer(404, ""), nil, vOK, 0},
		{"400", answer(400, ""), nil, vOK, 0},
		{"500", answer(500, ""), nil, vFailed, 0},
		{"502", answer(502, ""), nil, vFailed, 0},
		{"408", answer(408, ""), nil, vFailed, 0},
		{"503 without Retry-After", answer(503, ""), nil, vFailed, 0},
		{"429 without Retry-After", answer(429, ""), nil, vFailed, 0},
		{"429 Retry-After 30", answer(429, "30"), nil, vBusy, 30 * time.Second},
		{"503 Retry-After date", answer(503, now.Add(90*time.Second).UTC().Format(http.TimeFormat)), nil, vBusy, 0},
		{"500 with Retry-After is still a failure", answer(500, "5"), nil, vFailed, 0},
		{"200 cut short", answer(200, ""), errors.New("unexpected EOF"), vNone, 0},
		{"timeout", nil, timeout, vFailed, 0},
		{"connection refused", nil, errors.New("connect: connection refused"), vNone, 0},
		{"cancelled", nil, context.Canceled, vNone, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ra := classify(tc.resp, tc.err, now)
			if v != tc.want {
				t.Errorf("verdict %d, want %d", v, tc.want)
			}
			if tc.want == vBusy && tc.ra == 0 {
				// An HTTP date: within a second of 90 s (whole seconds).
				if ra < 89*time.Second || ra > 90*time.Second {
					t.Errorf("Retry-After %v, want about 90s", ra)
				}
			} else if ra != tc.ra {
				t.Errorf("Retry-After %v, want %v", ra, tc.ra)
			}
		})
	}
}

// TestUpstreamBackoffSchedule drives the backoff with a clock of its own:
// failures count once per wave, the first wave is free, then 1 s doubling
// to the cap with jitter; a success ends the delay but not a Retry-After.
func TestUpstreamBackoffSchedule(t *testing.T) {
	b := newUpstreamBackoff(time.Second, 60*time.Second)
	t0 := time.Date(2026, 3, 22, 10, 0, 0, 0, time.UTC)
	now := t0.Add(20 * time.Millisecond)
	// Wave 1: 64 calls sent at t0 answered 500. One growth, no delay.
	for range 64 {
		b.observe(vFailed, 0, t0, now, "500")
	}
	if u, _, w := b.state(now); w != 1 || !u.IsZero() {
		t.Fatalf("after one failing wave: waves %d, wait until %v; want 1 and no wait", w, u)
	}
	// Waves 2.. : each sent once the last wait ended.
	for wave := 2; wave <= 12; wave++ {
		now = now.Add(time.Millisecond)
		sent := now
		now = now.Add(10 * time.Millisecond)
		began := b.observe(vFailed, 0, sent, now, "500")
		for range 10 { // the rest of the wave: no further growth
			b.observe(vFailed, 0, sent, now.Add(time.Millisecond), "500")
		}
		u, reason, w := b.state(now)
		d := u.Sub(now)
		nominal := min(time.Second<<(wave-2), 60*time.Second)
		if w != wave || !began || reason != "500" {
			t.Errorf("wave %d: waves %d, began %v, reason %q", wave, w, began, reason)
		}
		if d < nominal*4/5 || d > min(nominal*6/5, 60*time.Second) {
			t.Errorf("wave %d: delay %v, want %v ±20%% (at most 60s)", wave, d, nominal)
		}
		if lo := b.minDelay(wave); d < lo || lo != nominal*4/5 {
			t.Errorf("wave %d: delay %v, minDelay %v, want the minimum %v", wave, d, lo, nominal*4/5)
		}
		now = u
	}
	// A success ends the delay at once and wakes whoever waits.
	ch := b.changed()
	now = now.Add(time.Millisecond)
	b.observe(vFailed, 0, now, now, "500")
	b.observe(vOK, 0, now, now.Add(time.Millisecond), "")
	select {
	case <-ch:
	default:
		t.Error("a success did not wake the waiters")
	}
	if u, _, w := b.state(now); !u.IsZero() || w != 0 {
		t.Errorf("after a success: wait until %v, waves %d; want none", u, w)
	}
	// Retry-After: not before, for everyone; capped; a success keeps it.
	now = now.Add(time.Second)
	if !b.observe(vBusy, 20*time.Second, now, now, "429") {
		t.Error("a Retry-After did not begin a wait")
	}
	b.observe(vBusy, 5*time.Second, now, now, "429") // an earlier end does not shorten it
	b.observe(vOK, 0, now, now, "")
	if u, reason, _ := b.state(now); !u.Equal(now.Add(20*time.Second)) || reason != "429" {
		t.Errorf("Retry-After 20: wait until %v (%q), want %v", u, reason, now.Add(20*time.Second))
	}
	b.observe(vBusy, time.Hour, now, now, "429")
	if u, _, _ := b.state(now); !u.Equal(now.Add(retryAfterMax)) {
		t.Errorf("Retry-After 1h: wait until %v, want capped at %v", u, now.Add(retryAfterMax))
	}
	// Saying nothing changes nothing.
	if b.observe(vNone, 0, now, now, "refused"); b.waves != 0 {
		t.Errorf("vNone grew the delay: %d waves", b.waves)
	}
}

func TestUpstreamBackoffWait(t *testing.T) {
	b := newUpstreamBackoff(time.Second, 60*time.Second)
	now := time.Now()
	b.observe(vBusy, 30*time.Second, now, now, "429")
	// A caller with a deadline before the end is told at once.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := b.wait(ctx)
	var be *busyError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "busy until") {
		t.Fatalf("wait with a 2s deadline in a 30s wait: %v, want a busyError", err)
	}
	// A caller without one waits; a failures' delay ended by a success
	// lets it go.
	b2 := newUpstreamBackoff(time.Hour, time.Hour)
	b2.observe(vFailed, 0, now, now, "500")
	b2.observe(vFailed, 0, now.Add(time.Millisecond), now.Add(time.Millisecond), "500")
	done := make(chan error, 1)
	go func() { _, err := b2.wait(context.Background()); done <- err }()
	b2.observe(vOK, 0, time.Now(), time.Now(), "")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// wavesWithin is how many failing waves the backoff's schedule lets start
// within d of the first: wave k+1 goes no sooner than minDelay(k) after
// wave k's first answer, which comes after wave k went.
func wavesWithin(b *upstreamBackoff, d time.Duration) int {
	n, at := 1, time.Duration(0)
	for {
		at += b.minDelay(n)
		if at > d {
			return n
		}
		n++
	}
}

// TestBackoffBoundsPushesTo500 pushes 2,000 receipts into an upstream that
// answers every receipt 500 (no Retry-After) for some seconds: the
// attempts stay within what the schedule allows in the time measured —
// at most a window (the cap, 64) a wave — and once the fault is cleared
// the outbox drains, every receipt once and in bill order. Without the
// shared backoff the same run sent 500 attempts a second.
func TestBackoffBoundsPushesTo500(t *testing.T) {
	for _, f := range []crmsim.Fault{
		{Mode: crmsim.Fault500, Kind: crmsim.KindReceipts},
		{Mode: crmsim.Fault503, Kind: crmsim.KindReceipts},
	} {
		t.Run(f.Mode, func(t *testing.T) {
			sim := crmsimtest.MustOpen(t, crmsim.Config{Data: &crmsim.Data{}, Logger: quietLogger()})
			st := storetest.MustOpen(t)
			want := pairs(0, 2000)
			acceptAll(t, st, want)
			if err := sim.SetFault(f); err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			cfg := testConfig(sim, &journaltest.Journal{})
			cfg.Interval = time.Hour // no pulls: only the pushes' own answers move the backoff
			cfg.Timeout = 5 * time.Second
			cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
			s := MustOpenSyncer(t, cfg, st)
			const waves = 4 // 0 + 1 + 2 s of delays, then a 4 s one
			poll.Eventually(t, "four failing waves", func() bool { return s.Status().BackoffWaves >= waves })
			busy := s.Status()
			if err := sim.SetFault(crmsim.Fault{}); err != nil {
				t.Fatal(err)
			}
			cleared := time.Now()
			var first time.Time
			attempts := 0
			for _, r := range sim.Receipts() {
				if r.Time.Before(cleared) {
					attempts++
					if first.IsZero() {
						first = r.Time
					}
				}
			}
			elapsed := cleared.Sub(first)
			// Slack: a wave that went just before the clock says (one
			// more wave) and what was in flight at the start (one more).
			allowed := cfg.InFlight
			if allowed == 0 {
				allowed = DefaultInFlight
			}
			bound := allowed * (wavesWithin(s.backoff, elapsed) + 2)
			t.Logf("%s: %d attempts in %v (%.0f/s), the schedule allows %d; busy until %v (%q)",
				f.Mode, attempts, elapsed.Round(time.Millisecond), float64(attempts)/elapsed.Seconds(), bound,
				busy.BusyUntil.Sub(cleared).Round(time.Millisecond), busy.BusyReason)
			if attempts > bound {
				t.Errorf("%d attempts in %v against a failing upstream, the backoff allows %d", attempts, elapsed, bound)
			}
			if busy.BusyUntil.IsZero() || !strings.Contains(busy.BusyReason, f.Mode) {
				t.Errorf("status while backing off: busy until %v (%q), want a wait naming the %s", busy.BusyUntil, busy.BusyReason, f.Mode)
			}
			if n := len(logs.lines("upstream busy")); n != 1 {
				t.Errorf("%d 'upstream busy' lines, want 1:\n%s", n, logs)
			}
			rs, err := sim.WaitReceipts(waitCtx(t), len(want))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("drained %v after the fault was cleared (%v after the wait in force then ended)",
				time.Since(cleared).Round(time.Millisecond), time.Since(busy.BusyUntil).Round(time.Millisecond))
			checkDelivered(t, rs, want)
			poll.Eventually(t, "the outbox to empty", func() bool { return st.OutboxLen() == 0 })
			if ss := s.Status(); ss.BackoffWaves != 0 || !ss.BusyUntil.IsZero() {
				t.Errorf("after the drain: %d waves, busy until %v; want none", ss.BackoffWaves, ss.BusyUntil)
			}
			if !s.Online() {
				t.Errorf("%s on receipts made the upstream offline", f.Mode)
			}
		})
	}
}

// TestListRetryAfterHoldsEveryone: the list answered 429 Retry-After: 3 —
// nothing at all reaches the upstream until 3 s after each such answer
// arrived (the simulator's own clock), the upstream stays online and the
// log has no outage in it. Without the shared backoff the list was asked
// twice a second, flapping offline and online with a log line each way.
func TestListRetryAfterHoldsEveryone(t *testing.T) {
	const retryAfter = 3 * time.Second
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	logs := &logBuffer{}
	j := &journaltest.Journal{}
	cfg := testConfig(sim, j)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s := MustOpenSyncer(t, cfg, st)
	poll.Eventually(t, "the first mirror", func() bool { return mirrored(t, sim, st) })
	changes := s.m.stateChanges.Load()
	sim.ResetCounters()
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.Fault429, Kind: crmsim.KindList, RetryAfter: retryAfter}); err != nil {
		t.Fatal(err)
	}
	refused := func() int {
		n := 0
		for _, c := range sim.Calls() {
			if c.Fault == crmsim.Fault429 {
				n++
			}
		}
		return n
	}
	poll.Eventually(t, "a list answered 429", func() bool { return refused() >= 1 })
	poll.Eventually(t, "the status to say busy", func() bool { return !s.Status().BusyUntil.IsZero() })
	// Receipts wait too; and a read-through miss is answered at once.
	want := pairs(0, 20)
	acceptAll(t, st, want)
	start := time.Now()
	_, err := s.BillByID(context.Background(), "123456")
	if d := time.Since(start); err == nil || !strings.Contains(err.Error(), "busy until") || d > s.cfg.ReadThroughTimeout {
		t.Errorf("read-through while busy: %v after %v, want a 'busy until' miss at once", err, d)
	}
	poll.Eventually(t, "three lists answered 429", func() bool { return refused() >= 3 })
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	pulled := s.Status().LastPullAt
	poll.Eventually(t, "a pull after the fault", func() bool { return s.Status().LastPullAt.After(pulled) })
	rs, err := sim.WaitReceipts(waitCtx(t), len(want))
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, rs, want)

	// The pull asks one thing at a time, so every pull call after a 429
	// was sent after the daemon had it: none may arrive sooner than
	// Retry-After later. Pushes run beside the pull: one already on its
	// way when a later 429 came back may arrive just after it (a busy
	// machine may take a while), then none until Retry-After has passed.
	// The receipts were accepted once the daemon had the first 429, so
	// none may arrive before its Retry-After.
	calls := sim.Calls()
	var lists int
	var firstRefused, firstReceipt time.Time
	for i, c := range calls {
		if c.Kind == crmsim.KindList {
			lists++
		}
		if c.Kind == crmsim.KindReceipts && firstReceipt.IsZero() {
			firstReceipt = c.Time
		}
		if c.Fault != crmsim.Fault429 {
			continue
		}
		if firstRefused.IsZero() {
			firstRefused = c.Time
		}
		for _, next := range calls[i+1:] {
			gap := next.Time.Sub(c.Time)
			if gap < retryAfter && (next.Kind != crmsim.KindReceipts || gap > time.Second) {
				t.Errorf("%s %s?%s arrived %v after a 429 Retry-After: 3 (at %s)", next.Method, next.Path, next.Query,
					gap.Round(time.Millisecond), c.Time.Format("15:04:05.000"))
			}
		}
	}
	if gap := firstReceipt.Sub(firstRefused); gap < retryAfter {
		t.Errorf("the first receipt arrived %v after the first 429 Retry-After: 3", gap.Round(time.Millisecond))
	}
	t.Logf("%d list calls, %d answered 429, %d calls in all over %v", lists, refused(), len(calls),
		calls[len(calls)-1].Time.Sub(calls[0].Time).Round(time.Millisecond))
	if n := s.m.stateChanges.Load() - changes; n != 0 || !s.Online() {
		t.Errorf("%d online/offline changes on a busy list (online now %v), want none", n, s.Online())
	}
	for _, line := range []string{`msg="upstream offline"`, "upstream online again", "upstream call failed"} {
		if n := len(logs.lines(line)); n != 0 {
			t.Errorf("%d %q lines for a busy list, want none:\n%s", n, line, logs)
		}
	}
	if n := len(logs.lines("upstream busy")); n != 1 {
		t.Errorf("%d 'upstream busy' lines, want 1 (once a %v):\n%s", n, s.cfg.OutageSummaryEvery, logs)
	}
}

// TestBusyFlappingNeverOffline: 429 (Retry-After: 1) and 503 (none), on
// and off every 300 ms for every call, hello and probes included: the
// upstream is never offline, the log has no outage line, and what waited
// is delivered once the upstream is calm.
func TestBusyFlappingNeverOffline(t *testing.T) {
	for _, f := range []crmsim.Fault{
		{Mode: crmsim.Fault429, Flap: 300 * time.Millisecond},
		{Mode: crmsim.Fault503, Flap: 300 * time.Millisecond},
	} {
		t.Run(f.Mode, func(t *testing.T) {
			t.Parallel()
			sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
			st := storetest.MustOpen(t)
			logs := &logBuffer{}
			j := &journaltest.Journal{}
			cfg := testConfig(sim, j)
			cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
			s := MustOpenSyncer(t, cfg, st)
			poll.Eventually(t, "online", s.Online)
			changes := s.m.stateChanges.Load()
			var wentOffline atomic.Bool
			stop := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					select {
					case <-stop:
						return
					case <-s.changed():
						if !s.Online() {
							wentOffline.Store(true)
						}
					}
				}
			}()
			if err := sim.SetFault(f); err != nil {
				t.Fatal(err)
			}
			want := pairs(0, 200)
			acceptAll(t, st, want)
			faulted := func() int {
				n := 0
				for _, c := range sim.Calls() {
					if c.Fault == f.Mode {
						n++
					}
				}
				return n
			}
			poll.Eventually(t, "ten calls answered busy", func() bool { return faulted() >= 10 })
			if err := sim.SetFault(crmsim.Fault{}); err != nil {
				t.Fatal(err)
			}
			rs, err := sim.WaitReceipts(waitCtx(t), len(want))
			if err != nil {
				t.Fatal(err)
			}
			close(stop)
			<-watched
			checkDelivered(t, rs, want)
			if n := s.m.stateChanges.Load() - changes; n != 0 || wentOffline.Load() {
				t.Errorf("%d online/offline changes while %s flapped (offline seen %v), want none", n, f.Mode, wentOffline.Load())
			}
			for _, line := range []string{`msg="upstream offline"`, "upstream online again", "upstream still offline"} {
				if n := len(logs.lines(line)); n != 0 {
					t.Errorf("%d %q lines while %s flapped, want none:\n%s", n, line, f.Mode, logs)
				}
			}
			if j.Has(shopbridge.KindUpstreamState, "offline") {
				t.Errorf("an offline change journaled while %s flapped", f.Mode)
			}
			if n := len(logs.lines("upstream busy")); n > 1 {
				t.Errorf("%d 'upstream busy' lines, want at most one:\n%s", n, logs)
			}
		})
	}
}
