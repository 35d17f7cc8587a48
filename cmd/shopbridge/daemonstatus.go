package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

// printDaemonStatus prints the running daemon's state for people (see
// statusParts). baseURL is the daemon's address, e.g.
// http://127.0.0.1:8480.
func printDaemonStatus(w io.Writer, baseURL string) error {
	st, err := fetchStatus(baseURL)
	if err != nil {
		return err
	}
	writeDaemonStatus(w, st, time.Now())
	return nil
}

// fetchStatus asks the daemon at baseURL for its status; an
// *unreachableError when nothing answers there.
func fetchStatus(baseURL string) (*api.Status, error) {
	base := strings.TrimRight(baseURL, "/")
	resp, err := adminGet(base, "/admin/api/status", 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st api.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("%s/admin/api/status: not a status answer: %w", base, err)
	}
	if len(st.ConsoleURLs) == 0 || !strings.HasPrefix(st.ConsoleURLs[0], base+"/") {
		// The address this command reached comes first: it works from here.
		st.ConsoleURLs = append([]string{base + "/admin/"}, st.ConsoleURLs...)
	}
	return &st, nil
}

// statusParts print the daemon's status, one part each, in this order: what
// stops receipts first, then the upstream, the queues, the registers and
// where the console is. A new part (backup, TLS) is a function added here.
var statusParts = []func(w io.Writer, st *api.Status, now time.Time){
	writeStoreHealth,
	writeDuplicates,
	writeUpstream,
	writeClock,
	writeOutbox,
	writeBackupStatus,
	writeParked,
	writePaidTwice,
	writeRegisters,
	writeHTTPS,
	writeConsole,
}

// statusListShown is how many items of each list status prints; the
// paged commands (outbox list, parked list) show them all.
const statusListShown = 10

func writeDaemonStatus(w io.Writer, st *api.Status, now time.Time) {
	for _, part := range statusParts {
		part(w, st, now)
	}
}

// writeStoreHealth: a store that cannot write stops receipts.
func writeStoreHealth(w io.Writer, st *api.Status, now time.Time) {
	if h := st.StoreHealth; h.State == storage.StateDegraded {
		fmt.Fprintf(w, "store:      DEGRADED since %s: %s; receipts get 503 and the registers keep them. %s\n",
			when(h.Since, now), h.Reason, storeAdvice(h.Reason))
	}
}

// writeDuplicates: another appliance serving the same shop splits the
// registers.
func writeDuplicates(w io.Writer, st *api.Status, now time.Time) {
	for _, d := range st.Duplicates {
		why := "the same CRM upstream"
		if d.Reason == shopbridge.DuplicateStore {
			why = "a copy of this store (cloned disk)"
		}
		fmt.Fprintf(w, "DUPLICATE:  another shopbridge on this LAN, %q at %s, serves %s: keep one appliance per shop LAN (stop and uninstall one, point every register at the other)\n",
			d.Name, strings.Join(d.Addresses, ", "), why)
	}
}

func writeUpstream(w io.Writer, st *api.Status, now time.Time) {
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
		if st.UpstreamBusyUntil != nil && st.UpstreamBusyUntil.After(now) {
			fmt.Fprintf(w, "upstream busy until %s: %s\n", whenNext(st.UpstreamBusyUntil, now), oneLine(st.UpstreamBusyReason, 200))
		}
		fmt.Fprintf(w, "last pull:  %s\n", whenPtr(st.LastPullAt, now, "never"))
		fmt.Fprintf(w, "last push:  %s\n", whenPtr(st.LastPushAt, now, "never"))
		if lastErrorRelevant(st) {
			fmt.Fprintf(w, "last error: %s, %s\n", whenPtr(st.LastErrorAt, now, "at an unknown time"), oneLine(st.LastError, 200))
		}
	}
}

// writeClock: the PC's clock against the upstream's; date=today lists and
// every time shown depend on it.
func writeClock(w io.Writer, st *api.Status, now time.Time) {
	c := st.Clock
	switch {
	case c == nil && (st.Upstream == "" || st.Upstream == "none"):
	case c == nil:
		fmt.Fprintln(w, "clock:      not measured yet (from the upstream's answers)")
	case c.OK:
		fmt.Fprintf(w, "clock:      %s (measured %s ago)\n", shopbridge.DescribeSkew(c.Skew()), measuredAgo(c.MeasuredAt, now))
	default:
		fmt.Fprintf(w, "clock:      WRONG: this PC is %s (measured %s ago); date=today lists and the times shown depend on it: set the PC's clock or enable time synchronisation\n",
			shopbridge.DescribeSkew(c.Skew()), measuredAgo(c.MeasuredAt, now))
	}
}

func measuredAgo(t, now time.Time) time.Duration { return roundAgo(max(now.Sub(t), 0)) }

