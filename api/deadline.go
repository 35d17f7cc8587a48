package api

import (
	"sync"
	"time"
)

// deadline is one direction's deadline on a register's connection, with
// fewer timer changes than net/http asks for. Per request, net/http sets
// the read deadline three times (idle, header, whole request) and the
// write deadline twice (WriteTimeout, then none), and each change of a
// connection's timer took the runtime's timer lock: together as much as
// our handler and the journal entry cost a bill/byid.
//
// A far deadline is armed with some slack (see slack), and a later
// request for one that the armed deadline meets within that slack leaves
// it. A deadline near or past is armed exactly and at once: net/http
// stops a pending read so (abortPendingRead), and an exact stop must stop.
// A lazy deadline (writes) is kept until apply, when the next write starts:
// nothing is written between net/http's clearing the write deadline after
// an answer and setting it for the next, so that timer need not move.
type deadline struct {
	mu    sync.Mutex
	want  time.Time     // what was asked, for apply
	armed time.Time     // what the connection has; zero: none
	late  time.Duration // how much later than asked armed may be
}

// slack is how much later than asked a deadline d from now may fire: a
// sixteenth of d, at most a second, none under 100 ms.
func slack(d time.Duration) time.Duration {
	if d < 100*time.Millisecond {
		return 0
	}
	return min(d/16, time.Second)
}

// set asks for t. now: arm it before returning, else at apply; near or
// past deadlines are armed at once either way.
func (dl *deadline) set(t time.Time, now bool, arm func(time.Time) error) error {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	dl.want = t
	if now || (!t.IsZero() && time.Until(t) < 100*time.Millisecond) {
		return dl.applyLocked(arm)
	}
	return nil
}

// apply arms what was asked last, if the armed deadline does not meet it.
func (dl *deadline) apply(arm func(time.Time) error) error {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return dl.applyLocked(arm)
}

func (dl *deadline) applyLocked(arm func(time.Time) error) error {
	t := dl.want
	if t.IsZero() {
		if dl.armed.IsZero() {
			return nil
		}
		dl.armed, dl.late = time.Time{}, 0
		return arm(t)
	}
	if !dl.armed.IsZero() && !dl.armed.Before(t) && dl.armed.Sub(t) <= dl.late {
		return nil
	}
	dl.late = slack(time.Until(t))
	dl.armed = t.Add(dl.late)
	return arm(dl.armed)
}

// exact records t as armed, for SetDeadline, which arms it itself.
func (dl *deadline) exact(t time.Time) {
	dl.mu.Lock()
	dl.want, dl.armed, dl.late = t, t, 0
	dl.mu.Unlock()
}
