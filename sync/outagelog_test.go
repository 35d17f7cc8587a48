package sync

import (
	"bytes"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"log/slog"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/internal/storetest"
)

// logBuffer is a log the test reads while the syncer writes it.
type logBuffer struct {
	mu  gosync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines are the log lines holding every one of substrs.
func (b *logBuffer) lines(substrs ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		ok := l != ""
		for _, s := range substrs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// failedProbes counts the hello calls the journal holds with an error.
func failedProbes(j *journaltest.Journal) int {
	n := 0
	for _, e := range j.Entries() {
		if e.Kind == shopbridge.KindUpstreamHello && e.Note != "" {
			n++
		}
	}
	return n
}

// TestOutageLog: an outage is logged once when it begins and summed up
// periodically, not a line per probe; first contact says "upstream online"
// with the upstream's system instead of timing an outage that never was;
// the last error shows while the upstream fails and goes once it answers.
func TestOutageLog(t *testing.T) {
	const summaryEvery = 700 * time.Millisecond
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse}); err != nil {
		t.Fatal(err)
	}
	st := storetest.MustOpen(t)
	j := &journaltest.Journal{}
	logs := &logBuffer{}
	cfg := testConfig(sim, j)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.OutageSummaryEvery = summaryEvery
	started := time.Now()
	s := MustOpenSyncer(t, cfg, st)

	// Down from the start: one line, then summaries.
	poll.Eventually(t, "two summaries of the outage", func() bool { return len(logs.lines("upstream still offline")) >= 2 })
	probes, elapsed := failedProbes(j), time.Since(started)
	if n := len(logs.lines("upstream not reachable yet")); n != 1 {
		t.Errorf("%d lines 'upstream not reachable yet', want 1:\n%s", n, logs)
	}
	if n := len(logs.lines("upstream call failed")); n != 0 {
		t.Errorf("%d per-call lines while the upstream was never reachable, want none:\n%s", n, logs)
	}
	summaries := logs.lines("upstream still offline")
	if max := int(elapsed/summaryEvery) + 1; len(summaries) > max {
		t.Errorf("%d summaries in %v, more than one per %v:\n%s", len(summaries), elapsed, summaryEvery, logs)
	}
	if warns := len(logs.lines("level=WARN")); warns >= probes {
		t.Errorf("%d WARN lines for %d failed probes: the log is not summing up\n%s", warns, probes, logs)
	}
	for _, want := range []string{"probes_failed=", "since=", "err=", "connection refused"} {
		if !strings.Contains(summaries[len(summaries)-1], want) {
			t.Errorf("summary %q lacks %q", summaries[len(summaries)-1], want)
		}
	}
	if ss := s.Status(); ss.LastError == "" || ss.LastErrorAt.IsZero() || ss.LastErrorAt.Before(started) {
		t.Errorf("status while never reachable: %+v, want the last error with its time", ss)
	}

	// First contact.
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "online", s.Online)
	online := logs.lines(`msg="upstream online"`)
	if len(online) != 1 || !strings.Contains(online[0], `system="`+crmsim.DefaultSystem+`"`) ||
		!strings.Contains(online[0], "unreachable_for=") || strings.Contains(online[0], "offline_for") {
		t.Errorf("first contact logged as %q, want one upstream online line with system %q:\n%s", online, crmsim.DefaultSystem, logs)
	}
	if ss := s.Status(); ss.LastError != "" || !ss.LastErrorAt.IsZero() {
		t.Errorf("status once online: last error %q at %v, want none", ss.LastError, ss.LastErrorAt)
	}

	// An outage after being online: the change, then quiet.
	mark := len(strings.Split(logs.String(), "\n"))
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse}); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "offline", func() bool { return !s.Online() })
	before := failedProbes(j)
	poll.Eventually(t, "a summary of the second outage", func() bool {
		return len(logs.lines("upstream still offline")) > len(summaries) && failedProbes(j) >= before+3
	})
	tail := strings.Join(strings.Split(logs.String(), "\n")[mark-1:], "\n")
	if n := strings.Count(tail, `msg="upstream offline"`); n != 1 {
		t.Errorf("%d 'upstream offline' lines for one outage:\n%s", n, tail)
	}
	if n := strings.Count(tail, "upstream call failed"); n > offlineAfter-1 {
		t.Errorf("%d per-call lines, want at most %d (before it counts as offline):\n%s", n, offlineAfter-1, tail)
	}
	if ss := s.Status(); ss.LastError == "" || ss.LastErrorAt.IsZero() {
		t.Errorf("status while offline: %+v, want the last error with its time", ss)
	}
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "online again", s.Online)
	again := logs.lines(`msg="upstream online again"`)
	if len(again) != 1 || !strings.Contains(again[0], "offline_for=") || !strings.Contains(again[0], "probes_failed=") {
		t.Errorf("recovery logged as %q:\n%s", again, logs)
	}
	if !j.Has(shopbridge.KindUpstreamState, "offline -> online after") || !j.Has(shopbridge.KindUpstreamState, "online -> offline after") {
		t.Errorf("the state changes are not journaled: %+v", j.Entries())
	}
	if ss := s.Status(); ss.LastError != "" {
		t.Errorf("status once back: last error %q, want none", ss.LastError)
	}
}
