package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
)

// TestStatusClockSkew: the daemon, syncing with a simulator whose clock
// the test moves, measures the PC's clock from the answers' Date: a year
// behind (a dead CMOS battery), corrected, a year ahead. shopbridge status
// prints it, admin/api/status and /metrics carry it, and the daemon's log
// has one line each way, not one a poll.
func TestStatusClockSkew(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sim.SetClockOffset(365 * 24 * time.Hour)
	p := startDaemon(t, t.TempDir(), "--upstream", sim.URL(), "--sync-interval", "200ms")

	// statusShows polls shopbridge status until it has want.
	statusShows := func(want string) string {
		t.Helper()
		var r result
		for deadline := time.Now().Add(60 * time.Second); ; {
			r = runBinary(t, nil, "status", "--addr", p.Base)
			if strings.Contains(r.stdout, want) {
				return r.stdout
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never showed %q:\n%s%s\nlog:\n%s", want, r.stdout, r.stderr, p.Logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// morePolls waits for a few more pulls, so a line logged per answer
	// would show.
	morePolls := func() {
		t.Helper()
		n := sim.Counters()[crmsim.KindList]
		for deadline := time.Now().Add(60 * time.Second); sim.Counters()[crmsim.KindList] < n+6; {
			if time.Now().After(deadline) {
				t.Fatalf("no more pulls:\n%s", p.Logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	logLines := func(substr string) int { return strings.Count(p.Logs(), substr) }

	out := statusShows("clock:      WRONG: this PC is 365 days behind the upstream (measured ")
	if strings.Index(out, "clock:") < strings.Index(out, "upstream:") || strings.Index(out, "clock:") > strings.Index(out, "outbox:") {
		t.Errorf("the clock line is not between the upstream and the outbox:\n%s", out)
	}
	code, body := request(t, "GET", p.Base+"/admin/api/status", "")
	var st api.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("status: %d %v\n%s", code, err, body)
	}
	if c := st.Clock; c == nil || c.OK || c.SkewSeconds < 365*86400-3 || c.SkewSeconds > 365*86400+3 || c.MeasuredAt.IsZero() {
		t.Errorf("admin/api/status clock = %+v, want a year behind, not ok", st.Clock)
	}
	if _, m := request(t, "GET", p.Base+"/metrics", ""); !strings.Contains(m, "\nshopbridge_clock_skew_seconds 3153") {
		t.Errorf("/metrics lacks the skew")
	}
	morePolls()
	if n := logLines("this PC's clock is wrong: 365 days behind the upstream"); n != 1 {
		t.Errorf("%d log lines for the clock a year behind, want 1:\n%s", n, p.Logs())
	}

	sim.SetClockOffset(0)
	statusShows("clock:      in step with the upstream (measured ")
	morePolls()
	if n := logLines("this PC's clock is right again"); n != 1 {
		t.Errorf("%d log lines for the clock right again, want 1:\n%s", n, p.Logs())
	}

	sim.SetClockOffset(-365 * 24 * time.Hour)
	statusShows("clock:      WRONG: this PC is 365 days ahead of the upstream")
	morePolls()
	if n := logLines("this PC's clock is wrong"); n != 2 {
		t.Errorf("%d log lines for the clock wrong, want 2 (behind, then ahead):\n%s", n, p.Logs())
	}
}
