package api

import (
	"testing"
	"time"
)

// arms records what a deadline arms on the connection.
type arms []time.Time

func (a *arms) arm(t time.Time) error { *a = append(*a, t); return nil }

// TestDeadlineCoalesces: far deadlines asked again and again, as net/http
// asks per request, arm the connection once; the armed one fires no earlier
// than any asked and at most its slack later. Past, near and zero deadlines
// are armed exactly.
func TestDeadlineCoalesces(t *testing.T) {
	var a arms
	var dl deadline
	base := time.Now().Add(5 * time.Second)
	for i := range 100 {
		if err := dl.set(base.Add(time.Duration(i)*time.Millisecond), true, a.arm); err != nil {
			t.Fatal(err)
		}
	}
	if len(a) != 1 {
		t.Fatalf("100 deadlines within 100 ms armed %d times, want 1", len(a))
	}
	last := base.Add(99 * time.Millisecond)
	if a[0].Before(last) || a[0].Sub(base) > slack(5*time.Second) {
		t.Errorf("armed %v after the first asked, %v after the last; want no earlier than the last and within %v of the first",
			a[0].Sub(base), a[0].Sub(last), slack(5*time.Second))
	}

	// One further than the slack is armed anew.
	far := base.Add(10 * time.Second)
	dl.set(far, true, a.arm)
	if len(a) != 2 || a[1].Before(far) {
		t.Fatalf("a deadline 10 s later: arms %v", a)
	}
	// An earlier one too: the armed deadline must not fire late by more
	// than the slack.
	dl.set(base, true, a.arm)
	if len(a) != 3 || a[2].Before(base) || a[2].Sub(base) > slack(5*time.Second) {
		t.Fatalf("an earlier deadline: arms %v", a)
	}

	// net/http stops a pending read with a deadline long past: exactly,
	// and at once, though the armed deadline is later still.
	past := time.Unix(1, 0)
	dl.set(past, true, a.arm)
	if len(a) != 4 || !a[3].Equal(past) {
		t.Fatalf("a past deadline: arms %v", a)
	}
	dl.set(time.Time{}, true, a.arm)
	if len(a) != 5 || !a[4].IsZero() {
		t.Fatalf("no deadline: arms %v", a)
	}
	dl.set(time.Time{}, true, a.arm)
	if len(a) != 5 {
		t.Fatalf("no deadline twice: arms %v", a)
	}
	near := time.Now().Add(10 * time.Millisecond)
	dl.set(near, true, a.arm)
	if len(a) != 6 || !a[5].Equal(near) {
		t.Fatalf("a deadline 10 ms away: arms %v, want it exactly", a)
	}
}

// TestDeadlineLazyWrites: a write deadline is armed when the next write
// starts; net/http's clearing after an answer and setting for the next
// request leave the armed one, while a write with no deadline asked finds
// none armed.
func TestDeadlineLazyWrites(t *testing.T) {
	var a arms
	var dl deadline
	t0 := time.Now().Add(30 * time.Second)
	dl.set(t0, false, a.arm)
	if len(a) != 0 {
		t.Fatalf("set armed before a write: %v", a)
	}
	dl.apply(a.arm)
	if len(a) != 1 || a[0].Before(t0) {
		t.Fatalf("first write: arms %v", a)
	}
	for i := range 50 { // answers and requests, 10 ms apart
		dl.set(time.Time{}, false, a.arm)
		dl.set(t0.Add(time.Duration(i)*10*time.Millisecond), false, a.arm)
		dl.apply(a.arm)
	}
	if len(a) != 1 {
		t.Fatalf("50 requests within half a second armed %d times more", len(a)-1)
	}
	dl.set(time.Time{}, false, a.arm)
	if len(a) != 1 {
		t.Fatalf("clearing armed at once: %v", a)
	}
	dl.apply(a.arm)
	if len(a) != 2 || !a[1].IsZero() {
		t.Fatalf("a write with no deadline asked: arms %v, want the deadline cleared", a)
	}
	// A past write deadline is armed at once: it stops a blocked write.
	dl.set(time.Unix(1, 0), false, a.arm)
	if len(a) != 3 || !a[2].Equal(time.Unix(1, 0)) {
		t.Fatalf("a past write deadline: arms %v", a)
	}
}
