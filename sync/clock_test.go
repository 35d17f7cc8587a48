package sync

import (
	"bytes"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/internal/storetest"
)

const year = 365 * 24 * time.Hour

// TestClockMeter feeds the meter answers whose Date and round trip the
// test sets (an injected clock): the sample is Date minus the middle of the
// round trip, noise below 2 s is 0, one odd answer does not move the
// median, and the verdict changes with hysteresis, logged once each way.
func TestClockMeter(t *testing.T) {
	// date is the Date header an upstream writes at wall time at, its
	// clock being skew ahead of ours.
	date := func(at time.Time, skew time.Duration) string { return at.Add(skew).UTC().Format(http.TimeFormat) }
	type answer struct {
		skew time.Duration // the upstream's clock minus ours
		rtt  time.Duration
	}
	for _, tc := range []struct {
		name    string
		answers []answer
		want    time.Duration // the skew shown, ±1 s (Date's resolution)
		ok      bool
		warns   int
		infos   int
	}{
		{"in step", []answer{{0, 10 * time.Millisecond}}, 0, true, 0, 0},
		{"noise", []answer{{time.Second, time.Millisecond}, {-time.Second, time.Millisecond}, {time.Second, time.Millisecond}}, 0, true, 0, 0},
		{"slow round trip", []answer{{0, 6 * time.Second}, {0, 6 * time.Second}}, 0, true, 0, 0},
		{"a year behind", []answer{{year, 50 * time.Millisecond}}, year, false, 1, 0},
		{"a year ahead", []answer{{-year, 50 * time.Millisecond}}, -year, false, 1, 0},
		{"ten minutes ahead, logged once", []answer{{-10 * time.Minute, 0}, {-10 * time.Minute, 0}, {-10 * time.Minute, 0}}, -10 * time.Minute, false, 1, 0},
		{"one odd answer", []answer{{0, 0}, {0, 0}, {year, 0}, {0, 0}, {0, 0}}, 0, true, 0, 0},
		{"corrected", []answer{{year, 0}, {0, 0}, {0, 0}, {0, 0}}, 0, true, 1, 1},
		{"within the hysteresis", []answer{{3 * time.Minute, 0}, {3 * time.Minute, 0}, {3 * time.Minute, 0},
			{100 * time.Second, 0}, {100 * time.Second, 0}, {100 * time.Second, 0}}, 100 * time.Second, false, 1, 0},
		{"back below the hysteresis", []answer{{3 * time.Minute, 0}, {80 * time.Second, 0}, {80 * time.Second, 0}}, 80 * time.Second, true, 1, 1},
		{"forward, right, back", []answer{{year, 0}, {0, 0}, {0, 0}, {-year, 0}, {-year, 0}, {-year, 0}}, -year, false, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			m := newClockMeter(slog.New(slog.NewTextHandler(&logs, nil)))
			if m.status() != nil {
				t.Fatal("a status before any answer")
			}
			for _, a := range tc.answers {
				sent := time.Now()
				got := sent.Add(a.rtt)
				m.observe(date(sent.Add(a.rtt/2), a.skew), sent, got)
			}
			st := m.status()
			if st == nil {
				t.Fatal("no status after answers")
			}
			if d := st.Skew() - tc.want; d.Abs() > time.Second || st.OK != tc.ok || st.MaxSeconds != 120 || st.MeasuredAt.IsZero() {
				t.Errorf("status %+v, want skew %v ok %v", st, tc.want, tc.ok)
			}
			if n := strings.Count(logs.String(), "level=WARN msg=\"this PC's clock is wrong"); n != tc.warns {
				t.Errorf("%d warn lines, want %d:\n%s", n, tc.warns, &logs)
			}
			if n := strings.Count(logs.String(), "level=INFO msg=\"this PC's clock is right again"); n != tc.infos {
				t.Errorf("%d lines 'right again', want %d:\n%s", n, tc.infos, &logs)
			}
		})
	}
}

