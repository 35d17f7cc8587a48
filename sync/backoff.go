package sync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	gosync "sync"
	"time"
)

// The upstream-wide backoff: one wait that every call to the upstream
// (hello and probes, both lists, bill fetches, read-through, pushes)
// consults before it is sent and reports its answer to. The push window
// (limit.go) and each receipt's own backoff say how many and which
// receipts go; this says when anything at all may go, so an upstream that
// answers every call at once with an error is not asked hundreds of times
// a second by a backlog, and a Retry-After holds for the pull as much as
// for the push.
//
//   - Failures (a 5xx, 408, 425, a 429 or 503 without Retry-After, no
//     answer within the timeout) grow a shared delay, counted in waves:
//     a failure grows it only when its call was sent after the last
//     growth, so the 64 answers of one window of pushes count once. The
//     first wave is free (one bad moment pauses nobody); from the second
//     the delay is 1 s, doubling each wave up to 60 s, ±20 % jitter.
//   - Any other answer (2xx, 404, another 4xx) shows the upstream serving
//     and ends the delay at once; whoever waits on it goes.
//   - Retry-After (seconds or an HTTP date) on a 429 or 503 sets a
//     not-before for everyone, at most retryAfterMax ahead. It is the
//     upstream's own word: a success does not end it early.
//   - No answer at all (connection refused, reset, DNS) is left to the
//     online/offline state (sync.go), which pauses the push and probes
//     with its own backoff; it does not grow this delay.
//
// 429 and 503 are "busy", not "down": they never count towards offline.
const (
	upstreamBackoffBase = time.Second      // the delay after the second failing wave
	upstreamBackoffMax  = 60 * time.Second // the longest delay failures make
)

// verdict is what one answer says about the upstream as a whole.
type verdict int

const (
	vNone   verdict = iota // says nothing: the caller gave up, no connection (offline's business), a 2xx whose body did not come whole
	vOK                    // the upstream serves: ends the delay
	vBusy                  // 429 or 503 with Retry-After: nobody before it has passed
	vFailed                // 5xx, 408, 425, 429/503 without Retry-After, a timeout: the delay grows
)

// classify judges one exchange of client.do for the backoff; retryAfter
// is the upstream's Retry-After for vBusy.
func classify(resp *response, err error, now time.Time) (v verdict, retryAfter time.Duration) {
	if resp == nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return vFailed, 0
		}
		return vNone, 0
	}
	switch {
	case resp.status >= 200 && resp.status <= 299:
		if err != nil {
			return vNone, 0
		}
		return vOK, 0
	case busyStatus(resp.status):
		if ra := parseRetryAfter(resp.header.Get("Retry-After"), now); ra > 0 {
			return vBusy, ra
		}
		return vFailed, 0
	case retryable(resp.status):
		return vFailed, 0
	}
	return vOK, 0
}

// busyStatus reports whether an HTTP status says the upstream is there
// and busy (429, 503): an answer, never a step towards offline.
func busyStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// upstreamBackoff is the shared wait. It is safe for concurrent use.
type upstreamBackoff struct {
	base, max time.Duration

	mu         gosync.Mutex
	waves      int       // failing waves in a row
	grown      time.Time // the last growth: answers to calls sent until then do not grow the delay again
	delayUntil time.Time // the failures' delay ends
	notBefore  time.Time // Retry-After ends
	reason     string    // the answer behind the wait now in force
	ended      chan struct{}
}

func newUpstreamBackoff(base, max time.Duration) *upstreamBackoff {
	return &upstreamBackoff{base: base, max: max, ended: make(chan struct{})}
}

// delay is the wait after the n-th failing wave in a row (1-based): none
// after the first, then base doubling to max, with ±20 % jitter that
// never goes above max.
func (b *upstreamBackoff) delay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(backoff(n-1, b.base, b.max), b.max)
}

// minDelay is the shortest delay the n-th failing wave can set (the
// jitter at its lowest): what a test of the schedule counts with.
func (b *upstreamBackoff) minDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := b.base
	for i := 2; i < n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max) * 4 / 5
}

// until is when calls may go again; zero when they may go now.
func (b *upstreamBackoff) until(now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.untilLocked(now)
}

func (b *upstreamBackoff) untilLocked(now time.Time) time.Time {
	t := later(b.delayUntil, b.notBefore)
	if !t.After(now) {
		return time.Time{}
	}
	return t
}

// state is the wait in force at now, for status and metrics: when it
// ends (zero: none), why, and the failing waves in a row.
func (b *upstreamBackoff) state(now time.Time) (until time.Time, reason string, waves int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until = b.untilLocked(now); !until.IsZero() {
		reason = b.reason
	}
	return until, reason, b.waves
}

// observe takes the verdict on a call sent at sent and answered at now;
// reason describes the answer. It reports whether a wait began (none was
// in force before), for the log.
func (b *upstreamBackoff) observe(v verdict, retryAfter time.Duration, sent, now time.Time, reason string) (began bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	was := !b.untilLocked(now).IsZero()
	switch v {
	case vOK:
		if b.waves == 0 && b.delayUntil.IsZero() {
			return false
		}
		b.waves, b.delayUntil = 0, time.Time{}
		close(b.ended) // whoever waits on the delay goes (a Retry-After still holds)
		b.ended = make(chan struct{})
		return false
	case vBusy:
		nb := now.Add(min(retryAfter, retryAfterMax))
		if !nb.After(b.notBefore) {
			return false
		}
		b.notBefore = nb
		if !nb.Before(b.delayUntil) {
			b.reason = reason
		}
	case vFailed:
		if !sent.After(b.grown) {
			return false // one wave, counted once
		}
		b.waves++
		b.grown = now
		d := b.delay(b.waves)
		if d == 0 {
			return false
		}
		b.delayUntil = now.Add(d)
		if !b.delayUntil.Before(b.notBefore) {
			b.reason = reason
		}
	default:
		return false
	}
	return !was && !b.untilLocked(now).IsZero()
}

// changed returns a channel closed when the failures' delay ends early (a
// success): a waiter then looks at until again.
func (b *upstreamBackoff) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ended
}

// busyError is a call not sent because the upstream asked to wait (or
// kept failing) beyond the caller's deadline.
type busyError struct {
	until  time.Time
	reason string
}

func (e *busyError) Error() string {
	return fmt.Sprintf("the upstream is busy until %s (%s): not asked", e.until.Format(time.RFC3339), e.reason)
}

// wait returns once calls may go, with the moment it found the way clear
// (the call's sending time for observe: a growth after it is a later
// wave's); or at once with a *busyError when the wait outlasts ctx's
// deadline, or with ctx's error when ctx ends.
func (b *upstreamBackoff) wait(ctx context.Context) (time.Time, error) {
	for {
		now := time.Now()
		b.mu.Lock()
		t, reason, ended := b.untilLocked(now), b.reason, b.ended
		b.mu.Unlock()
		if t.IsZero() {
			return now, nil
		}
		if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
			return now, &busyError{until: t, reason: reason}
		}
		timer := time.NewTimer(time.Until(t))
		select {
		case <-ctx.Done():
			timer.Stop()
			return now, ctx.Err()
		case <-timer.C:
		case <-ended:
			timer.Stop()
		}
	}
}
