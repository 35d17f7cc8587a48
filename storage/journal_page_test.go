package storage_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/internal/storetest"
	"github.com/shopbridge/shopbridge/storage"
)

// consoleJournal appends n entries a second apart in blocks of blockSize:
// kinds cycle LIST, BILL, RECEIPT; devices cycle dev-0..dev-2; every
// RECEIPT names a stored receipt instead of keeping its bytes, as the
// daemon writes them.
func consoleJournal(t *testing.T, s *storage.Store, n, blockSize int) []shopbridge.JournalEntry {
	t.Helper()
	kinds := []string{"LIST", "BILL", "RECEIPT"}
	var all, batch []shopbridge.JournalEntry
	for i := range n {
		e := shopbridge.JournalEntry{Time: journalT0.Add(time.Duration(i) * time.Second), Client: fmt.Sprintf("192.168.1.%d", 20+i%3),
			Device: fmt.Sprintf("dev-%d", i%3), Kind: kinds[i%3], Method: "GET", Path: "/api/v2/list", Status: 200,
			RespBody: []byte(`[{"id":49040,"summ":4604.04,"customername":"Александр Сизов"}]`), Source: "store"}
		if e.Kind == "BILL" {
			e.Path, e.RespBody = fmt.Sprintf("/api/v2/bill/byid/%d", i), []byte(fmt.Sprintf(`{"id":%d,"number":"N-%d"}`, i, i))
		}
		if e.Kind == "RECEIPT" {
			id := fmt.Sprintf("ev-%04d", i)
			if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: id, Type: "SELL",
				Body: []byte(`{"id":"` + id + `","data":{"type":"SELL","positions":[{"productName":"Кресло Кларк"}]}}`)}); err != nil {
				t.Fatal(err)
			}
			e.Method, e.Path, e.ReqReceipt, e.RespBody = "POST", "/api/v2/receipts", id, nil
		}
		all = append(all, e)
		batch = append(batch, e)
		if len(batch) == blockSize || i == n-1 {
			if err := s.AppendJournal(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return all
}

// pageAll follows Next cursors until the query is done and returns the
// sequence numbers found, and how many requests it took.
func pageAll(t *testing.T, s *storage.Store, q storage.JournalPageQuery) (seqs []uint64, requests int) {
	t.Helper()
	for requests < 10000 {
		p, err := s.JournalPage(q)
		if err != nil {
			t.Fatal(err)
		}
		requests++
		for i, e := range p.Entries {
			if i > 0 && e.Seq >= p.Entries[i-1].Seq {
				t.Fatalf("page not newest first: %d after %d", e.Seq, p.Entries[i-1].Seq)
			}
			seqs = append(seqs, e.Seq)
		}
		if p.Done != (p.Next == 0) {
			t.Fatalf("page Done=%v with Next=%d", p.Done, p.Next)
		}
		if p.Done {
			return seqs, requests
		}
		q.Before = p.Next
	}
	t.Fatal("paging never ended")
	return nil, 0
}

func TestJournalPage(t *testing.T) {
	s := storetest.MustOpen(t)
	if p, err := s.JournalPage(storage.JournalPageQuery{}); err != nil || len(p.Entries) != 0 || !p.Done || p.Total != 0 {
		t.Fatalf("empty journal page = %+v, %v", p, err)
	}
	all := consoleJournal(t, s, 1000, 64)
	want := func(keep func(i int, e shopbridge.JournalEntry) bool) []uint64 {
		var out []uint64
		for i := len(all) - 1; i >= 0; i-- {
			if keep(i, all[i]) {
				out = append(out, uint64(i+1))
			}
		}
		return out
	}
	same := func(t *testing.T, got, want []uint64) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %d seqs %v..., want %d %v...", len(got), head(got), len(want), head(want))
		}
	}

	t.Run("first page is the newest entries, in full", func(t *testing.T) {
		p, err := s.JournalPage(storage.JournalPageQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) != 10 || p.Entries[0].Seq != 1000 || p.Entries[9].Seq != 991 || p.Next != 991 || p.Done || p.Total != 1000 {
			t.Fatalf("page = %d entries from %d, next %d, done %v, total %d", len(p.Entries), p.Entries[0].Seq, p.Next, p.Done, p.Total)
		}
		if p.Scanned != 10 {
			t.Errorf("an unfiltered page looked at %d entries, want 10", p.Scanned)
		}
		e := p.Entries[2] // seq 998, i = 997: a BILL
		if e.Kind != "BILL" || e.Device != "dev-1" || e.Client != "192.168.1.21" || string(e.RespBody) != `{"id":997,"number":"N-997"}` ||
			!e.Time.Equal(all[997].Time) || e.Status != 200 || e.Source != "store" {
			t.Errorf("entry 999 = %+v", e)
		}
		r := p.Entries[1] // seq 999, i = 998: a RECEIPT, its body from the store
		if r.Kind != "RECEIPT" || r.ReqReceipt != "ev-0998" || !strings.Contains(string(r.ReqBody), `"id":"ev-0998"`) {
			t.Errorf("receipt entry = %+v (body %s)", r, r.ReqBody)
		}
	})
	t.Run("paging visits every entry once across blocks", func(t *testing.T) {
		got, _ := pageAll(t, s, storage.JournalPageQuery{Limit: 37})
		same(t, got, want(func(int, shopbridge.JournalEntry) bool { return true }))
	})
	t.Run("a page from the middle starts below the cursor", func(t *testing.T) {
		p, err := s.JournalPage(storage.JournalPageQuery{Before: 500, Limit: 3})
		if err != nil || len(p.Entries) != 3 || p.Entries[0].Seq != 499 || p.Entries[2].Seq != 497 {
			t.Fatalf("page before 500 = %+v, %v", p.Entries, err)
		}
	})
	t.Run("kind", func(t *testing.T) {
		got, _ := pageAll(t, s, storage.JournalPageQuery{Kind: "BILL", Limit: 50})
		same(t, got, want(func(_ int, e shopbridge.JournalEntry) bool { return e.Kind == "BILL" }))
	})
	t.Run("terminal by device or address", func(t *testing.T) {
		got, _ := pageAll(t, s, storage.JournalPageQuery{Terminal: "dev-1"})
		same(t, got, want(func(_ int, e shopbridge.JournalEntry) bool { return e.Device == "dev-1" }))
		got, _ = pageAll(t, s, storage.JournalPageQuery{Terminal: "192.168.1.22"})
		same(t, got, want(func(_ int, e shopbridge.JournalEntry) bool { return e.Device == "dev-2" }))
	})
	t.Run("text finds a receipt by event id, in any case", func(t *testing.T) {
		got, _ := pageAll(t, s, storage.JournalPageQuery{Text: "EV-0419"})
		same(t, got, []uint64{420})
	})
	t.Run("text in a body, ASCII and Cyrillic in any case", func(t *testing.T) {
		got, _ := pageAll(t, s, storage.JournalPageQuery{Text: `"number":"n-77`})
		same(t, got, want(func(i int, e shopbridge.JournalEntry) bool {
			return e.Kind == "BILL" && strings.HasPrefix(fmt.Sprint(i), "77")
		}))
		got, _ = pageAll(t, s, storage.JournalPageQuery{Text: "александр сизов", Kind: "LIST"})
		same(t, got, want(func(_ int, e shopbridge.JournalEntry) bool { return e.Kind == "LIST" }))
		// Receipt bodies live in the receipts bucket; they are searched too.
		got, _ = pageAll(t, s, storage.JournalPageQuery{Text: "КРЕСЛО"})
		same(t, got, want(func(_ int, e shopbridge.JournalEntry) bool { return e.Kind == "RECEIPT" }))
	})
	t.Run("since and until", func(t *testing.T) {
		since, until := journalT0.Add(100*time.Second), journalT0.Add(200*time.Second)
		got, _ := pageAll(t, s, storage.JournalPageQuery{Since: since, Until: until, Limit: 7})
		same(t, got, want(func(_ int, e shopbridge.JournalEntry) bool { return !e.Time.Before(since) && e.Time.Before(until) }))
		p, err := s.JournalPage(storage.JournalPageQuery{Until: until, Limit: 1})
		if err != nil || len(p.Entries) != 1 || p.Entries[0].Seq != 200 {
			t.Fatalf("newest entry before until = %+v, %v", p.Entries, err)
		}
		// until seeks: the first page does not walk the 800 newer entries.
		if p.Scanned > 64 {
			t.Errorf("the first page before until looked at %d entries", p.Scanned)
		}
		got, _ = pageAll(t, s, storage.JournalPageQuery{Until: journalT0})
		same(t, got, nil)
		got, _ = pageAll(t, s, storage.JournalPageQuery{Since: journalT0.Add(time.Hour)})
		same(t, got, nil)
	})
	t.Run("the scan budget answers early with a cursor, and nothing is lost", func(t *testing.T) {
		p, err := s.JournalPage(storage.JournalPageQuery{Text: "ev-0005", Budget: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) != 0 || p.Done || p.Next != 901 || p.Scanned != 100 {
			t.Fatalf("budget-bound page = %d entries, done %v, next %d, scanned %d", len(p.Entries), p.Done, p.Next, p.Scanned)
		}
		got, requests := pageAll(t, s, storage.JournalPageQuery{Text: "ev-0005", Budget: 100})
		same(t, got, []uint64{6})
		if requests != 10 {
			t.Errorf("searching 1000 entries 100 at a time took %d requests, want 10", requests)
		}
	})
	t.Run("the byte budget reads one block more per request, and nothing is lost", func(t *testing.T) {
		p, err := s.JournalPage(storage.JournalPageQuery{Text: "ev-0005", BudgetBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Blocks hold 64 entries: 1000 = 15 * 64 + 40, the newest block has 40.
		if len(p.Entries) != 0 || p.Done || p.Next != 961 || p.Scanned != 40 {
			t.Fatalf("byte-bound page = %d entries, done %v, next %d, scanned %d", len(p.Entries), p.Done, p.Next, p.Scanned)
		}
		got, requests := pageAll(t, s, storage.JournalPageQuery{Text: "ev-0005", BudgetBytes: 1})
		same(t, got, []uint64{6})
		if requests != 16 {
			t.Errorf("16 blocks one at a time took %d requests", requests)
		}
		got, _ = pageAll(t, s, storage.JournalPageQuery{Kind: "LIST", BudgetBytes: 1, Before: 500, Limit: 7})
		same(t, got, want(func(i int, e shopbridge.JournalEntry) bool { return i < 499 && e.Kind == "LIST" }))
	})
	t.Run("tail after a sequence number", func(t *testing.T) {
		p, err := s.JournalPage(storage.JournalPageQuery{After: 990})
		if err != nil || len(p.Entries) != 10 || p.Entries[0].Seq != 1000 || p.Entries[9].Seq != 991 || !p.Done {
			t.Fatalf("tail after 990 = %d entries, done %v, %v", len(p.Entries), p.Done, err)
		}
		if p.Scanned != 10 {
			t.Errorf("tail looked at %d entries, want 10", p.Scanned)
		}
		if p, _ := s.JournalPage(storage.JournalPageQuery{After: 1000}); len(p.Entries) != 0 || !p.Done {
			t.Errorf("tail after the newest = %+v", p)
		}
		p, _ = s.JournalPage(storage.JournalPageQuery{After: 900, Limit: 5, Kind: "LIST"})
		if len(p.Entries) != 5 || p.Entries[0].Seq != 1000 || p.Done {
			t.Errorf("tail with more than a page = %d entries from %d, done %v", len(p.Entries), p.Entries[0].Seq, p.Done)
		}
	})
	t.Run("entry by sequence number", func(t *testing.T) {
		e, err := s.JournalEntry(420)
		if err != nil || e.Seq != 420 || e.ReqReceipt != "ev-0419" || !strings.Contains(string(e.ReqBody), "Кресло") {
			t.Errorf("JournalEntry(420) = %+v, %v", e, err)
		}
		for _, seq := range []uint64{0, 1001, 1 << 40} {
			if _, err := s.JournalEntry(seq); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
				t.Errorf("JournalEntry(%d) = %v, want not found", seq, err)
			}
		}
	})
	t.Run("pruned entries are gone from pages and by sequence number", func(t *testing.T) {
		if _, err := s.PruneJournal(journalT0.Add(time.Hour), time.Hour-100*time.Second, 0, 1<<20); err != nil {
			t.Fatal(err)
		}
		got, _ := pageAll(t, s, storage.JournalPageQuery{Limit: 100})
		same(t, got, want(func(i int, _ shopbridge.JournalEntry) bool { return i >= 100 }))
		if _, err := s.JournalEntry(50); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
			t.Errorf("JournalEntry of a pruned entry = %v", err)
		}
	})
}

func head(s []uint64) []uint64 { return s[:min(len(s), 5)] }