func writeOutbox(w io.Writer, st *api.Status, now time.Time) {
	switch {
	case st.Outbox == 0:
		fmt.Fprintln(w, "outbox:     empty")
		return
	case st.Upstream == "" || st.Upstream == "none":
		fmt.Fprintf(w, "outbox:     %d receipt(s) waiting, oldest received %s; they stay until an upstream is configured (--upstream)\n",
			st.Outbox, whenPtr(st.OutboxOldest, now, "?"))
	default:
		fmt.Fprintf(w, "outbox:     %d receipt(s) waiting, oldest received %s\n", st.Outbox, whenPtr(st.OutboxOldest, now, "?"))
	}
	shown := st.OutboxList[:min(len(st.OutboxList), statusListShown)]
	for _, r := range shown {
		line := fmt.Sprintf("  %s  bill %s  received %s  attempts %d", r.EventID, orDash(r.BillID), when(r.ReceivedAt, now), r.Attempts)
		if r.LastError != "" {
			line += "  last error: " + oneLine(r.LastError, 200)
		}
		fmt.Fprintln(w, line)
	}
	more(w, st.Outbox-len(shown), "shopbridge outbox list")
}

func writeParked(w io.Writer, st *api.Status, now time.Time) {
	n := max(st.Parked, len(st.ParkedList))
	if n == 0 {
		fmt.Fprintln(w, "parked:     none")
		return
	}
	fmt.Fprintf(w, "parked:     %d receipt(s) the upstream refused (retry with: shopbridge outbox retry EVENT_ID)\n", n)
	shown := st.ParkedList[:min(len(st.ParkedList), statusListShown)]
	for _, p := range shown {
		fmt.Fprintf(w, "  %s  bill %s  received %s  attempts %d\n", p.EventID, orDash(p.BillID), when(p.ReceivedAt, now), p.Attempts)
		fmt.Fprintf(w, "    answer: %s\n", oneLine(p.Answer, 300))
	}
	more(w, n-len(shown), "shopbridge parked list")
}

func writePaidTwice(w io.Writer, st *api.Status, _ time.Time) {
	n := max(st.PaidTwiceCount, len(st.PaidTwice))
	if n == 0 {
		return
	}
	shown := st.PaidTwice[:min(len(st.PaidTwice), statusListShown)]
	line := fmt.Sprintf("paid twice: %d bill(s) got two settling receipts: %s", n, strings.Join(shown, ", "))
	if n > len(shown) {
		line += fmt.Sprintf(" and %d more", n-len(shown))
	}
	fmt.Fprintln(w, line+" (see the console's Bills page)")
}

func writeRegisters(w io.Writer, st *api.Status, now time.Time) {
	n := max(st.TerminalsCount, len(st.Terminals))
	if n == 0 {
		fmt.Fprintln(w, "registers:  none seen since the daemon started")
		return
	}
	fmt.Fprintf(w, "registers:  %d seen since the daemon started\n", n)
	shown := st.Terminals[:min(len(st.Terminals), statusListShown)]
	for _, t := range shown {
		line := fmt.Sprintf("  %s  %s  last seen %s", orDash(t.Device), orDash(t.Address), when(t.LastSeen, now))
		if t.LastKind != "" {
			line += "  (" + t.LastKind + ")"
		}
		fmt.Fprintln(w, line)
	}
	if n > len(shown) {
		fmt.Fprintf(w, "  … and %d more (the console's Journal lists every exchange)\n", n-len(shown))
	}
}

// writeHTTPS: the certificate's fingerprint, which an installer compares
// with what a browser or a register shows before trusting it.
func writeHTTPS(w io.Writer, st *api.Status, now time.Time) {
	h := st.HTTPS
	if h == nil {
		fmt.Fprintln(w, "https:      off (https-listen none): the console from another PC and its token go over plain HTTP")
		return
	}
	fmt.Fprintf(w, "https:      port %d, certificate SHA-256 %s\n", h.Port, h.Fingerprint)
	line := fmt.Sprintf("            %s, %s, valid until %s", h.Source, h.CertFile, h.NotAfter.Local().Format("2006-01-02"))
	if left := h.NotAfter.Sub(now); left < 30*24*time.Hour {
		line += fmt.Sprintf(": EXPIRES in %d day(s), renew it", int(left.Hours()/24))
		if h.Source == shopbridge.TLSSelfSigned {
			line += " (the daemon makes a new one at its next start; its fingerprint changes)"
		}
	}
	fmt.Fprintln(w, line)
}

func writeConsole(w io.Writer, st *api.Status, now time.Time) {
	if len(st.ConsoleURLs) > 0 {
		line := st.ConsoleURLs[0]
		if len(st.ConsoleURLs) > 1 {
			line += "  (from the LAN: " + strings.Join(st.ConsoleURLs[1:], " ") + ")"
		}
		fmt.Fprintf(w, "console:    %s\n", line)
	}
	if st.Version != "" {
		line := "shopbridge " + st.Version
		if !st.StartedAt.IsZero() {
			line += ", started " + when(st.StartedAt, now)
		}
		fmt.Fprintf(w, "daemon:     %s\n", line)
	}
}

// more says how many items a capped list left out and which command
// pages them.
func more(w io.Writer, n int, cmd string) {
	if n > 0 {
		fmt.Fprintf(w, "  … and %d more: %s\n", n, cmd)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
