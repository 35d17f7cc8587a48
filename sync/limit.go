package sync

import (
	"slices"
	"time"
)

// The push window: how many receipts may be in flight to the upstream at
// once. It adapts to what the upstream shows, in rounds of one round trip
// (a round ends when an answer comes back to a request sent after the
// round began), as TCP's congestion window does and as Netflix's
// concurrency-limits do for RPC clients:
//
//   - Growth. A round whose answers were all 2xx, whose median latency
//     stayed near the lowest latency seen lately, and that filled the
//     window, grows it: doubling until the first sign of trouble (slow
//     start), then by one a round.
//   - Refusals (429, 503). An upstream that limits a client's concurrency
//     or rate refuses what is over its limit, so each refusal takes one
//     off the window: a round of W requests with k refused leaves W-k, the
//     limit itself. Probing above a limit the upstream refused at waits a
//     number of rounds that doubles with each probe refused (up to
//     windowHoldMax), so against a fixed limit a probe is refused about
//     once every 33 rounds.
//   - Failures (no answer, a timeout, 408, 425, other 5xx). The upstream
//     or the path is in trouble: the window halves, once per window of
//     requests (answers to requests sent before the last cut do not cut
//     again).
//   - Latency growth. Two rounds in a row whose median latency is well
//     above the lowest seen lately (windowTolerance times, plus
//     windowJitter) mean a queue upstream: the window shrinks in
//     proportion, by at most half. One slow round is more often this
//     machine busy with something else. If two rounds later latency has
//     not come down with the window, the queue was not ours (this machine
//     loaded, a longer route): the cut is undone and that latency becomes
//     the minimum to compare with.
//   - After a failure or latency cut the window grows back towards where
//     it was by half the distance a round (as TCP BIC does), so a false
//     alarm costs a few rounds, and a real queue shows again soon.
//   - Retry-After on a 429 or 503 speaks for the upstream, not for one
//     receipt (RFC 6585 §4, RFC 9110 §10.2.3): no receipt is sent until it
//     has passed (at most retryAfterMax).
//
// The window starts at windowInitial and stays between its floor and its
// cap (--push-in-flight). With floor == cap it is fixed at the cap: the
// push before the adaptive window, kept for comparison. When the upstream
// comes back after an outage the window grows again in slow start from
// where the failures left it, with no memory of the latencies and refusals
// before.
const (
	windowInitial   = 8                    // the old fixed window: where a push starts
	windowTolerance = 1.5                  // a median latency above this times the minimum is a queue upstream
	windowRelief    = 0.9                  // after a latency cut, a median above this times the one that caused it: not our queue
	windowJitter    = 2 * time.Millisecond // latency growth below this is the machine's scheduling, not a queue
	windowHoldMax   = 32                   // rounds between probes above a refused limit, at most
	probeRounds     = 3                    // clean full rounds that show a probe above a refused limit succeeded
	rttMinWindow    = 30 * time.Second     // the minimum latency is relearned over this
)

// signal is what one push's outcome says about the upstream's load.
type signal int

const (
	sigNone    signal = iota // says nothing (parked, abandoned at shutdown)
	sigOK                    // a 2xx, with its latency
	sigRefused               // 429 or 503: over the upstream's limit
	sigFailed                // no answer, a timeout, 408, 425, another 5xx
)

// sample is one push as the limiter sees it.
type sample struct {
	sig        signal
	sentAt     time.Time
	rtt        time.Duration // sigOK: from having a connection to the end of the answer
	inFlight   int           // pushes in flight when it was sent, itself included
	window     int           // the window when it was sent
	retryAfter time.Duration // sigRefused: the upstream's Retry-After, 0 for none
}

// limiter is the push window. It is owned by the pusher's dispatch loop
// and not safe for concurrent use.
type limiter struct {
	floor, cap int
	limit      int
	slowStart  bool
	lastCut    time.Time // the last halving: answers to earlier requests do not halve again
	pauseUntil time.Time // Retry-After: nothing is sent before this

	// The current round.
	roundStart time.Time
	rtts       []time.Duration // latencies of the round's 2xx answers
	full       bool            // an answer came to a request sent with the present window full
	refused    bool
	failed     bool

	slow int // rounds in a row with the median latency too high
	// After a latency cut: rounds until it is judged, the window before
	// and the median that caused it.
	verify  int
	cutFrom int
	cutMed  time.Duration
	wmax    int // the window before the last failure or latency cut: grown back to quickly

	// Probing above a refused limit.
	hold    int // rounds left before the next probe
	holdLen int // the last hold; the next refused round doubles it
	probing int // clean full rounds at a window grown after a hold; 0: not probing

	// The lowest latency of the last rttMinWindow, in two halves.
	minCur, minPrev time.Duration
	minSince        time.Time
}

func newLimiter(floor, cap int, now time.Time) *limiter {
	l := &limiter{floor: max(floor, 1), cap: max(cap, 1)}
	l.floor = min(l.floor, l.cap)
	l.limit = min(max(windowInitial, l.floor), l.cap)
	if l.fixed() {
		l.limit = l.cap
	}
	l.recover(now)
	return l
}

