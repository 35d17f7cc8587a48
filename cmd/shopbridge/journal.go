package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

const journalAbout = `Prints the journal newest first, one exchange a line: time, terminal, kind,
status, duration and a summary (the bill and its sum, the receipt and its
type, how many bills a list had, the error). --full prints every exchange
with its request and answer bodies, like the cloud's journal.

It asks the running daemon; when none answers (a stopped or crashed
service), it reads the store read-only: --data, else the data directory run
would use (SHOPBRIDGE_DATA, the config file's data, the default). It says
on stderr which it read.`

func cmdJournal(args []string) int {
	c := newFlags("journal", "", journalAbout)
	d := c.daemonFlags()
	data := c.String("data", "", "the store's `DIR`, read when no daemon answers (default: the data directory run would use)")
	since := c.String("since", "", "only entries newer than this: a `DURATION` such as 1h, or an RFC 3339 time")
	kind := c.String("kind", "", "only this `KIND`: HELLO, LIST, BILL, RECEIPT, UPSTREAM_...")
	limit := c.Int("limit", 1000, "at most `N` entries, the newest")
	full := c.Bool("full", false, "print each exchange in full, request and answer bodies, like the cloud's journal")
	asJSON := c.Bool("json", false, "print the entries as a JSON array")
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) > 0 {
		return c.fail("unexpected argument %q", c.positional()[0])
	}
	if *since != "" {
		if _, err := time.ParseDuration(*since); err != nil {
			if _, err := time.Parse(time.RFC3339, *since); err != nil {
				return c.fail("--since: want a duration such as 1h or an RFC 3339 time, got %q", *since)
			}
		}
	}
	if *limit < 1 || *limit > 100000 {
		return c.fail("--limit: want 1 to 100000, got %d", *limit)
	}
	q := url.Values{}
	if *since != "" {
		q.Set("since", *since)
	}
	if *kind != "" {
		q.Set("kind", strings.ToUpper(*kind))
	}
	q.Set("limit", fmt.Sprint(*limit))
	rows, source, err := readJournal(d, *data, q.Encode())
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge journal: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "journal: %d entries %s\n", len(rows), source)
	switch {
	case *asJSON:
		b, err := json.Marshal(rows)
		if err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge journal: %v\n", err)
			return 1
		}
		os.Stdout.Write(append(b, '\n'))
	case *full:
		for _, r := range rows {
			printJournalRow(os.Stdout, r)
		}
	default:
		printJournalLines(os.Stdout, rows)
	}
	return 0
}

// readJournal asks the running daemon for the journal and, when no daemon
// answers at all, reads the store read-only: a stopped or crashed service
// is when the journal is needed most. source says which it read.
func readJournal(d daemonFlags, data, query string) (rows []api.JournalRow, source string, err error) {
	base := d.url()
	rows, err = journalFromDaemon(base, query)
	var down *unreachableError
	if err == nil || !errors.As(err, &down) {
		return rows, "from the daemon at " + base, err
	}
	var extra []string
	if data != "" {
		extra = []string{"--data", data}
	}
	cfg, cerr := d.runConfig(extra...)
	if cerr != nil {
		return nil, "", fmt.Errorf("%v; and the data directory is unknown: %v", err, cerr)
	}
	path := filepath.Join(cfg.DataDir, storage.FileName)
	rows, serr := journalFromStore(path, query)
	if serr != nil {
		return nil, "", fmt.Errorf("%v; and %w", err, serr)
	}
	return rows, fmt.Sprintf("from the store %s, read-only (no daemon answers at %s)", path, base), nil
}

func journalFromDaemon(base, query string) ([]api.JournalRow, error) {
	resp, err := adminGet(base, "/admin/api/journal?"+query, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rows []api.JournalRow
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		return nil, fmt.Errorf("%s/admin/api/journal: not a journal answer: %w", base, err)
	}
	return rows, nil
}

