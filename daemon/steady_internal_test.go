package daemon

import (
	"log/slog"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/internal/storetest"
	"github.com/shopbridge/shopbridge/storage"
)

// fakeClocks is a wall clock and a monotonic clock the test sets.
type fakeClocks struct {
	wall time.Time
	mono time.Duration
}

var storageAll = storage.JournalQuery{}

func (c *fakeClocks) step(wall, mono time.Duration) { c.wall, c.mono = c.wall.Add(wall), c.mono+mono }

// TestRetentionIgnoresClockJumps: entries written before and after the wall
// clock jumps a year back and then forward (a correction) are kept as long
// as a right clock would keep them, and go once the daemon has really run
// longer than journal-max-age.
func TestRetentionIgnoresClockJumps(t *testing.T) {
	st := storetest.MustOpen(t)
	clk := &fakeClocks{wall: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	mono := func() time.Duration { return clk.mono }
	j := newJournalWriter(st, slog.Default(), time.Hour, 0)
	j.steady = newSteadyClock(st, func() time.Time { return clk.wall }, mono)
	rec := func(kind string) {
		j.Record(shopbridge.JournalEntry{Time: clk.wall, Kind: kind})
		j.write(j.take(nil))
	}
	count := func() int {
		es, err := st.Journal(storageAll)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	rec("BEFORE")
	clk.step(-365*24*time.Hour, time.Minute) // set back a year
	rec("BACK")
	clk.step(10*time.Minute, 10*time.Minute)
	rec("BACK")
	clk.step(365*24*time.Hour, time.Minute) // corrected: a year ahead
	j.prune()
	if n := count(); n != 3 {
		t.Fatalf("after the clock went back and forward a year, %d entries kept, want 3", n)
	}
	clk.step(20*365*24*time.Hour, time.Minute) // a jump ahead of 20 years
	rec("AHEAD")
	j.prune()
	if n := count(); n != 4 {
		t.Fatalf("after a jump ahead, %d entries kept, want 4", n)
	}
	// A restart goes on from the saved steady time, whatever the wall says.
	if err := j.steady.save(st); err != nil {
		t.Fatal(err)
	}
	clk.wall, clk.mono = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), 0
	j.steady = newSteadyClock(st, func() time.Time { return clk.wall }, mono)
	j.prune()
	if n := count(); n != 4 {
		t.Fatalf("after a restart with the clock 25 years back, %d entries kept, want 4", n)
	}
	// Real running time does age them: 13 minutes run so far; 59 more put
	// the first three past the hour, the newest (run minute 13) not.
	clk.step(0, 59*time.Minute)
	j.prune()
	es, _ := st.Journal(storageAll)
	if len(es) != 1 || es[0].Kind != "AHEAD" {
		t.Fatalf("after 72 minutes of run time, kept %+v, want only the AHEAD entry", es)
	}
}