// fixed reports whether the window never moves.
func (l *limiter) fixed() bool { return l.floor == l.cap }

// recover starts growing again in slow start, forgetting latencies and
// refusals: the upstream is back after an outage and may not be what it
// was. The window keeps its size; a pause the upstream asked for stays.
func (l *limiter) recover(now time.Time) {
	l.slowStart = true
	l.slow, l.wmax, l.verify = 0, 0, 0
	l.hold, l.holdLen, l.probing = 0, 0, 0
	l.minCur, l.minPrev, l.minSince = 0, 0, now
	l.newRound(now)
}

// window is how many pushes may be in flight at now: 0 while the upstream
// asked to wait.
func (l *limiter) window(now time.Time) int {
	if now.Before(l.pauseUntil) {
		return 0
	}
	return l.limit
}

// observe takes one push's outcome at now.
func (l *limiter) observe(s sample, now time.Time) {
	if s.sig == sigRefused && s.retryAfter > 0 {
		l.pauseUntil = later(l.pauseUntil, now.Add(min(s.retryAfter, retryAfterMax)))
	}
	if l.fixed() || s.sig == sigNone {
		return
	}
	// Only requests sent at the present window say whether it can grow:
	// answers to ones sent before a change describe the old window.
	if s.window >= l.limit && s.inFlight >= s.window {
		l.full = true
	}
	switch s.sig {
	case sigOK:
		l.rtts = append(l.rtts, s.rtt)
		l.noteRTT(s.rtt, now)
	case sigRefused:
		l.refused = true
		l.slowStart = false
		l.limit = max(l.limit-1, l.floor)
		l.wmax = 0 // the upstream said where its limit is
	case sigFailed:
		l.failed = true
		l.slowStart = false
		if !s.sentAt.Before(l.lastCut) {
			l.wmax = max(l.wmax, l.limit)
			l.limit = max(l.limit/2, l.floor)
			l.lastCut = now
		}
	}
	if !s.sentAt.Before(l.roundStart) {
		l.endRound(now)
	}
}

// endRound judges the round that ends at now and starts the next.
func (l *limiter) endRound(now time.Time) {
	defer l.newRound(now)
	switch {
	case l.refused:
		l.holdLen = min(max(2*l.holdLen, 1), windowHoldMax)
		l.hold, l.probing, l.verify = l.holdLen, 0, 0
		return
	case l.failed || len(l.rtts) == 0:
		l.verify = 0
		return
	}
	med := median(l.rtts)
	if l.verify > 0 {
		if l.verify--; l.verify > 0 {
			return
		}
		if med >= time.Duration(windowRelief*float64(l.cutMed)) {
			// Latency did not come down with the window: not our queue.
			l.limit = max(l.limit, l.cutFrom)
			l.minCur, l.minPrev = med, 0
		}
		return
	}
	if base := l.rttMin(); base > 0 {
		ok := time.Duration(windowTolerance*float64(base)) + windowJitter
		if med > ok {
			if l.slow++; l.slow >= 2 {
				shrink := max(float64(ok)/float64(med), 0.5)
				l.cutFrom, l.cutMed, l.verify = l.limit, med, 2
				l.wmax = max(l.wmax, l.limit)
				l.limit = max(int(float64(l.limit)*shrink), l.floor)
				l.slowStart = false
				l.slow = 0
			}
			return // no growth while latency is high
		}
	}
	l.slow = 0
	if !l.full {
		return // a window not used says nothing about a larger one
	}
	if l.probing > 0 {
		// Our count of requests at the upstream runs ahead of its own (it
		// frees a slot before its answer reaches us), so one clean round
		// above a refused limit may be luck; probeRounds are not.
		if l.probing++; l.probing <= probeRounds {
			return
		}
		// The upstream takes more than it once refused: grow freely again.
		l.holdLen, l.probing = 0, 0
	}
	switch {
	case l.slowStart:
		l.limit = min(2*l.limit, l.cap)
	case l.hold > 0:
		l.hold--
	default:
		if l.limit < l.cap {
			step := 1
			if l.wmax > l.limit {
				step = max(1, (l.wmax-l.limit)/2)
			}
			l.limit = min(l.limit+step, l.cap)
			if l.holdLen > 0 {
				l.probing = 1
			}
		}
	}
}

func (l *limiter) newRound(now time.Time) {
	l.roundStart = now
	l.rtts = l.rtts[:0]
	l.full, l.refused, l.failed = false, false, false
}

// noteRTT keeps the lowest latency of the last rttMinWindow.
func (l *limiter) noteRTT(d time.Duration, now time.Time) {
	if now.Sub(l.minSince) >= rttMinWindow/2 {
		l.minPrev, l.minCur, l.minSince = l.minCur, 0, now
	}
	if d > 0 && (l.minCur == 0 || d < l.minCur) {
		l.minCur = d
	}
}

func (l *limiter) rttMin() time.Duration {
	switch {
	case l.minPrev == 0:
		return l.minCur
	case l.minCur == 0:
		return l.minPrev
	}
	return min(l.minCur, l.minPrev)
}

// median sorts ds in place.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
