package hotpath

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/storage"
)

func openStore(tb testing.TB) (*storage.Store, []byte, string) {
	tb.Helper()
	st, err := storage.Open(filepath.Join(tb.TempDir(), storage.FileName), storage.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	raw := crmsim.DefaultData().Bills[0]
	b, _, err := st.PutBill(raw, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return st, b.Body, b.Summary.ID
}

// BenchmarkAppendJournal is the journal cost of one bill/byid answer: an
// entry carrying the bill's bytes, appended in batches as the daemon's
// journal writer does (each batch one commit with fsync). same: every entry
// carries the same bill (as under wrk); distinct: each a different one.
func BenchmarkAppendJournal(b *testing.B) {
	bills := crmsim.Generate(2048, time.Now()).Bills
	for _, bodies := range []string{"same", "distinct"} {
		for _, batch := range []int{64, 512, 2048} {
			b.Run(fmt.Sprintf("bodies=%s/batch=%d", bodies, batch), func(b *testing.B) {
				st, body, id := openStore(b)
				entries := make([]shopbridge.JournalEntry, batch)
				var size int
				for i := range entries {
					if bodies == "distinct" {
						body = bills[i]
					}
					size += len(body)
					entries[i] = shopbridge.JournalEntry{Time: time.Now(), Client: "127.0.0.1", Kind: "BILL", Method: "GET",
						Path: "/api/v2/bill/byid/" + id, Status: 200, RespBody: body, Duration: time.Millisecond, Source: "store"}
				}
				b.SetBytes(int64(size / batch))
				b.ReportAllocs()
				b.ResetTimer()
				for done := 0; done < b.N; done += batch {
					n := min(batch, b.N-done)
					if err := st.AppendJournal(entries[:n]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBillBody is the store read behind every bill/byid.
func BenchmarkBillBody(b *testing.B) {
	st, _, id := openStore(b)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = st.BillBody(buf[:0], id)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseReceipt is the parse every POST /api/v2/receipts makes of
// a receipt of about 1 KiB (the make bench poster's).
func BenchmarkParseReceipt(b *testing.B) {
	body := []byte(`{"id":"bench-1","timestamp":1764230400000,"type":"ReceiptCreated","data":{"type":"SELL","deviceId":"bench-register-01","extras":{"billId":"1000001"},` +
		`"positions":[{"productName":"Шу пуэр «Вековые традиции», ЧАЁК, 200 грамм","quantity":50,"price":13.05,"sum":652.5,"tax":{"type":"VAT_5"}},` +
		`{"productName":"Лампа настольная Moderli V11277-1T Mykke","quantity":1,"price":1790,"sum":1790,"tax":{"type":"VAT_22"}}],` +
		`"payments":[{"type":"CARD","sum":2442.5}],"totalAmount":2442.5,"storeId":"20231120-0000-4000-8000-000000000001"}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := shopbridge.ParseReceipt(body); err != nil {
			b.Fatal(err)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing: what is left of a
// request's cost is the handler's own, net/http excluded.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

type discardJournal struct{}

func (discardJournal) Record(shopbridge.JournalEntry) {}

// BenchmarkServeBillByID is shopbridge's own work in one bill/byid on top of
// what a bare net/http handler does: the address check, the router, the
// store read, metrics and building the journal entry (journal=entry; the
// daemon's writer then queues it) or none of it (journal=none).
func BenchmarkServeBillByID(b *testing.B) {
	for _, journal := range []string{"none", "entry"} {
		b.Run("journal="+journal, func(b *testing.B) {
			st, _, id := openStore(b)
			cfg := api.Config{Store: st}
			if journal == "entry" {
				cfg.Journal = discardJournal{}
			}
			srv := api.New(cfg)
			req := httptest.NewRequest(http.MethodGet, "/api/v2/bill/byid/"+id, nil)
			req.RemoteAddr = "192.168.1.20:51234"
			req.Header.Set("X-Evotor-Device-Uuid", "20251202-AA8B-407D-80BF-000000000001")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				srv.ServeHTTP(w, req)
			}
		})
	}
}
