package storage_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/internal/storetest"
	"github.com/shopbridge/shopbridge/storage"
	bolt "go.etcd.io/bbolt"
)

func putConsoleBill(t *testing.T, s *storage.Store, id int, date, number string) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%d,"date":%q,"summ":100.5,"number":%q,"customer":{"name":"Илья"}}`, id, date, number)
	if _, _, err := s.PutBill([]byte(body), journalT0); err != nil {
		t.Fatal(err)
	}
}

func sellFor(t *testing.T, s *storage.Store, eventID, billID, typ string) {
	t.Helper()
	if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: eventID, Body: []byte(`{"id":"` + eventID + `"}`),
		Type: typ, BillID: billID, ReceivedAt: journalT0}); err != nil {
		t.Fatal(err)
	}
}

func TestDayBills(t *testing.T) {
	s := storetest.MustOpen(t)
	for i := range 30 {
		putConsoleBill(t, s, 1000+i, fmt.Sprintf("2026-03-22 %02d:%02d:00", 8+i/6, i%6*10), fmt.Sprintf("N%d", 1000+i))
	}
	putConsoleBill(t, s, 999, "2026-03-21 23:59:59", "N999")
	putConsoleBill(t, s, 2000, "2026-03-23 00:00:00", "N2000")
	for i := range 10 { // 1000..1009 settled, 1000..1002 paid twice
		sellFor(t, s, fmt.Sprint("a", i), fmt.Sprint(1000+i), "SELL")
		if i < 3 {
			sellFor(t, s, fmt.Sprint("b", i), fmt.Sprint(1000+i), "SELL")
		}
	}

	d, err := s.DayBills(storage.DayBillsQuery{Date: "2026-03-22", Limit: 12, Counts: true})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(d.Counts) != "map[all:30 open:20 paid_twice:3 settled:7]" {
		t.Errorf("counts = %v", d.Counts)
	}
	if len(d.Bills) != 12 || d.Bills[0].Summary.ID != "1029" || d.Bills[11].Summary.ID != "1018" || d.Next == "" {
		t.Fatalf("first page: %d bills from %s, next %q", len(d.Bills), d.Bills[0].Summary.ID, d.Next)
	}
	var ids []string
	q := storage.DayBillsQuery{Date: "2026-03-22", Limit: 12}
	for {
		d, err := s.DayBills(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range d.Bills {
			ids = append(ids, b.Summary.ID)
		}
		if d.Next == "" {
			break
		}
		q.After = d.Next
	}
	if len(ids) != 30 || ids[0] != "1029" || ids[29] != "1000" {
		t.Errorf("paged ids = %v", ids)
	}

	for state, want := range map[string]string{storage.BillPaidTwice: "[1002 1001 1000]", storage.BillSettled: "[1009 1008 1007 1006 1005 1004 1003]"} {
		d, err := s.DayBills(storage.DayBillsQuery{Date: "2026-03-22", State: state})
		var got []string
		for _, b := range d.Bills {
			got = append(got, b.Summary.ID)
			if storage.BillState(b) != state {
				t.Errorf("bill %s in %s list has state %s", b.Summary.ID, state, storage.BillState(b))
			}
		}
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("%s bills = %v, %v; want %s", state, got, err, want)
		}
	}
	if d, err := s.DayBills(storage.DayBillsQuery{Date: "2026-03-20", Counts: true}); err != nil || len(d.Bills) != 0 || d.Counts["all"] != 0 {
		t.Errorf("a day with no bills: %+v, %v", d, err)
	}
	if _, err := s.DayBills(storage.DayBillsQuery{Date: "2026-03-22", After: "!!"}); shopbridge.ErrorKind(err) != shopbridge.EVALUE {
		t.Errorf("a bad cursor = %v, want EVALUE", err)
	}

	t.Run("find by id or number prefix", func(t *testing.T) {
		for text, want := range map[string]string{"1005": "[1005]", "N101": "[1019 1018 1017 1016 1015 1014 1013 1012 1011 1010]",
			"N2000": "[2000]", "nope": "[]", "999": "[999]"} {
			bs, err := s.FindBills(text, 0)
			got := []string{}
			for _, b := range bs {
				got = append(got, b.Summary.ID)
			}
			if err != nil || fmt.Sprint(got) != want {
				t.Errorf("FindBills(%q) = %v, %v; want %s", text, got, err, want)
			}
		}
	})
	t.Run("a bill's receipts", func(t *testing.T) {
		sellFor(t, s, "c0", "1000", "PAYBACK")
		rs, err := s.BillReceipts("1000")
		var got []string
		for _, r := range rs {
			got = append(got, r.EventID+":"+r.Type+":"+r.State)
		}
		if err != nil || fmt.Sprint(got) != "[a0:SELL:queued b0:SELL:queued c0:PAYBACK:queued]" {
			t.Errorf("receipts of 1000 = %v, %v", got, err)
		}
		if rs, err := s.BillReceipts("100"); err != nil || len(rs) != 0 {
			t.Errorf("receipts of 100 (a prefix of 1000) = %v, %v", rs, err)
		}
	})
	t.Run("paid twice", func(t *testing.T) {
		bs, err := s.PaidTwiceBills(2)
		if err != nil || len(bs) != 2 || s.PaidTwiceCount() != 3 {
			t.Errorf("PaidTwiceBills(2) = %d, %v; count %d", len(bs), err, s.PaidTwiceCount())
		}
	})
}

func TestSchema3GainsReceiptsByBill(t *testing.T) {
	path := filepath.Join(t.TempDir(), storage.FileName)
	s := storetest.MustOpenAt(t, path)
	putConsoleBill(t, s, 7, "2026-03-22 10:00:00", "N7")
	sellFor(t, s, "e1", "7", "SELL")
	sellFor(t, s, "e2", "", "SELL")
	sellFor(t, s, "e3", "7", "PAYBACK")
	s.Close()
	writeMeta(t, path, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("receipts.bill")); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("3"))
	})
	s = storetest.MustOpenAt(t, path)
	rs, err := s.BillReceipts("7")
	if err != nil || len(rs) != 2 || rs[0].EventID != "e1" || rs[1].EventID != "e3" {
		t.Errorf("receipts of bill 7 after migration = %v, %v", rs, err)
	}
	if got := readMetaOpen(t, s); got != fmt.Sprint(storage.SchemaVersion) {
		t.Errorf("schema after migration = %q", got)
	}
}
