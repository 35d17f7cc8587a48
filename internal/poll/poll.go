// Package poll is the one polling helper of the module's tests: a test
// waits for a condition, never for a guessed sleep. internal/ because only
// the module's own tests use it (it imports testing, which must not reach
// the release binary).
package poll

import (
	"testing"
	"time"
)

// Generous is the limit Eventually takes where a test names none. A limit only
// ends a test that has already failed, and -race on a busy two-core
// machine is many times slower than a quiet one, so it is long.
const Generous = 90 * time.Second

// Until polls cond until it holds, and fails tb, saying what it waited for,
// once limit has passed without it. The limit is a bound for a loaded
// machine, never a timing under test. cond runs on the test's goroutine,
// so it may call tb.Fatal itself.
//
// The first polls come quickly (a condition that is nearly true costs
// little), later ones at most every 50 ms, so that a long wait does not
// load the machine or hammer the process it asks.
func Until(tb testing.TB, what string, limit time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// Eventually is Until with the Generous limit.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	Until(tb, what, Generous, cond)
}
