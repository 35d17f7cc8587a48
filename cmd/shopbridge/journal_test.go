package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/api"
)

// seedExchange is one exchange of the seed journal (the cloud's own, in
// daemon/testdata), its request and answer paired, as a journal row.
type seedExchange struct {
	row      api.JournalRow
	request  json.RawMessage // the request's body
	response json.RawMessage
}

// seedRows pairs each request of the seed journal with the next answer of
// the same kind (the cloud logs them interleaved).
func seedRows(t *testing.T) []seedExchange {
	t.Helper()
	f, err := os.Open("../../daemon/testdata/seed-journal.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type entry struct {
		Time      string          `json:"time"`
		Account   int             `json:"account"`
		Direction string          `json:"direction"`
		Kind      string          `json:"kind"`
		Body      json.RawMessage `json:"body"`
	}
	var out []seedExchange
	open := map[string][]int{} // kind -> indexes of requests without an answer
	dec := json.NewDecoder(f)
	for dec.More() {
		var e entry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05", e.Time, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		if e.Direction == "request" {
			var req struct {
				Get  map[string]string `json:"get"`
				Body json.RawMessage   `json:"body"`
			}
			if err := json.Unmarshal(e.Body, &req); err != nil {
				t.Fatal(err)
			}
			q := url.Values{}
			for k, v := range req.Get {
				if k != "q" && k != "id" {
					q.Set(k, v)
				}
			}
			method, body := "GET", json.RawMessage(nil)
			if string(req.Body) != "null" {
				method, body = "POST", req.Body
			}
			out = append(out, seedExchange{request: body, row: api.JournalRow{Time: at, Client: "10.0.0.7",
				Device: fmt.Sprintf("acct-%d", e.Account), Kind: e.Kind,
				Method: method, Path: req.Get["q"], Query: q.Encode(), Request: body, Status: 200, DurationMS: 1.25, Source: "store"}})
			open[e.Kind] = append(open[e.Kind], len(out)-1)
			continue
		}
		i := open[e.Kind][0]
		open[e.Kind] = open[e.Kind][1:]
		if string(e.Body) != "null" {
			out[i].row.Response, out[i].response = e.Body, e.Body
		}
	}
	return out
}

var numberText = func(field string) *regexp.Regexp {
	return regexp.MustCompile(`"` + field + `":\s*([0-9.]+)`)
}

