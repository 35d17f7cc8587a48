package storage_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

var receiptTime = time.Date(2026, 3, 22, 18, 42, 30, 0, time.UTC)

// receipt builds a receipt event as api would hand it to the store.
func receipt(eventID, typ, billID, method string) *shopbridge.Receipt {
	extras := ""
	if billID != "" || method != "" {
		extras = fmt.Sprintf(`, "extras": {"billId": %q, "settlementMethod": %q}`, billID, method)
	}
	body := fmt.Sprintf(`{"id": %q, "data": {"id": "4387ae61-6f91-49ab-b693-d2ed8eeb903f", "type": %q, "totalAmount": 4604.04, "deviceId": "20251202-AA8B-407D-80BF-6266DA5332CF"%s}, "type": "ReceiptCreated", "version": 2}`,
		eventID, typ, extras)
	return &shopbridge.Receipt{
		EventID: eventID, Body: []byte(body), ReceivedAt: receiptTime,
		Headers: map[string]string{"X-Evotor-Device-Uuid": "20251202-AA8B-407D-80BF-6266DA5332CF", "X-Evotor-Store-Uuid": "20251202-D77B-406B-80A6-EBCECD5C3536"},
		Type:    typ, BillID: billID, SettlementMethod: method, DeviceID: "20251202-AA8B-407D-80BF-6266DA5332CF",
	}
}

func eventIDs(rs []*shopbridge.Receipt) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.EventID)
	}
	return out
}

func TestAcceptReceiptDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), storage.FileName)
	s, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := receipt("77fb892f-87ce-43f1-b998-48c848b3073f", "SELL", "49040", "FullSettlement")
	r.Body = append(r.Body[:len(r.Body)-1], []byte(`, "name": "\u0418\u043b\u044c\u044f \"Q\" 🙂", "url": "http:\/\/x", "mark": "01046\u001d93ab"}`)...)
	dup, err := s.AcceptReceipt(r)
	if err != nil || dup {
		t.Fatalf("AcceptReceipt: dup=%v err=%v", dup, err)
	}
	select {
	case <-s.Notify():
	default:
		t.Error("no notification for a new receipt")
	}
	// Closed right after the answer: a new process sees it.
	s.Close()
	s = storetest.MustOpenAt(t, path)
	got, err := s.Receipt(r.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, r.Body) {
		t.Errorf("body after reopen:\n%s\nwant\n%s", got.Body, r.Body)
	}
	if got.State != shopbridge.ReceiptQueued || got.Seq == 0 || got.Type != "SELL" || got.BillID != "49040" ||
		got.SettlementMethod != "FullSettlement" || got.DeviceID != r.DeviceID || !got.ReceivedAt.Equal(receiptTime) {
		t.Errorf("receipt after reopen = %+v", got)
	}
	if got.Headers["X-Evotor-Store-Uuid"] != "20251202-D77B-406B-80A6-EBCECD5C3536" || len(got.Headers) != 2 {
		t.Errorf("headers after reopen = %v", got.Headers)
	}
	out, _ := s.Outbox(0, 0)
	if !slices.Equal(eventIDs(out), []string{r.EventID}) {
		t.Errorf("outbox after reopen = %v", eventIDs(out))
	}
}

func TestAcceptReceiptDuplicateAndConflict(t *testing.T) {
	s := storetest.MustOpen(t)
	r := receipt("ev-1", "SELL", "", "")
	if dup, err := s.AcceptReceipt(r); err != nil || dup {
		t.Fatalf("first: dup=%v err=%v", dup, err)
	}
	<-s.Notify()
	commits := s.Commits()
	again := receipt("ev-1", "SELL", "", "")
	again.ReceivedAt = receiptTime.Add(time.Minute)
	if dup, err := s.AcceptReceipt(again); err != nil || !dup {
		t.Errorf("same bytes again: dup=%v err=%v, want dup", dup, err)
	}
	select {
	case <-s.Notify():
		t.Error("a duplicate notified the outbox")
	default:
	}

	other := receipt("ev-1", "PAYBACK", "", "")
	dup, err := s.AcceptReceipt(other)
	if dup || shopbridge.ErrorKind(err) != shopbridge.ECONFLICT || shopbridge.ErrorSubject(err) != "id" {
		t.Errorf("other bytes, same id: dup=%v err=%v, want ECONFLICT about id", dup, err)
	}
	got, err := s.Receipt("ev-1")
	if err != nil || !bytes.Equal(got.Body, r.Body) || !got.ReceivedAt.Equal(receiptTime) {
		t.Errorf("receipt after duplicate and conflict = %+v, %v; want the first", got, err)
	}
	out, _ := s.Outbox(0, 0)
	if len(out) != 1 {
		t.Errorf("outbox holds %d receipts, want 1", len(out))
	}
	all, _ := s.Receipts(0)
	if len(all) != 1 {
		t.Errorf("store holds %d receipts, want 1", len(all))
	}
	t.Logf("duplicate and conflict took %d commits", s.Commits()-commits)
}

