package sync

import (
	"slices"
	"testing"
	"time"
)

// The limiter's rules on synthetic upstreams, round by round; the tests in
// push_test.go run it against the simulator.

// upstream answers request i (1-based) of n sent together.
type upstream func(i, n int) (signal, time.Duration)

func unlimited(rtt time.Duration) upstream {
	return func(int, int) (signal, time.Duration) { return sigOK, rtt }
}

// concurrencyLimit serves c at once and refuses the rest at once.
func concurrencyLimit(c int, rtt time.Duration) upstream {
	return func(i, n int) (signal, time.Duration) {
		if i > c {
			return sigRefused, rtt
		}
		return sigOK, rtt
	}
}

// queueing serves c at once and queues the rest: latency grows with the
// load.
func queueing(c int, base time.Duration) upstream {
	return func(i, n int) (signal, time.Duration) {
		return sigOK, base * time.Duration(max(n, c)) / time.Duration(c)
	}
}

func failing(rtt time.Duration) upstream {
	return func(int, int) (signal, time.Duration) { return sigFailed, rtt }
}

// simRun is what a run of rounds showed.
type simRun struct {
	windows          []int // the window each round was sent with
	ok, refused, all int
	now              time.Time
}

// simulate sends rounds of requests: each round as many as the window
// allows (at most demand, when > 0), all at once; the next round goes when
// the last answer is in.
func simulate(l *limiter, up upstream, rounds, demand int, now time.Time) simRun {
	run := simRun{}
	for range rounds {
		w := l.window(now)
		if w == 0 {
			now = l.pauseUntil
			continue
		}
		n := w
		if demand > 0 {
			n = min(n, demand)
		}
		run.windows = append(run.windows, w)
		type answer struct {
			s  sample
			at time.Time
		}
		answers := make([]answer, n)
		for i := range n {
			sig, rtt := up(i+1, n)
			answers[i] = answer{sample{sig: sig, sentAt: now, rtt: rtt, inFlight: i + 1, window: w}, now.Add(rtt)}
		}
		slices.SortStableFunc(answers, func(a, b answer) int { return a.at.Compare(b.at) })
		for _, a := range answers {
			l.observe(a.s, a.at)
			run.all++
			switch a.s.sig {
			case sigOK:
				run.ok++
			case sigRefused:
				run.refused++
			}
			now = a.at
		}
	}
	run.now = now
	return run
}

var t0 = time.Date(2026, 3, 22, 10, 0, 0, 0, time.UTC)

func TestLimiterGrowsToTheCap(t *testing.T) {
	for _, tc := range []struct {
		name string
		rtt  time.Duration
	}{
		{"50ms", 50 * time.Millisecond},
		{"loopback", 300 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(1, 64, t0)
			run := simulate(l, unlimited(tc.rtt), 40, 0, t0)
			if run.windows[0] != windowInitial {
				t.Errorf("first window %d, want %d", run.windows[0], windowInitial)
			}
			at := slices.Index(run.windows, 64)
			// Slow start doubles the window each round it was filled (in
			// these all-at-once rounds, every second one).
			if at < 0 || at > 7 {
				t.Errorf("windows %v: want the cap 64 within 7 rounds (slow start)", run.windows)
			}
			if m := slices.Max(run.windows); m > 64 {
				t.Errorf("window %d over the cap", m)
			}
			if run.windows[len(run.windows)-1] != 64 {
				t.Errorf("windows %v: want it to stay at the cap", run.windows)
			}
		})
	}
}

// TestLimiterLatencyJitter: latency that wanders by up to a millisecond and
// a half on a loopback-fast upstream is scheduling noise, not a queue.
func TestLimiterLatencyJitter(t *testing.T) {
	l := newLimiter(1, 64, t0)
	k := 0
	jittery := func(i, n int) (signal, time.Duration) {
		k++
		return sigOK, 200*time.Microsecond + time.Duration(k%16)*100*time.Microsecond
	}
	run := simulate(l, jittery, 40, 0, t0)
	if got := run.windows[len(run.windows)-1]; got != 64 {
		t.Errorf("windows %v: want the cap", run.windows)
	}
}

// TestLimiterConcurrencyLimit: an upstream that serves c at once and
// refuses the rest. The window settles at c, probing above it rarely: few
// refusals, and nearly the throughput of a window fixed at c.
func TestLimiterConcurrencyLimit(t *testing.T) {
	for _, c := range []int{1, 3, 8, 20} {
		l := newLimiter(1, 64, t0)
		warm := simulate(l, concurrencyLimit(c, 50*time.Millisecond), 30, 0, t0)
		run := simulate(l, concurrencyLimit(c, 50*time.Millisecond), 2000, 0, warm.now)
		if m := slices.Max(append(warm.windows, run.windows...)); m > 64 {
			t.Errorf("c=%d: window %d over the cap", c, m)
		}
		lo, hi := slices.Min(run.windows), slices.Max(run.windows)
		if lo < c-1 || hi > c+1 {
			t.Errorf("c=%d: windows from %d to %d after warming up, want %d±1", c, lo, hi, c)
		}
		refused := float64(run.refused) / float64(run.all)
		served := float64(run.ok) / float64(len(run.windows)*c)
		t.Logf("c=%d: warm-up windows %v; then %.2f%% refused, %.1f%% of a window fixed at c", c, warm.windows,
			100*refused, 100*served)
		// A probe every windowHoldMax+1 rounds refuses one request of
		// about windowHoldMax*c.
		want := max(0.02, 1.5/float64(windowHoldMax*c))
		if refused > want || served < 0.95 {
			t.Errorf("c=%d: %.2f%% refused (want < %.1f%%), %.1f%% of c served (want >= 95%%)", c, 100*refused, 100*want, 100*served)
		}
	}
}

