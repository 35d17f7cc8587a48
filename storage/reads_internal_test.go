package storage

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
)

// The read paths of the stored formats, measured: the journal pager reads
// blocks in place, the copying journal reader and the bill queries decode
// what they return. Run with -benchmem: the allocations are the point.

var benchT0 = time.Date(2026, 3, 22, 9, 0, 0, 0, time.UTC)

// benchJournal is a store with n journal entries in blocks of 500: lists
// and bills answered from the store, and every 20th entry a receipt kept
// in the receipts bucket and named by the entry, as the daemon writes them.
func benchJournal(b *testing.B, n int) *Store {
	b.Helper()
	s := openTemp(b)
	kinds := []string{"LIST", "BILL"}
	var batch []shopbridge.JournalEntry
	for i := range n {
		e := shopbridge.JournalEntry{Time: benchT0.Add(time.Duration(i) * time.Second), Client: fmt.Sprintf("192.168.1.%d", 20+i%3),
			Device: fmt.Sprintf("dev-%d", i%3), Kind: kinds[i%2], Method: "GET", Path: "/api/v2/list", Status: 200,
			RespBody: []byte(`[{"id":49040,"summ":4604.04,"customername":"Александр Сизов"}]`), Source: "store"}
		if e.Kind == "BILL" {
			e.Path, e.RespBody = fmt.Sprintf("/api/v2/bill/byid/%d", i%50), []byte(fmt.Sprintf(`{"id":%d,"number":"N-%d"}`, i%50, i%50))
		}
		if i%20 == 0 {
			id := fmt.Sprintf("ev-%06d", i)
			batch = append(batch, e) // keep the poll, add the receipt
			e = shopbridge.JournalEntry{Time: e.Time, Client: e.Client, Device: e.Device, Kind: "RECEIPT", Method: "POST",
				Path: "/api/v2/receipts", Status: 200, ReqReceipt: id, Source: "store"}
			if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: id, Type: "SELL",
				Body: []byte(`{"id":"` + id + `","data":{"type":"SELL","positions":[{"productName":"Кресло Кларк"}]}}`)}); err != nil {
				b.Fatal(err)
			}
		}
		batch = append(batch, e)
		if len(batch) >= 500 || i == n-1 {
			if err := s.AppendJournal(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return s
}

func BenchmarkJournalPage(b *testing.B) {
	s := benchJournal(b, 20000)
	for _, c := range []struct {
		name string
		q    JournalPageQuery
	}{
		{"newest", JournalPageQuery{}},
		{"receipts", JournalPageQuery{Kind: "RECEIPT"}},
		{"text-nomatch", JournalPageQuery{Text: "nomatch"}},        // every entry, body and receipt searched
		{"device-nomatch", JournalPageQuery{Terminal: "dev-none"}}, // every entry looked at, none copied
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.JournalPage(c.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJournalEntry(b *testing.B) {
	s := benchJournal(b, 20000)
	for b.Loop() {
		if _, err := s.JournalEntry(10001); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJournal is the copying reader (GET /journal, pruning's decode).
func BenchmarkJournal(b *testing.B) {
	s := benchJournal(b, 20000)
	for b.Loop() {
		if _, err := s.Journal(JournalQuery{Limit: 1000}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBills is a store with n bills on one day, every third settled.
func benchBills(b *testing.B, n int) *Store {
	b.Helper()
	s := openTemp(b)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"id":%d,"date":"2026-03-22 %02d:%02d:00","summ":4604.04,"number":"N-%d","customer":{"name":"Александр Сизов"},"products":[{"id":15446,"price":9093,"prodname":"Кресло компьютерное Кларк велюр серый","quantity":1}]}`,
			1000+i, 8+i/60%12, i%60, i)
	}
	if _, errs, err := s.PutBills(bodies, benchT0); err != nil {
		b.Fatal(err)
	} else {
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := 0; i < n; i += 3 {
		id := fmt.Sprint(1000 + i)
		if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: "ev-" + id, Body: []byte(`{"id":"ev-` + id + `"}`), Type: "SELL", BillID: id}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkDayBills(b *testing.B) {
	s := benchBills(b, 600)
	for _, c := range []struct {
		name string
		q    DayBillsQuery
	}{
		{"page", DayBillsQuery{Date: "2026-03-22"}},
		{"page+counts", DayBillsQuery{Date: "2026-03-22", Counts: true}},
		{"settled", DayBillsQuery{Date: "2026-03-22", State: BillSettled, Limit: 20}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.DayBills(c.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenBills(b *testing.B) {
	s := benchBills(b, 600)
	for b.Loop() {
		if _, _, err := s.OpenBills("", 100); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBillRead(b *testing.B) {
	s := benchBills(b, 600)
	b.Run("Bill", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Bill("1300"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("readBillBody", func(b *testing.B) { // BillBody's miss: the file, not the cache
		for b.Loop() {
			if _, err := s.readBillBody("1300"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("BillReceipts", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.BillReceipts("1300"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