// journalFromStore reads the journal of a store no daemon holds. bbolt's
// lock lets it wait briefly for a daemon that is closing.
func journalFromStore(path, query string) ([]api.JournalRow, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("there is no store at %s (see --data)", path)
	}
	st, err := storage.Open(path, storage.Options{ReadOnly: true, LockTimeout: 2 * time.Second})
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.Is(err, fs.ErrPermission) && errors.As(err, &pe) {
			// The path once, who we are and what to do.
			return nil, fmt.Errorf("permission denied reading %s as user %s: run it as root (sudo) or as the service's user (shopbridge)", pe.Path, userName())
		}
		if strings.Contains(err.Error(), "locked by another process") {
			return nil, fmt.Errorf("the store %s is held by a running shopbridge that does not answer there: see --addr", path)
		}
		return nil, err
	}
	defer st.Close()
	jq, err := api.ParseJournalQuery(query, time.Now())
	if err != nil {
		return nil, err
	}
	entries, err := st.Journal(jq)
	if err != nil {
		return nil, fmt.Errorf("read the journal of %s: %w", path, err)
	}
	rows := make([]api.JournalRow, len(entries))
	for i, e := range entries {
		rows[i] = api.NewJournalRow(e)
	}
	return rows, nil
}

// printJournalLines prints one line per exchange under a header.
func printJournalLines(w io.Writer, rows []api.JournalRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTERMINAL\tKIND\tSTATUS\tDURATION\tSUMMARY")
	for _, r := range rows {
		status, took := "-", "-"
		if r.Method != "" {
			took = fmtDuration(r.DurationMS)
			if r.Status != 0 {
				status = fmt.Sprint(r.Status)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format("2006-01-02 15:04:05"),
			terminal(r), r.Kind, status, took, oneLine(summary(r)+repeated(r), 240))
	}
	tw.Flush()
}

// repeated says how often an upstream poll was answered the same again
// (folded into this row in the store), and until when.
func repeated(r api.JournalRow) string {
	if r.Repeats == 0 || r.LastTime == nil {
		return ""
	}
	return fmt.Sprintf(" (same answer %d more times, last %s)", r.Repeats, r.LastTime.Local().Format("2006-01-02 15:04:05"))
}

// terminal is the client's address and device id.
func terminal(r api.JournalRow) string {
	if r.Device != "" {
		return r.Client + " " + r.Device
	}
	return r.Client
}

// fmtDuration prints milliseconds at a precision a person reads.
func fmtDuration(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// summary says in a few words what an exchange carried: the bill id, number
// and sum; the receipt's event id, type and bill; how many bills a list
// had; the system hello named; or why it failed.
func summary(r api.JournalRow) string {
	if r.Method == "" { // a note, such as an upstream state change
		return r.Note
	}
	var parts []string
	kind := strings.TrimPrefix(r.Kind, "UPSTREAM_")
	failed := r.Status == 0 || r.Status >= 300
	switch {
	case kind == "RECEIPT":
		parts = append(parts, receiptSummary(r.Request))
	case failed:
	case kind == "HELLO":
		var h struct {
			System *string `json:"system"`
		}
		if json.Unmarshal(r.Response, &h) == nil && h.System != nil {
			parts = append(parts, fmt.Sprintf("system %q", *h.System))
		}
	case kind == "LIST":
		parts = append(parts, listSummary(r.Response))
	case kind == "BILL":
		parts = append(parts, billSummary(r.Response))
	}
	if kind == "LIST" && r.Query != "" {
		q, err := url.QueryUnescape(r.Query)
		if err != nil {
			q = r.Query
		}
		parts = append([]string{q + ":"}, parts...)
	}
	// Why it failed: the answer's reason, or the note (which, for an
	// upstream call, already holds the answer's excerpt).
	if reason := errorReason(r.Response); failed && reason != "" && !strings.Contains(r.Note, reason) {
		parts = append(parts, reason)
	}
	if r.Source == "upstream" && !strings.HasPrefix(r.Kind, "UPSTREAM_") {
		parts = append(parts, "(read through from the upstream)")
	}
	out := strings.Join(parts, " ")
	if r.Note != "" && out != "" {
		out += "; " + r.Note
	} else if r.Note != "" {
		out = r.Note
	}
	return out
}

// unquote turns a body the journal kept as a JSON string (not valid JSON
// when it was recorded, e.g. cut at 64 KiB) back into its text.
func unquote(raw json.RawMessage) []byte {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return raw
}

func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // ids beyond 2^53 and sums keep their digits
	return dec.Decode(v)
}

func billSummary(raw json.RawMessage) string {
	var b struct {
		ID     json.Number `json:"id"`
		Number string      `json:"number"`
		Summ   json.Number `json:"summ"`
	}
	if decodeNumbers(unquote(raw), &b) != nil || b.ID == "" {
		return "bill ?"
	}
	s := "bill " + b.ID.String()
	if b.Number != "" && b.Number != b.ID.String() {
		s += " (" + b.Number + ")"
	}
	if b.Summ != "" {
		s += " summ " + b.Summ.String()
	}
	return s
}

// listSummary counts the bills of a list answer; of one cut short, those
// before the cut.
func listSummary(raw json.RawMessage) string {
	body := unquote(raw)
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return "not a list"
	}
	n := 0
	for dec.More() {
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			return fmt.Sprintf("%d+ bills (the journal keeps the first 64 KiB)", n)
		}
		n++
	}
	if n == 1 {
		return "1 bill"
	}
	return fmt.Sprintf("%d bills", n)
}

