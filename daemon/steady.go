package daemon

import (
	"time"

	"github.com/shopbridge/shopbridge/storage"
)

// steadyClock is the time journal retention counts on. It starts, the first
// time a store is used, at the wall clock; from then on it advances only by
// the monotonic time the daemon has run (saved in the store, so a restart
// goes on from where it stopped). A wall clock set back or forward, while
// running or between runs, does not move it, so a clock correction never
// ages the journal: retention deletes at most what it would on a right
// clock. The time the daemon was not running is not counted (no clock can
// be trusted for it), so entries may be kept longer than journal-max-age;
// journal-max-size still bounds the journal.
//
// Its fields do not change after newSteadyClock, so Now needs no lock.
type steadyClock struct {
	base  time.Time     // steady time at start
	start time.Duration // mono() at start
	mono  func() time.Duration
}

// newSteadyClock continues the store's steady clock; wall is used only the
// first time. mono is a monotonic clock (tests inject one).
func newSteadyClock(st *storage.Store, wall func() time.Time, mono func() time.Duration) *steadyClock {
	base, ok := st.SteadyClock()
	if !ok {
		base = wall()
		_ = st.SetSteadyClock(base)
	}
	return &steadyClock{base: base, start: mono(), mono: mono}
}

// Now is the steady time.
func (c *steadyClock) Now() time.Time {
	return c.base.Add(c.mono() - c.start)
}

// save writes the steady time to the store.
func (c *steadyClock) save(st *storage.Store) error { return st.SetSteadyClock(c.Now()) }

// monoSince is the process's monotonic clock.
func monoSince() func() time.Duration {
	t0 := time.Now()
	return func() time.Duration { return time.Since(t0) }
}
