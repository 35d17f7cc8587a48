package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge/api"
)

func init() {
	register(&command{name: "journal", usage: "print the running daemon's journal", run: journalCmd})
}

func journalCmd(args []string) int {
	fs := flag.NewFlagSet("journal", flag.ContinueOnError)
	addr := addrFlag(fs)
	since := fs.String("since", "", "only entries newer than this (e.g. 1h, or an RFC 3339 time)")
	kind := fs.String("kind", "", "only this kind (HELLO, LIST, BILL, RECEIPT, UPSTREAM_...)")
	limit := fs.Int("limit", 1000, "at most this many entries, the newest")
	asJSON := fs.Bool("json", false, "print JSON for machines")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *since != "" {
		if _, err := time.ParseDuration(*since); err != nil {
			if _, err := time.Parse(time.RFC3339, *since); err != nil {
				fmt.Fprintf(os.Stderr, "shopbridge journal: --since: want a duration such as 1h or an RFC 3339 time, got %q\n", *since)
				return 2
			}
		}
	}
	q := url.Values{}
	if *since != "" {
		q.Set("since", *since)
	}
	if *kind != "" {
		q.Set("kind", strings.ToUpper(*kind))
	}
	q.Set("limit", fmt.Sprint(*limit))
	resp, err := adminGet(daemonURL(*addr), "/admin/api/journal?"+q.Encode(), 30*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge journal: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if *asJSON {
		io.Copy(os.Stdout, resp.Body)
		fmt.Println()
		return 0
	}
	var rows []api.JournalRow
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge journal: bad answer from the daemon: %v\n", err)
		return 1
	}
	for _, r := range rows {
		printJournalRow(os.Stdout, r)
	}
	return 0
}

// printJournalRow prints an exchange as two rows like the cloud's journal:
// the answer above the request, each with its JSON pretty-printed.
func printJournalRow(w io.Writer, r api.JournalRow) {
	ts := r.Time.Local().Format("2006-01-02 15:04:05")
	client := r.Client
	if r.Device != "" {
		client += " " + r.Device
	}
	if r.Method == "" { // a note, such as an upstream state change
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", ts, client, r.Kind, r.Note)
		return
	}
	answer := pretty(r.Response)
	if r.Status != 200 || r.Source != "" && r.Source != "store" {
		answer = strings.TrimSpace(fmt.Sprintf("%d %s %s", r.Status, r.Source, answer))
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
