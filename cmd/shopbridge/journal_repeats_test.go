package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/api"
)

// TestJournalShowsRepeats: a poll folded in the store prints once, saying
// how many more times the same answer came and when the last one did.
func TestJournalShowsRepeats(t *testing.T) {
	last := time.Date(2026, 3, 22, 23, 59, 55, 0, time.Local)
	r := api.JournalRow{Seq: 3, Time: last.Add(-24 * time.Hour), Client: "upstream", Kind: "UPSTREAM_LIST", Method: "GET", Path: "/api/v2/list",
		Status: 200, Response: json.RawMessage(`[]`), Source: "upstream", Repeats: 8639, LastTime: &last}
	var lines, full bytes.Buffer
	printJournalLines(&lines, []api.JournalRow{r})
	printJournalRow(&full, r)
	for name, out := range map[string]string{"lines": lines.String(), "full": full.String()} {
		if !strings.Contains(out, "same answer 8639 more times, last 2026-03-22 23:59:55") {
			t.Errorf("%s output lacks the repeats:\n%s", name, out)
		}
	}
	r.Repeats, r.LastTime = 0, nil
	lines.Reset()
	printJournalLines(&lines, []api.JournalRow{r})
	if strings.Contains(lines.String(), "same answer") {
		t.Errorf("an entry without repeats mentions them:\n%s", lines.String())
	}
}