func TestReceiptsSettleBills(t *testing.T) {
	tests := []struct {
		name     string
		receipts [][3]string // type, bill, settlement method
		open     bool
		twice    bool
	}{
		{"sell, full settlement", [][3]string{{"SELL", "1", "FullSettlement"}}, false, false},
		{"sell, no method", [][3]string{{"SELL", "1", ""}}, false, false},
		{"full prepayment", [][3]string{{"SELL", "1", "FullPrepayment"}}, true, false},
		{"partial prepayment", [][3]string{{"SELL", "1", "PartialPrepayment"}}, true, false},
		{"advance payment", [][3]string{{"SELL", "1", "AdvancePayment"}}, true, false},
		{"payback reopens", [][3]string{{"SELL", "1", ""}, {"PAYBACK", "1", ""}}, true, false},
		{"payback of an open bill", [][3]string{{"PAYBACK", "1", ""}}, true, false},
		{"other bill", [][3]string{{"SELL", "2", ""}}, true, false},
		{"no bill", [][3]string{{"SELL", "", ""}}, true, false},
		{"unknown bill", [][3]string{{"SELL", "999", ""}}, true, false},
		{"other type", [][3]string{{"BUY", "1", ""}}, true, false},
		{"paid twice", [][3]string{{"SELL", "1", ""}, {"SELL", "1", "FullSettlement"}}, false, true},
		{"paid, refunded, paid", [][3]string{{"SELL", "1", ""}, {"PAYBACK", "1", ""}, {"SELL", "1", ""}}, false, false},
		{"prepaid then settled", [][3]string{{"SELL", "1", "FullPrepayment"}, {"SELL", "1", "FullSettlement"}}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storetest.MustOpen(t)
			t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
			sums := []shopbridge.BillSummary{summary(t, "1", "2026-03-22 10:00:00", "N-1"), summary(t, "2", "2026-03-22 09:00:00", "N-2")}
			if _, err := s.ApplyList(sums, storage.ListAll, t0); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.PutBill(billBody("1", "2026-03-22 10:00:00", "N-1"), t0); err != nil {
				t.Fatal(err)
			}
			for i, r := range tt.receipts {
				settle(t, s, fmt.Sprintf("ev-%d", i), r[0], r[1], r[2])
			}
			list := mustList(t, s, storage.ListQuery{})
			if open := strings.HasPrefix(list, "[1"); open != tt.open {
				t.Errorf("list = %s; bill 1 open %v, want %v", list, open, tt.open)
			}
			b, err := s.Bill("1")
			if err != nil {
				t.Fatal(err)
			}
			if b.Settled == tt.open || b.PaidTwice != tt.twice {
				t.Errorf("bill 1: settled=%v paidTwice=%v, want settled=%v paidTwice=%v", b.Settled, b.PaidTwice, !tt.open, tt.twice)
			}
			twice, _ := s.PaidTwice()
			if (len(twice) == 1 && twice[0] == "1") != tt.twice {
				t.Errorf("PaidTwice() = %v", twice)
			}
			all, _ := s.Receipts(0)
			if len(all) != len(tt.receipts) {
				t.Errorf("%d receipts kept, want %d", len(all), len(tt.receipts))
			}
		})
	}
}

