package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

// printDaemonStatus prints the running daemon's sync state for people: the
// upstream's state and since when, the last pull and push, the outbox and
// its oldest receipt, and each parked receipt with the upstream's answer.
// baseURL is the daemon's address, e.g. http://127.0.0.1:8480.
func printDaemonStatus(w io.Writer, baseURL string) error {
	base := strings.TrimRight(baseURL, "/")
	resp, err := adminGet(base, "/admin/api/status", 5*time.Second)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var st api.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&st); err != nil {
		return fmt.Errorf("%s/admin/api/status: not a status answer: %w", base, err)
	}
	writeDaemonStatus(w, &st, time.Now())
	return nil
}

func writeDaemonStatus(w io.Writer, st *api.Status, now time.Time) {
	// First, since it stops receipts: a store that cannot write.
	if h := st.StoreHealth; h.State == storage.StateDegraded {
		fmt.Fprintf(w, "store:      DEGRADED since %s: %s; receipts get 503 and the registers keep them. Free disk space: the store recovers by itself\n",
			when(h.Since, now), h.Reason)
	}
	switch st.Upstream {
	case "", "none":
		fmt.Fprintln(w, "upstream:   none (standalone: no --upstream configured)")
	default:
		line := st.Upstream
		if st.UpstreamSince != nil {
			line += " since " + when(*st.UpstreamSince, now)
		}
		if st.UpstreamURL != "" {
			line += "  (" + st.UpstreamURL + ")"
		}
		fmt.Fprintf(w, "upstream:   %s\n", line)
		fmt.Fprintf(w, "last pull:  %s\n", whenPtr(st.LastPullAt, now, "never"))
		fmt.Fprintf(w, "last push:  %s\n", whenPtr(st.LastPushAt, now, "never"))
		if lastErrorRelevant(st) {
			fmt.Fprintf(w, "last error: %s, %s\n", whenPtr(st.LastErrorAt, now, "at an unknown time"), oneLine(st.LastError, 200))
		}
	}
	switch {
	case st.Outbox == 0:
		fmt.Fprintln(w, "outbox:     empty")
	case st.Upstream == "" || st.Upstream == "none":
		fmt.Fprintf(w, "outbox:     %d receipt(s) waiting, oldest received %s; they stay until an upstream is configured (--upstream)\n",
			st.Outbox, whenPtr(st.OutboxOldest, now, "?"))
	default:
		fmt.Fprintf(w, "outbox:     %d receipt(s) waiting, oldest received %s\n", st.Outbox, whenPtr(st.OutboxOldest, now, "?"))
	}
	if st.Parked == 0 && len(st.ParkedList) == 0 {
		fmt.Fprintln(w, "parked:     none")
		return
	}
	fmt.Fprintf(w, "parked:     %d receipt(s) the upstream refused (retry with: shopbridge outbox retry EVENT_ID)\n", max(st.Parked, len(st.ParkedList)))
	for _, p := range st.ParkedList {
		bill := p.BillID
		if bill == "" {
			bill = "-"
		}
		fmt.Fprintf(w, "  %s  bill %s  received %s  attempts %d\n", p.EventID, bill, when(p.ReceivedAt, now), p.Attempts)
		fmt.Fprintf(w, "    answer: %s\n", oneLine(p.Answer, 300))
	}
}

// lastErrorRelevant: the daemon drops its last error once the upstream
// answers again; an error from before the upstream came back online is old
// news all the same.
func lastErrorRelevant(st *api.Status) bool {
	if st.LastError == "" {
		return false
	}
	if st.Upstream == "online" && st.LastErrorAt != nil && st.UpstreamSince != nil {
		return !st.LastErrorAt.Before(*st.UpstreamSince)
	}
	return true
}

// when prints a time in the local zone with how long ago it was.
func when(t time.Time, now time.Time) string {
	ago := now.Sub(t)
	if ago < 0 {
		ago = 0
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format("2006-01-02 15:04:05"), roundAgo(ago))
}

func whenPtr(t *time.Time, now time.Time, none string) string {
	if t == nil || t.IsZero() {
		return none
	}
	return when(*t, now)
}

func roundAgo(d time.Duration) time.Duration {
	switch {
	case d < time.Minute:
		return d.Round(time.Second)
	case d < time.Hour:
		return d.Round(time.Second)
	default:
		return d.Round(time.Minute)
	}
}

// oneLine flattens text to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}