// TestClockMeterIgnoresBadDates: an upstream's Date is not trusted blindly:
// missing or malformed, it is no sample.
func TestClockMeterIgnoresBadDates(t *testing.T) {
	m := newClockMeter(quietLogger())
	now := time.Now()
	for _, d := range []string{"", "yesterday", "Mon, 99 Feb 2026 25:00:00 GMT", "1774000000"} {
		m.observe(d, now, now)
	}
	if st := m.status(); st != nil {
		t.Fatalf("status %+v from malformed dates", st)
	}
	var nilMeter *clockMeter
	nilMeter.observe(now.UTC().Format(http.TimeFormat), now, now) // must not panic
}

// TestClockSkewFromUpstream: the syncer measures the skew from the Date
// headers of real answers (the simulator with its clock moved): a year
// forward, right again, a year back. Each change shows in the status and
// the metric, and the log has one line each way, not one a poll.
func TestClockSkewFromUpstream(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	logs := &logBuffer{}
	cfg := testConfig(sim, &journaltest.Journal{})
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	unopened := New(cfg, st)
	if c := unopened.Status().Clock; c != nil {
		t.Fatalf("clock %+v before any answer", c)
	}
	var metrics bytes.Buffer
	if unopened.WriteMetrics(&metrics); strings.Contains(metrics.String(), "shopbridge_clock_skew_seconds") {
		t.Errorf("a skew metric before any answer:\n%s", &metrics)
	}
	s := MustOpenSyncer(t, cfg, st)

	// polls waits until the syncer has pulled a few more times, so a line
	// logged at every answer would show.
	polls := func() {
		t.Helper()
		n := sim.Counters()[crmsim.KindList]
		poll.Eventually(t, "three more pulls", func() bool { return sim.Counters()[crmsim.KindList] >= n+6 })
	}
	clockIs := func(what string, skew time.Duration, ok bool) *shopbridge.ClockStatus {
		t.Helper()
		var c *shopbridge.ClockStatus
		poll.Eventually(t, what, func() bool {
			c = s.Status().Clock
			return c != nil && c.OK == ok && (c.Skew()-skew).Abs() <= 2*time.Second
		})
		return c
	}
	wrong := func() []string { return logs.lines("level=WARN", "this PC's clock is wrong") }
	right := func() []string { return logs.lines("level=INFO", "this PC's clock is right again") }

	clockIs("the clock in step with the upstream", 0, true)
	if len(wrong())+len(right()) != 0 {
		t.Fatalf("clock lines while it is right:\n%s", logs)
	}

	// The upstream a year ahead: this PC is a year behind (a dead CMOS battery).
	sim.SetClockOffset(year)
	clockIs("a year behind", year, false)
	polls()
	if w := wrong(); len(w) != 1 || !strings.Contains(w[0], "365 days behind the upstream") || !strings.Contains(w[0], "skew_seconds=3153") {
		t.Errorf("lines for a year behind: %q, want one\n%s", w, logs)
	}
	metrics.Reset()
	s.WriteMetrics(&metrics)
	if v, ok := metricValue(metrics.String(), "shopbridge_clock_skew_seconds"); !ok || v < year.Seconds()-2 || v > year.Seconds()+2 {
		t.Errorf("shopbridge_clock_skew_seconds %v (found %v), want about %v:\n%s", v, ok, year.Seconds(), &metrics)
	}

	// Corrected: in step again, one line.
	sim.SetClockOffset(0)
	clockIs("right again", 0, true)
	polls()
	if r := right(); len(r) != 1 || !strings.Contains(r[0], `was="365 days behind the upstream"`) {
		t.Errorf("lines for right again: %q, want one\n%s", r, logs)
	}

	// The upstream a year behind: this PC is a year ahead.
	sim.SetClockOffset(-year)
	clockIs("a year ahead", -year, false)
	polls()
	if w := wrong(); len(w) != 2 || !strings.Contains(w[1], "365 days ahead of the upstream") {
		t.Errorf("lines after a year ahead: %q, want a second\n%s", w, logs)
	}
	if r := right(); len(r) != 1 {
		t.Errorf("%d lines 'right again', want still 1", len(r))
	}
}

// metricValue is the value of an unlabelled sample in Prometheus text.
func metricValue(text, name string) (float64, bool) {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