// TestLimiterCapacityChanges: the upstream's limit drops from 40 to 5, then
// rises to 30: the window follows both ways.
func TestLimiterCapacityChanges(t *testing.T) {
	l := newLimiter(1, 64, t0)
	run := simulate(l, concurrencyLimit(40, 20*time.Millisecond), 100, 0, t0)
	if w := run.windows[len(run.windows)-1]; w < 39 || w > 41 {
		t.Fatalf("windows %v: want about 40", run.windows)
	}
	run = simulate(l, concurrencyLimit(5, 20*time.Millisecond), 3, 0, run.now)
	if w := l.window(run.now); w < 4 || w > 6 {
		t.Errorf("windows %v then %d: want about 5 within 3 rounds of the drop", run.windows, w)
	}
	// Growth after a probe succeeds is one a round: 25 more takes a while.
	run = simulate(l, concurrencyLimit(30, 20*time.Millisecond), 300, 0, run.now)
	if w := run.windows[len(run.windows)-1]; w < 29 || w > 31 {
		t.Errorf("windows %v: want about 30 after the rise", run.windows)
	}
}

// TestLimiterQueue: an upstream that queues what is over its capacity. The
// window stops where latency is about windowTolerance times its minimum:
// throughput at the upstream's capacity, latency bounded.
func TestLimiterQueue(t *testing.T) {
	l := newLimiter(1, 64, t0)
	run := simulate(l, queueing(8, 50*time.Millisecond), 200, 0, t0)
	tail := run.windows[100:]
	lo, hi := slices.Min(tail), slices.Max(tail)
	if lo < 8 || hi > 16 {
		t.Errorf("windows %v: want between 8 (capacity) and 16 (latency 2x)", tail)
	}
}

func TestLimiterFailuresHalve(t *testing.T) {
	l := newLimiter(1, 64, t0)
	run := simulate(l, unlimited(10*time.Millisecond), 10, 0, t0)
	if l.window(run.now) != 64 {
		t.Fatalf("windows %v: want the cap first", run.windows)
	}
	// Each round of failures halves the window once, however many fail.
	run = simulate(l, failing(10*time.Millisecond), 8, 0, run.now)
	if want := []int{64, 32, 16, 8, 4, 2, 1, 1}; !slices.Equal(run.windows, want) {
		t.Errorf("windows under failures %v, want %v", run.windows, want)
	}
	// One failure among answers: one halving.
	l = newLimiter(1, 64, t0)
	run = simulate(l, unlimited(10*time.Millisecond), 10, 0, t0)
	run = simulate(l, func(i, n int) (signal, time.Duration) {
		if i == 3 || i == 40 {
			return sigFailed, 10 * time.Millisecond
		}
		return sigOK, 10 * time.Millisecond
	}, 1, 0, run.now)
	if w := l.window(run.now); w != 32 {
		t.Errorf("window %d after two failures in one round, want 32", w)
	}
}

func TestLimiterRefusalsTakeOneEach(t *testing.T) {
	l := newLimiter(1, 64, t0)
	run := simulate(l, func(i, n int) (signal, time.Duration) {
		if i > 5 {
			return sigRefused, time.Millisecond
		}
		return sigOK, time.Millisecond
	}, 1, 0, t0)
	if w := l.window(run.now); w != 5 {
		t.Errorf("window %d after 3 of 8 refused, want 5", w)
	}
	if l.slowStart {
		t.Error("still in slow start after refusals")
	}
}

func TestLimiterRetryAfter(t *testing.T) {
	l := newLimiter(1, 64, t0)
	l.observe(sample{sig: sigRefused, sentAt: t0, inFlight: 1, window: 8, retryAfter: 3 * time.Second}, t0)
	if w := l.window(t0.Add(2900 * time.Millisecond)); w != 0 {
		t.Errorf("window %d during Retry-After, want 0", w)
	}
	if w := l.window(t0.Add(3 * time.Second)); w != 7 {
		t.Errorf("window %d after Retry-After, want 7 (one refusal)", w)
	}
	// An earlier Retry-After does not shorten a pause; a huge one is capped.
	l.observe(sample{sig: sigRefused, sentAt: t0, inFlight: 1, window: 8, retryAfter: time.Hour}, t0)
	l.observe(sample{sig: sigRefused, sentAt: t0, inFlight: 1, window: 8, retryAfter: time.Second}, t0)
	if !l.pauseUntil.Equal(t0.Add(retryAfterMax)) {
		t.Errorf("paused until %v, want %v", l.pauseUntil.Sub(t0), retryAfterMax)
	}
}

