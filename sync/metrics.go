package sync

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/shopbridge/shopbridge"
)

// metrics are the syncer's counters since start.
type metrics struct {
	stateChanges atomic.Int64
	billsFetched atomic.Int64
	pulls        struct{ ok, err atomic.Int64 }
	pushes       struct{ delivered, retry, parked atomic.Int64 }
	readThrough  struct{ hit, miss, err, offline atomic.Int64 }
}

// WriteMetrics writes the syncer's Prometheus text-format lines.
func (s *Syncer) WriteMetrics(w io.Writer) {
	st := s.Status()
	up := 0.0
	if st.Upstream == shopbridge.UpstreamOnline {
		up = 1
	}
	gauge := func(name, help string, v float64) {
		shopbridge.Metric{Name: name, Type: "gauge", Help: help}.Write(w, v)
	}
	counter := func(name, help string, v int64) {
		shopbridge.Metric{Name: name, Type: "counter", Help: help}.Write(w, float64(v))
	}
	byResult := func(name, help string, results ...result) {
		m := shopbridge.Metric{Name: name, Type: "counter", Help: help}
		m.Header(w)
		for _, r := range results {
			m.Sample(w, "", float64(r.n.Load()), "result", r.name)
		}
	}
	gauge("shopbridge_upstream_up", "Whether the upstream is believed reachable (1) or offline (0).", up)
	gauge("shopbridge_upstream_state_since_seconds", "Unix time of the last online/offline change.", unix(st.UpstreamSince))
	counter("shopbridge_upstream_state_changes_total", "Online/offline changes since start.", s.m.stateChanges.Load())
	gauge("shopbridge_upstream_last_pull_seconds", "Unix time of the last successful list pull (0: none).", unix(st.LastPullAt))
	gauge("shopbridge_upstream_last_push_seconds", "Unix time of the last delivered receipt (0: none).", unix(st.LastPushAt))
	byResult("shopbridge_upstream_pulls_total", "Pull rounds by result.", result{"ok", &s.m.pulls.ok}, result{"error", &s.m.pulls.err})
	counter("shopbridge_upstream_bills_fetched_total", "Bills fetched with bill/byid and stored.", s.m.billsFetched.Load())
	byResult("shopbridge_upstream_pushes_total", "Receipt pushes by result.",
		result{"delivered", &s.m.pushes.delivered}, result{"retry", &s.m.pushes.retry}, result{"parked", &s.m.pushes.parked})
	gauge("shopbridge_upstream_pushes_in_flight", "Receipts sent and not yet recorded as delivered.", float64(st.InFlight))
	gauge("shopbridge_upstream_push_window", "Receipts that may be in flight now: the adaptive window (0 while the upstream asked to wait).", float64(st.PushWindow))
	gauge("shopbridge_upstream_push_window_max", "The cap of the push window (--push-in-flight).", float64(s.cfg.InFlight))
	wait := 0.0
	if !st.BusyUntil.IsZero() {
		wait = max(time.Until(st.BusyUntil).Seconds(), 0)
	}
	gauge("shopbridge_upstream_backoff_seconds", "Seconds until calls to the upstream may go again: its Retry-After or the delay its failures made (0: they go now).", wait)
	gauge("shopbridge_upstream_backoff_waves", "Waves of calls in a row the upstream failed (5xx, timeouts); 0 once it answers.", float64(st.BackoffWaves))
	byResult("shopbridge_upstream_read_through_total", "Store misses read through to the upstream, by result.",
		result{"hit", &s.m.readThrough.hit}, result{"miss", &s.m.readThrough.miss},
		result{"error", &s.m.readThrough.err}, result{"offline", &s.m.readThrough.offline})
	if st.Clock != nil {
		// Absent before the first answer: 0 would say the clock is right.
		gauge("shopbridge_clock_skew_seconds", "The upstream's clock minus this PC's, from its Date headers (positive: this PC is behind; 0 within 2 s).", st.Clock.SkewSeconds)
	}
	if s.st != nil {
		age := 0.0
		if t := s.st.OldestQueued(); !t.IsZero() {
			age = time.Since(t).Seconds()
		}
		gauge("shopbridge_outbox_oldest_age_seconds", "Age of the oldest receipt waiting (0: none).", age)
	}
}

// result is one sample of a counter labelled by result.
type result struct {
	name string
	n    *atomic.Int64
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