func TestOutbox(t *testing.T) {
	s := storetest.MustOpen(t)
	for _, id := range []string{"e1", "e2", "e3", "e4", "e5"} {
		r := receipt(id, "SELL", "", "")
		r.ReceivedAt = receiptTime.Add(time.Duration(len(id)) * time.Second)
		if id == "e1" {
			r.ReceivedAt = receiptTime
		}
		settleReceipt(t, s, r)
	}
	out, err := s.Outbox(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(eventIDs(out), []string{"e1", "e2", "e3", "e4", "e5"}) {
		t.Fatalf("outbox = %v, want acceptance order", eventIDs(out))
	}
	for i := 1; i < len(out); i++ {
		if out[i].Seq <= out[i-1].Seq {
			t.Errorf("sequence not increasing: %d then %d", out[i-1].Seq, out[i].Seq)
		}
	}
	if page, _ := s.Outbox(out[1].Seq, 2); !slices.Equal(eventIDs(page), []string{"e3", "e4"}) {
		t.Errorf("Outbox(after e2, 2) = %v", eventIDs(page))
	}
	if !s.OldestQueued().Equal(receiptTime) {
		t.Errorf("OldestQueued = %v, want %v", s.OldestQueued(), receiptTime)
	}

	delivered := receiptTime.Add(time.Hour)
	if err := s.MarkDelivered("e1", delivered); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed("e2", "connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed("e2", "503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	if err := s.Park("e3", `400 {"errors":[{"code":2002}]}`); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Outbox(0, 0); !slices.Equal(eventIDs(got), []string{"e2", "e4", "e5"}) {
		t.Errorf("outbox = %v, want [e2 e4 e5]", eventIDs(got))
	}
	if got, _ := s.Parked(); !slices.Equal(eventIDs(got), []string{"e3"}) || got[0].LastError != `400 {"errors":[{"code":2002}]}` {
		t.Errorf("parked = %v", got)
	}
	r1, _ := s.Receipt("e1")
	if r1.State != shopbridge.ReceiptDelivered || !r1.DeliveredAt.Equal(delivered) || r1.Attempts != 1 {
		t.Errorf("delivered receipt = %+v", r1)
	}
	r2, _ := s.Receipt("e2")
	if r2.State != shopbridge.ReceiptQueued || r2.Attempts != 2 || r2.LastError != "503 Service Unavailable" {
		t.Errorf("failed receipt = %+v", r2)
	}
	if !s.OldestQueued().Equal(out[1].ReceivedAt) {
		t.Errorf("OldestQueued = %v, want e2's", s.OldestQueued())
	}

	// Retry puts a parked receipt back at its old place.
	if err := s.Retry("e2"); shopbridge.ErrorKind(err) != shopbridge.ECONFLICT {
		t.Errorf("Retry of a queued receipt = %v, want ECONFLICT", err)
	}
	if err := s.Retry("nope"); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
		t.Errorf("Retry of an unknown receipt = %v, want ENOTFOUND", err)
	}
	for len(s.Notify()) > 0 {
		<-s.Notify()
	}
	if err := s.Retry("e3"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Notify():
	default:
		t.Error("Retry did not notify the outbox")
	}
	if got, _ := s.Outbox(0, 0); !slices.Equal(eventIDs(got), []string{"e2", "e3", "e4", "e5"}) {
		t.Errorf("outbox after retry = %v, want [e2 e3 e4 e5]", eventIDs(got))
	}
	if got, _ := s.Parked(); len(got) != 0 {
		t.Errorf("parked after retry = %v", eventIDs(got))
	}
	for _, id := range []string{"e2", "e3", "e4", "e5"} {
		if err := s.MarkDelivered(id, delivered); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Outbox(0, 0); len(got) != 0 {
		t.Errorf("outbox after delivering all = %v", eventIDs(got))
	}
	if !s.OldestQueued().IsZero() {
		t.Errorf("OldestQueued of an empty outbox = %v", s.OldestQueued())
	}
	if err := s.MarkDelivered("nope", delivered); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
		t.Errorf("MarkDelivered of an unknown receipt = %v", err)
	}
	if all, _ := s.Receipts(2); !slices.Equal(eventIDs(all), []string{"e5", "e4"}) {
		t.Errorf("Receipts(2) = %v, want the newest two", eventIDs(all))
	}
}

func settleReceipt(t *testing.T, s *storage.Store, r *shopbridge.Receipt) {
	t.Helper()
	if _, err := s.AcceptReceipt(r); err != nil {
		t.Fatal(err)
	}
}

// TestRetryAnsweredOnlyWhenDurable: a register that sends a receipt again
// while the commit storing it is still syncing must not hear that it is
// stored before that commit is on disk. bbolt shows a commit to readers
// once it has written the meta page, before the fdatasync that makes it
// durable; a retry answered from what a reader sees could be acknowledged
// and then lost to a power cut. The retry here comes the moment the
// receipt is readable; Commits counts only commits whose sync has ended.
func TestRetryAnsweredOnlyWhenDurable(t *testing.T) {
	s := storetest.MustOpen(t)
	for i := range 50 {
		r := receipt(fmt.Sprintf("ev-%d", i), "SELL", "", "")
		before := s.Commits()
		first := make(chan error, 1)
		go func() {
			_, err := s.AcceptReceipt(r)
			first <- err
		}()
		for {
			if _, err := s.Receipt(r.EventID); err == nil {
				break
			}
		}
		dup, err := s.AcceptReceipt(receipt(r.EventID, "SELL", "", ""))
		synced := s.Commits() > before
		if err != nil || !dup {
			t.Fatalf("retry of %s: dup=%v err=%v, want a duplicate", r.EventID, dup, err)
		}
		if !synced {
			t.Fatalf("retry of %s was answered as stored before the commit that stores it had synced (attempt %d)", r.EventID, i+1)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	}
}