func receiptSummary(raw json.RawMessage) string {
	var e struct {
		ID   string `json:"id"`
		Data struct {
			Type   string `json:"type"`
			Extras struct {
				BillID json.RawMessage `json:"billId"`
			} `json:"extras"`
		} `json:"data"`
	}
	if decodeNumbers(unquote(raw), &e) != nil || e.ID == "" {
		return "receipt ?"
	}
	s := "receipt " + e.ID
	if e.Data.Type != "" {
		s += " " + e.Data.Type
	}
	if bill := strings.Trim(string(e.Data.Extras.BillID), `"`); bill != "" && bill != "null" {
		s += " bill " + bill
	}
	return s
}

// errorReason is the reason of an Evotor error body.
func errorReason(raw json.RawMessage) string {
	var e struct {
		Errors []struct {
			Reason string `json:"reason"`
		} `json:"errors"`
	}
	if json.Unmarshal(unquote(raw), &e) == nil && len(e.Errors) > 0 {
		return e.Errors[0].Reason
	}
	return ""
}

// printJournalRow prints an exchange as two rows like the cloud's journal:
// the answer above the request, each with its JSON pretty-printed.
func printJournalRow(w io.Writer, r api.JournalRow) {
	ts := r.Time.Local().Format("2006-01-02 15:04:05")
	client := terminal(r)
	if r.Method == "" { // a note, such as an upstream state change
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", ts, client, r.Kind, r.Note)
		return
	}
	answer := pretty(r.Response)
	source := r.Source
	if source == "store" {
		source = ""
	}
	if answer == "" || r.Status != 200 || source != "" {
		answer = strings.Join(strings.Fields(fmt.Sprintf("%d %s", r.Status, source)), " ") + " " + answer
		answer = strings.TrimSpace(answer)
	}
	if rep := repeated(r); rep != "" {
		answer += "\n" + strings.TrimSpace(rep)
	}
	fmt.Fprintf(w, "| %s | %s | Ответ (%s) | %s |\n", ts, client, r.Kind, answer)
	req := map[string]any{"q": r.Path}
	if r.Query != "" {
		if v, err := url.ParseQuery(r.Query); err == nil {
			for k := range v {
				req[k] = v.Get(k)
			}
		}
	}
	reqDoc := map[string]any{"get": req, "method": r.Method}
	if len(r.Request) > 0 {
		reqDoc["body"] = r.Request
	} else {
		reqDoc["body"] = nil
	}
	b, _ := json.MarshalIndent(reqDoc, "", "")
	fmt.Fprintf(w, "| %s | %s | Запрос (%s) | %s |\n", ts, client, r.Kind, b)
}

func pretty(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.MarshalIndent(json.RawMessage(raw), "", "")
	return string(b)
}

// userName is the user this command runs as, for permission errors.
func userName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}