func TestLimiterFixed(t *testing.T) {
	l := newLimiter(8, 8, t0)
	for _, up := range []upstream{unlimited(time.Millisecond), concurrencyLimit(2, time.Millisecond),
		failing(time.Millisecond), queueing(1, time.Millisecond)} {
		run := simulate(l, up, 20, 0, t0)
		for _, w := range run.windows {
			if w != 8 {
				t.Fatalf("fixed window moved: %v", run.windows)
			}
		}
	}
	l.observe(sample{sig: sigRefused, sentAt: t0, retryAfter: 2 * time.Second}, t0)
	if w := l.window(t0.Add(time.Second)); w != 0 {
		t.Errorf("fixed window %d during Retry-After, want 0", w)
	}
}

func TestLimiterFloor(t *testing.T) {
	l := newLimiter(4, 64, t0)
	run := simulate(l, failing(time.Millisecond), 10, 0, t0)
	if m := slices.Min(run.windows); m != 4 {
		t.Errorf("windows %v, want the floor 4", run.windows)
	}
	if l := newLimiter(100, 16, t0); l.window(t0) != 16 {
		t.Errorf("floor above the cap: window %d, want 16", l.window(t0))
	}
	if l := newLimiter(0, 4, t0); l.window(t0) != 4 {
		t.Errorf("cap below the initial window: %d, want 4", l.window(t0))
	}
}

// TestLimiterIdle: a window that is not filled does not grow.
func TestLimiterIdle(t *testing.T) {
	l := newLimiter(1, 64, t0)
	run := simulate(l, unlimited(10*time.Millisecond), 50, 3, t0)
	if m := slices.Max(run.windows); m != windowInitial {
		t.Errorf("windows %v with 3 receipts at a time: want %d throughout", run.windows, windowInitial)
	}
}

// TestLimiterRecover: after an outage cut the window to its floor, it
// grows back in slow start, past refusal holds learned before.
func TestLimiterRecover(t *testing.T) {
	l := newLimiter(1, 64, t0)
	run := simulate(l, concurrencyLimit(6, 10*time.Millisecond), 50, 0, t0)
	run = simulate(l, failing(10*time.Millisecond), 10, 0, run.now)
	if w := l.window(run.now); w != 1 {
		t.Fatalf("window %d after failures, want 1", w)
	}
	l.recover(run.now)
	run = simulate(l, unlimited(10*time.Millisecond), 16, 0, run.now)
	if at := slices.Index(run.windows, 64); at < 0 || at > 14 || slices.Max(run.windows) > 64 {
		t.Errorf("windows after recovering %v, want the cap 64 within 14 rounds", run.windows)
	}
}

// TestLimiterLatencySpike: one slow round (this machine busy elsewhere)
// does not shrink the window; two do, and once latency is back to normal
// the window grows back to where it was within a few rounds.
func TestLimiterLatencySpike(t *testing.T) {
	l := newLimiter(1, 64, t0)
	run := simulate(l, unlimited(50*time.Millisecond), 10, 0, t0)
	if l.window(run.now) != 64 {
		t.Fatalf("windows %v: want the cap first", run.windows)
	}
	run = simulate(l, unlimited(200*time.Millisecond), 1, 0, run.now)
	run = simulate(l, unlimited(50*time.Millisecond), 4, 0, run.now)
	if m := slices.Min(run.windows); m != 64 {
		t.Errorf("windows %v after one slow round: want 64 throughout", run.windows)
	}
	run = simulate(l, unlimited(200*time.Millisecond), 3, 0, run.now)
	if w := l.window(run.now); w >= 64 {
		t.Fatalf("window %d after three slow rounds: want it cut", w)
	}
	// Back by half the distance a round (in these all-at-once rounds,
	// every second one).
	run = simulate(l, unlimited(50*time.Millisecond), 20, 0, run.now)
	if at := slices.Index(run.windows, 64); at < 0 || at > 16 {
		t.Errorf("windows %v after latency is back: want 64 again within 16 rounds", run.windows)
	}
}

// TestLimiterLatencyShift: latency that rises and stays up whatever the
// window (this machine loaded by other work, a longer route) becomes the
// usual: the window may dip, then grows back to the cap and stays.
func TestLimiterLatencyShift(t *testing.T) {
	l := newLimiter(1, 64, t0)
	run := simulate(l, unlimited(50*time.Millisecond), 10, 0, t0)
	run = simulate(l, unlimited(85*time.Millisecond), 60, 0, run.now)
	if tail := run.windows[40:]; slices.Min(tail) != 64 {
		t.Errorf("windows %v at a steady 85 ms: want back at the cap", run.windows)
	}
}