// TestJournalLinesSeed: the seed journal's 20 entries (10 exchanges) print
// as 10 lines under a header, each naming what the exchange carried, with
// the number text exactly as received.
func TestJournalLinesSeed(t *testing.T) {
	ex := seedRows(t)
	if len(ex) != 10 {
		t.Fatalf("the seed journal pairs into %d exchanges, want 10", len(ex))
	}
	rows := make([]api.JournalRow, len(ex))
	for i := range ex {
		rows[i] = ex[i].row
	}
	var buf bytes.Buffer
	printJournalLines(&buf, rows)
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 1+len(ex) {
		t.Fatalf("%d lines for %d exchanges, want one each and a header:\n%s", len(lines), len(ex), buf.String())
	}
	if !regexp.MustCompile(`^TIME\s+TERMINAL\s+KIND\s+STATUS\s+DURATION\s+SUMMARY$`).MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	for i, e := range ex {
		line := lines[i+1]
		r := e.row
		want := []string{r.Time.Format("2006-01-02 15:04:05"), r.Client + " " + r.Device, " " + r.Kind + " ", " 200 ", "1.3ms"}
		switch r.Kind {
		case "BILL":
			id := numberText("id").FindSubmatch(e.response)[1]
			summ := numberText("summ").FindSubmatch(e.response)[1]
			want = append(want, "bill "+string(id), "summ "+string(summ))
		case "LIST":
			var items []json.RawMessage
			if err := json.Unmarshal(e.response, &items); err != nil {
				t.Fatal(err)
			}
			n := fmt.Sprintf("%d bills", len(items))
			if len(items) == 1 {
				n = "1 bill"
			}
			want = append(want, n)
			if r.Query != "" {
				q, _ := url.QueryUnescape(r.Query)
				want = append(want, q+":")
			}
		case "RECEIPT":
			var ev struct {
				ID   string `json:"id"`
				Data struct {
					Type   string `json:"type"`
					Extras struct {
						BillID string `json:"billId"`
					} `json:"extras"`
				} `json:"data"`
			}
			if err := json.Unmarshal(e.request, &ev); err != nil {
				t.Fatal(err)
			}
			want = append(want, "receipt "+ev.ID+" "+ev.Data.Type+" bill "+ev.Data.Extras.BillID)
		case "HELLO":
			want = append(want, `system "new-sens-gel, sens-khabarovsk"`)
		}
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("line %d lacks %q:\n%s", i+1, w, line)
			}
		}
	}
	// Spot checks against the fixture as a person reads it.
	for _, want := range []string{"bill 49040 (49040-CRM) summ 4604.04", "date=today: 3 bills", "15 bills",
		"number=1311752: 1 bill", "receipt 77fb892f-87ce-43f1-b998-48c848b3073f SELL bill 49040"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestJournalSummaries: failures, notes, read-through, cut bodies and
// numbers beyond 2^53.
func TestJournalSummaries(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 44, 31, 0, time.Local)
	for _, tt := range []struct {
		name string
		row  api.JournalRow
		want []string
		not  []string
	}{
		{"404", api.JournalRow{Kind: "BILL", Method: "GET", Path: "/api/v2/bill/byid/999", Status: 404,
			Response: json.RawMessage(`{"errors":[{"code":2004,"reason":"no bill with id 999","subject":"id"}]}`)},
			[]string{" 404 ", "no bill with id 999"}, []string{"bill ?"}},
		{"receipt conflict", api.JournalRow{Kind: "RECEIPT", Method: "POST", Status: 409,
			Request:  json.RawMessage(`{"id":"evt-1","data":{"type":"PAYBACK","extras":{}}}`),
			Response: json.RawMessage(`{"errors":[{"code":2006,"reason":"event evt-1 was already accepted with other content","subject":"id"}]}`)},
			[]string{" 409 ", "receipt evt-1 PAYBACK", "already accepted"}, []string{"bill"}},
		{"receipt ok, empty answer", api.JournalRow{Kind: "RECEIPT", Method: "POST", Status: 200,
			Request: json.RawMessage(`{"id":"evt-2","data":{"type":"SELL","extras":{"billId":49040}}}`)},
			[]string{" 200 ", "receipt evt-2 SELL bill 49040"}, nil},
		{"huge id", api.JournalRow{Kind: "BILL", Method: "GET", Status: 200,
			Response: json.RawMessage(`{"id": 123456789012345678901, "number": "X-1", "summ": 0.10}`)},
			[]string{"bill 123456789012345678901 (X-1) summ 0.10"}, nil},
		{"read through", api.JournalRow{Kind: "BILL", Method: "GET", Status: 200, Source: "upstream",
			Response: json.RawMessage(`{"id": 5, "number": "5", "summ": 1}`)},
			[]string{"bill 5 summ 1", "read through from the upstream"}, []string{"(5)"}},
		{"list cut at 64 KiB", api.JournalRow{Kind: "LIST", Method: "GET", Status: 200,
			Response: json.RawMessage(`"[{\"id\":1},{\"id\":2},{\"id\""`)},
			[]string{"2+ bills"}, nil},
		{"upstream refused", api.JournalRow{Kind: "UPSTREAM_LIST", Client: "upstream", Method: "GET", Status: 0,
			Note: "GET /api/v2/list: dial tcp 127.0.0.1:8481: connect: connection refused"},
			[]string{"upstream", "UPSTREAM_LIST", "  -  ", "connection refused"}, []string{"not a list"}},
		{"upstream 503", api.JournalRow{Kind: "UPSTREAM_BILL", Client: "upstream", Method: "GET", Status: 503,
			Response: json.RawMessage(`{"errors":[{"code":3001,"reason":"down for maintenance"}]}`),
			Note:     `GET /api/v2/bill/byid/7: 503: {"errors":[{"code":3001,"reason":"down for maintenance"}]}`},
			[]string{" 503 ", "down for maintenance"}, nil},
		{"state change", api.JournalRow{Kind: "UPSTREAM_STATE", Client: "upstream", Note: "online -> offline after 2h0m0s: connection refused"},
			[]string{"UPSTREAM_STATE", "online -> offline after 2h0m0s"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.row.Time = at
			if tt.row.Client == "" {
				tt.row.Client = "127.0.0.1"
			}
			var buf bytes.Buffer
			printJournalLines(&buf, []api.JournalRow{tt.row})
			lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("want a header and one line:\n%s", buf.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(lines[1], w) {
					t.Errorf("lacks %q:\n%s", w, buf.String())
				}
			}
			for _, w := range tt.not {
				if strings.Contains(lines[1], w) {
					t.Errorf("has %q:\n%s", w, buf.String())
				}
			}
			if strings.Count(lines[1], "down for maintenance") > 1 {
				t.Errorf("the reason twice:\n%s", lines[1])
			}
		})
	}
}

// TestJournalFullShowsStatus: in the cloud-style view a receipt's empty
// answer shows as its status, not an empty cell.
func TestJournalFullShowsStatus(t *testing.T) {
	var buf bytes.Buffer
	printJournalRow(&buf, api.JournalRow{Time: time.Now(), Client: "127.0.0.1", Device: "reg-1", Kind: "RECEIPT", Method: "POST",
		Path: "/api/v2/receipts", Status: 200, Source: "store", Request: json.RawMessage(`{"id":"e","data":{}}`)})
	if !strings.Contains(buf.String(), "| Ответ (RECEIPT) | 200 |") {
		t.Errorf("receipt answer:\n%s", buf.String())
	}
}
