package sync

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
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
	up := 0
	if st.Upstream == "online" {
		up = 1
	}
	gauge(w, "shopbridge_upstream_up", "Whether the upstream is believed reachable (1) or offline (0).", up)
	gauge(w, "shopbridge_upstream_state_since_seconds", "Unix time of the last online/offline change.", unix(st.UpstreamSince))
	counter(w, "shopbridge_upstream_state_changes_total", "Online/offline changes since start.", s.m.stateChanges.Load())
	gauge(w, "shopbridge_upstream_last_pull_seconds", "Unix time of the last successful list pull (0: none).", unix(st.LastPullAt))
	gauge(w, "shopbridge_upstream_last_push_seconds", "Unix time of the last delivered receipt (0: none).", unix(st.LastPushAt))

	fmt.Fprintln(w, "# HELP shopbridge_upstream_pulls_total Pull rounds by result.")
	fmt.Fprintln(w, "# TYPE shopbridge_upstream_pulls_total counter")
	fmt.Fprintf(w, "shopbridge_upstream_pulls_total{result=\"ok\"} %d\n", s.m.pulls.ok.Load())
	fmt.Fprintf(w, "shopbridge_upstream_pulls_total{result=\"error\"} %d\n", s.m.pulls.err.Load())
	counter(w, "shopbridge_upstream_bills_fetched_total", "Bills fetched with bill/byid and stored.", s.m.billsFetched.Load())

	fmt.Fprintln(w, "# HELP shopbridge_upstream_pushes_total Receipt pushes by result.")
	fmt.Fprintln(w, "# TYPE shopbridge_upstream_pushes_total counter")
	fmt.Fprintf(w, "shopbridge_upstream_pushes_total{result=\"delivered\"} %d\n", s.m.pushes.delivered.Load())
	fmt.Fprintf(w, "shopbridge_upstream_pushes_total{result=\"retry\"} %d\n", s.m.pushes.retry.Load())
	fmt.Fprintf(w, "shopbridge_upstream_pushes_total{result=\"parked\"} %d\n", s.m.pushes.parked.Load())
	gauge(w, "shopbridge_upstream_pushes_in_flight", "Receipts sent and not yet recorded as delivered.", st.InFlight)

	fmt.Fprintln(w, "# HELP shopbridge_upstream_read_through_total Store misses read through to the upstream, by result.")
	fmt.Fprintln(w, "# TYPE shopbridge_upstream_read_through_total counter")
	fmt.Fprintf(w, "shopbridge_upstream_read_through_total{result=\"hit\"} %d\n", s.m.readThrough.hit.Load())
	fmt.Fprintf(w, "shopbridge_upstream_read_through_total{result=\"miss\"} %d\n", s.m.readThrough.miss.Load())
	fmt.Fprintf(w, "shopbridge_upstream_read_through_total{result=\"error\"} %d\n", s.m.readThrough.err.Load())
	fmt.Fprintf(w, "shopbridge_upstream_read_through_total{result=\"offline\"} %d\n", s.m.readThrough.offline.Load())

	if s.st != nil {
		age := 0.0
		if t := s.st.OldestQueued(); !t.IsZero() {
			age = time.Since(t).Seconds()
		}
		gauge(w, "shopbridge_outbox_oldest_age_seconds", "Age of the oldest receipt waiting (0: none).", age)
	}
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func gauge(w io.Writer, name, help string, v any) { metric(w, name, help, "gauge", v) }

func counter(w io.Writer, name, help string, v any) { metric(w, name, help, "counter", v) }

func metric(w io.Writer, name, help, typ string, v any) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	switch v := v.(type) {
	case float64:
		fmt.Fprintf(w, "%s %.3f\n", name, v)
	default:
		fmt.Fprintf(w, "%s %v\n", name, v)
	}
}
