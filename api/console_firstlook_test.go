package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

// TestConsoleOpenBills: view=open answers what the register's list
// answers, in the same order, paged; a receipt settling a bill takes it
// off; empty answers say why.
func TestConsoleOpenBills(t *testing.T) {
	now := time.Date(2026, 3, 22, 20, 0, 0, 0, time.UTC)
	t.Run("empty: standalone", func(t *testing.T) {
		ts := newServer(t, api.Config{Timezone: msk, Now: func() time.Time { return now }})
		var b api.ConsoleBills
		consoleGet(t, ts, "/admin/api/bills?view=open", &b)
		if b.View != "open" || len(b.Bills) != 0 || b.Empty != "bills.empty_standalone" {
			t.Errorf("standalone, no bills: %+v", b)
		}
	})
	t.Run("empty: never synced", func(t *testing.T) {
		ts := newServer(t, api.Config{Timezone: msk, Now: func() time.Time { return now },
			BriefStatus: func() api.Status { return api.Status{Upstream: shopbridge.UpstreamOffline} }})
		var b api.ConsoleBills
		consoleGet(t, ts, "/admin/api/bills?view=open", &b)
		if b.Empty != "bills.empty_never_synced" {
			t.Errorf("an upstream never pulled from: %+v", b)
		}
	})

	ts := newServer(t, api.Config{Timezone: msk, Now: func() time.Time { return now },
		BriefStatus: func() api.Status { return api.Status{Upstream: shopbridge.UpstreamOnline} }})
	seed(t, ts.store)
	want, err := ts.store.List(storage.ListQuery{})
	if err != nil || len(want) < 3 {
		t.Fatalf("the seed's open list: %d %v", len(want), err)
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		var b api.ConsoleBills
		consoleGet(t, ts, "/admin/api/bills?view=open&limit=2&after="+after, &b)
		if b.View != "open" || b.Open != len(want) || b.Empty != "" {
			t.Fatalf("page %d: %+v", page, b)
		}
		for _, x := range b.Bills {
			got = append(got, x.ID)
		}
		if after = b.Next; after == "" {
			break
		}
		if page > 10 {
			t.Fatal("paging does not end")
		}
	}
	var ids []string
	for _, s := range want {
		ids = append(ids, s.ID)
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("view=open pages give %v, the register's list %v", got, ids)
	}
	// Settle every open bill: the view is empty, and says they are settled.
	for i, id := range ids {
		if _, err := ts.store.AcceptReceipt(&shopbridge.Receipt{EventID: fmt.Sprint("st-", i), Body: []byte(`{}`), Type: "SELL", BillID: id}); err != nil {
			t.Fatal(err)
		}
	}
	var b api.ConsoleBills
	consoleGet(t, ts, "/admin/api/bills?view=open", &b)
	if len(b.Bills) != 0 || b.Empty != "bills.empty_all_settled" || b.Open != 0 {
		t.Errorf("all settled: %+v", b)
	}
	consoleGet(t, ts, "/admin/api/bills?date=2026-01-01", &b)
	if b.View != "date" || b.Empty != "bills.empty_day" {
		t.Errorf("a day without bills: %+v", b)
	}
	consoleGet(t, ts, "/admin/api/bills?q=nothing-like-it", &b)
	if b.View != "search" || b.Empty != "bills.empty_search" {
		t.Errorf("a search finding nothing: %+v", b)
	}
	wantError(t, "bad view", ts.get(t, "/admin/api/bills?view=week"), 400, api.CodeInvalidValue, "view")
	wantError(t, "bad open cursor", ts.get(t, "/admin/api/bills?view=open&after=%%%"), 400, api.CodeSyntax, "query")
}

// TestConsoleOutbox: the overview carries the oldest waiting receipts
// (at most 20) with age, register, bill and last error; the outbox
// endpoint pages through all of them, oldest first.
func TestConsoleOutbox(t *testing.T) {
	now := time.Date(2026, 3, 22, 20, 0, 0, 0, time.UTC)
	ts := newServer(t, api.Config{Timezone: msk, Now: func() time.Time { return now }})
	for i := range 30 {
		id := fmt.Sprintf("w%02d", i)
		if _, err := ts.store.AcceptReceipt(&shopbridge.Receipt{EventID: id, Body: []byte(`{}`), Type: "SELL", BillID: "49024", DeviceID: "dev-7",
			ReceivedAt: now.Add(-time.Duration(60-i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.store.MarkFailed("w00", "POST /api/v2/receipts: connection refused"); err != nil {
		t.Fatal(err)
	}
	var o api.Overview
	consoleGet(t, ts, "/admin/api/overview", &o)
	if o.Outbox != 30 || len(o.OutboxReceipts) != 20 {
		t.Fatalf("overview: outbox %d, %d listed, want 30 and 20", o.Outbox, len(o.OutboxReceipts))
	}
	first := o.OutboxReceipts[0]
	if first.EventID != "w00" || first.AgeS != 3600 || first.Device != "dev-7" || first.BillID != "49024" || first.Attempts != 1 ||
		!strings.Contains(first.LastError, "connection refused") || first.ReceivedAt.Local != "2026-03-22 22:00:00" {
		t.Errorf("the oldest = %+v", first)
	}
	for i, r := range o.OutboxReceipts {
		if r.EventID != fmt.Sprintf("w%02d", i) {
			t.Errorf("overview row %d is %s: not oldest first", i, r.EventID)
		}
	}
	var all []string
	after := ""
	for range 10 {
		var p api.ConsoleOutbox
		consoleGet(t, ts, "/admin/api/console/outbox?limit=12&after="+after, &p)
		if p.Total != 30 {
			t.Fatalf("total %d", p.Total)
		}
		for _, r := range p.Receipts {
			all = append(all, r.EventID)
		}
		if p.Next == 0 {
			break
		}
		after = fmt.Sprint(p.Next)
	}
	if len(all) != 30 || all[0] != "w00" || all[29] != "w29" {
		t.Errorf("paged outbox = %v", all)
	}
	wantError(t, "bad after", ts.get(t, "/admin/api/console/outbox?after=x"), 400, api.CodeInvalidValue, "after")
}

// TestConsoleJournalPolls: polls=hide leaves out the daemon's polls; a
// folded poll's row carries its repeat count and last time.
func TestConsoleJournalPolls(t *testing.T) {
	t0 := time.Date(2026, 3, 22, 18, 0, 0, 0, time.UTC)
	ts := newServer(t, api.Config{Timezone: msk, Now: func() time.Time { return t0.Add(time.Hour) }})
	for i := range 5 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		if err := ts.store.AppendJournal([]shopbridge.JournalEntry{
			{Time: at, Client: "upstream", Kind: "UPSTREAM_LIST", Method: "GET", Path: "/api/v2/list", Status: 200, RespBody: []byte(`[]`), Source: "upstream"},
			{Time: at.Add(time.Second), Client: "192.168.1.20", Kind: "LIST", Method: "GET", Path: "/api/v2/list", Status: 200, RespBody: []byte(`[]`), Source: "store"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	var p api.ConsoleJournalPage
	consoleGet(t, ts, "/admin/api/journal/page?polls=hide", &p)
	if len(p.Rows) != 5 {
		t.Errorf("polls=hide: %d rows, want the register's 5", len(p.Rows))
	}
	consoleGet(t, ts, "/admin/api/journal/page?kind=UPSTREAM_LIST", &p)
	if len(p.Rows) != 1 || p.Rows[0].Repeats != 4 || p.Rows[0].LastTime == nil || p.Rows[0].LastTime.Local != "2026-03-22 21:00:40" {
		t.Errorf("the folded poll: %+v", p.Rows)
	}
	var rows []api.JournalRow
	if a := ts.get(t, "/admin/api/journal?kind=UPSTREAM_LIST"); a.status != 200 || json.Unmarshal(a.body, &rows) != nil {
		t.Fatalf("admin/api/journal: %d %s", a.status, a.body)
	}
	if len(rows) != 1 || rows[0].Repeats != 4 || rows[0].LastTime == nil || !rows[0].LastTime.Equal(t0.Add(40*time.Second)) {
		t.Errorf("admin/api/journal's folded poll: %+v", rows)
	}
	wantError(t, "bad polls", ts.get(t, "/admin/api/journal/page?polls=maybe"), 400, api.CodeInvalidValue, "polls")
}
