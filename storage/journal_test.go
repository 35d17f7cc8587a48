package storage_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

var journalT0 = time.Date(2026, 3, 22, 20, 0, 0, 0, time.UTC)

// fillJournal appends n entries a minute apart, kinds cycling LIST, BILL,
// RECEIPT, and returns them.
func fillJournal(t *testing.T, s *storage.Store, n int) []shopbridge.JournalEntry {
	t.Helper()
	kinds := []string{"LIST", "BILL", "RECEIPT"}
	var es []shopbridge.JournalEntry
	for i := range n {
		es = append(es, shopbridge.JournalEntry{
			Time: journalT0.Add(time.Duration(i) * time.Minute), Client: "192.168.1.20", Device: "dev-1",
			Kind: kinds[i%3], Method: "GET", Path: "/api/v2/list", Query: "date=today",
			ReqBody: nil, Status: 200, RespBody: []byte(fmt.Sprintf(`[{"id": %d, "summ": 4604.04, "n": "Илья"}]`, i)),
			Duration: 1500 * time.Microsecond, Source: "store",
		})
	}
	if err := s.AppendJournal(es); err != nil {
		t.Fatal(err)
	}
	return es
}

func TestJournal(t *testing.T) {
	s := storetest.MustOpen(t)
	if err := s.AppendJournal(nil); err != nil {
		t.Fatal(err)
	}
	es := fillJournal(t, s, 30)
	// A receipt with a body that is not UTF-8 and a note.
	odd := shopbridge.JournalEntry{Time: journalT0.Add(30 * time.Minute), Client: "upstream", Kind: "UPSTREAM_RECEIPT",
		Method: "POST", Path: "/api/v2/receipts", ReqBody: []byte(`{"id":"a","mark":"01\u001d93"}`), Status: 502,
		RespBody: []byte("<html>Bad Gateway</html>"), Note: "retry in 2s"}
	if err := s.AppendJournal([]shopbridge.JournalEntry{odd}); err != nil {
		t.Fatal(err)
	}

	all, err := s.Journal(storage.JournalQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 31 {
		t.Fatalf("Journal() has %d entries, want 31", len(all))
	}
	if all[0].Kind != "UPSTREAM_RECEIPT" || all[0].Note != "retry in 2s" || !bytes.Equal(all[0].ReqBody, odd.ReqBody) ||
		!bytes.Equal(all[0].RespBody, odd.RespBody) || all[0].Status != 502 || all[0].Client != "upstream" {
		t.Errorf("newest entry = %+v", all[0])
	}
	last := all[30]
	want := es[0]
	if !last.Time.Equal(want.Time) || last.Kind != want.Kind || last.Client != want.Client || last.Device != want.Device ||
		last.Method != want.Method || last.Path != want.Path || last.Query != want.Query || last.Status != want.Status ||
		!bytes.Equal(last.RespBody, want.RespBody) || last.ReqBody != nil || last.Duration != want.Duration || last.Source != want.Source {
		t.Errorf("oldest entry\n%+v\nwant\n%+v", last, want)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq >= all[i-1].Seq {
			t.Fatalf("not newest first at %d: seq %d after %d", i, all[i].Seq, all[i-1].Seq)
		}
	}

	tests := []struct {
		name  string
		q     storage.JournalQuery
		count int
		first time.Time
	}{
		{"since", storage.JournalQuery{Since: journalT0.Add(25 * time.Minute)}, 6, journalT0.Add(30 * time.Minute)},
		{"since is inclusive", storage.JournalQuery{Since: journalT0.Add(29 * time.Minute)}, 2, journalT0.Add(30 * time.Minute)},
		{"kind", storage.JournalQuery{Kind: "BILL"}, 10, journalT0.Add(28 * time.Minute)},
		{"kind and since", storage.JournalQuery{Kind: "BILL", Since: journalT0.Add(20 * time.Minute)}, 3, journalT0.Add(28 * time.Minute)},
		{"limit", storage.JournalQuery{Limit: 4}, 4, journalT0.Add(30 * time.Minute)},
		{"kind and limit", storage.JournalQuery{Kind: "LIST", Limit: 2}, 2, journalT0.Add(27 * time.Minute)},
		{"unknown kind", storage.JournalQuery{Kind: "HELLO"}, 0, time.Time{}},
		{"future", storage.JournalQuery{Since: journalT0.Add(time.Hour)}, 0, time.Time{}},
	}
	for _, tt := range tests {
		got, err := s.Journal(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tt.count {
			t.Errorf("%s: %d entries, want %d", tt.name, len(got), tt.count)
			continue
		}
		if tt.count > 0 && !got[0].Time.Equal(tt.first) {
			t.Errorf("%s: first entry at %v, want %v", tt.name, got[0].Time, tt.first)
		}
		for _, e := range got {
			if tt.q.Kind != "" && e.Kind != tt.q.Kind {
				t.Errorf("%s: entry of kind %s", tt.name, e.Kind)
			}
		}
	}
}

func TestPruneJournal(t *testing.T) {
	t.Run("by age", func(t *testing.T) {
		s := storetest.MustOpen(t)
		fillJournal(t, s, 60)
		now := journalT0.Add(60 * time.Minute)
		n, err := s.PruneJournal(now, 30*time.Minute, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		// Entries 0..29 are more than 30 minutes old at minute 60.
		if n != 30 {
			t.Errorf("pruned %d entries, want 30", n)
		}
		got, _ := s.Journal(storage.JournalQuery{})
		if len(got) != 30 || !got[len(got)-1].Time.Equal(journalT0.Add(30*time.Minute)) {
			t.Errorf("after prune: %d entries, oldest %v", len(got), got[len(got)-1].Time)
		}
		if n, _ := s.PruneJournal(now, 30*time.Minute, 0, 1000); n != 0 {
			t.Errorf("second prune deleted %d", n)
		}
	})
	t.Run("by size", func(t *testing.T) {
		s := storetest.MustOpen(t)
		fillJournal(t, s, 100)
		st, _ := s.Stats()
		if st.Journal != 100 || st.JournalBytes <= 0 {
			t.Fatalf("stats %+v", st)
		}
		per := st.JournalBytes / 100
		limit := st.JournalBytes / 4
		n, err := s.PruneJournal(journalT0, 0, limit, 1000)
		if err != nil {
			t.Fatal(err)
		}
		st2, _ := s.Stats()
		if st2.JournalBytes > limit || st2.JournalBytes < limit-2*per {
			t.Errorf("journal bytes %d after pruning to %d (about %d per entry)", st2.JournalBytes, limit, per)
		}
		if st2.Journal != 100-n || n < 70 {
			t.Errorf("pruned %d, %d left", n, st2.Journal)
		}
		got, _ := s.Journal(storage.JournalQuery{Limit: 1})
		if !got[0].Time.Equal(journalT0.Add(99 * time.Minute)) {
			t.Error("size pruning dropped the newest entries")
		}
	})
	t.Run("at most limit per call", func(t *testing.T) {
		s := storetest.MustOpen(t)
		fillJournal(t, s, 50)
		n, err := s.PruneJournal(journalT0.Add(24*time.Hour), time.Minute, 0, 20)
		if err != nil || n != 20 {
			t.Errorf("pruned %d (%v), want 20", n, err)
		}
		n, _ = s.PruneJournal(journalT0.Add(24*time.Hour), time.Minute, 0, 100)
		if n != 30 {
			t.Errorf("second call pruned %d, want 30", n)
		}
		st, _ := s.Stats()
		if st.Journal != 0 || st.JournalBytes != 0 {
			t.Errorf("empty journal: stats %+v", st)
		}
	})
	t.Run("no bounds", func(t *testing.T) {
		s := storetest.MustOpen(t)
		fillJournal(t, s, 10)
		if n, _ := s.PruneJournal(journalT0.Add(1000*time.Hour), 0, 0, 100); n != 0 {
			t.Errorf("pruned %d with no bounds", n)
		}
	})
}

func TestJournalKeepsLargeBodies(t *testing.T) {
	s := storetest.MustOpen(t)
	big := []byte(`"` + strings.Repeat("Я", 40000) + `"`)
	if err := s.AppendJournal([]shopbridge.JournalEntry{{Time: journalT0, Kind: "BILL", RespBody: big}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Journal(storage.JournalQuery{})
	if len(got) != 1 || !bytes.Equal(got[0].RespBody, big) {
		t.Error("large body not kept")
	}
}

// TestJournalBlocks: a batch is one block that stores an answer repeated by
// many entries once, reads back entry by entry, and prunes mid-block.
func TestJournalBlocks(t *testing.T) {
	s := storetest.MustOpen(t)
	bill := bytes.Repeat([]byte(`{"prodname":"Кресло компьютерное"}`), 30) // ~1.3 KB
	var es []shopbridge.JournalEntry
	for i := range 3000 {
		es = append(es, shopbridge.JournalEntry{Time: journalT0.Add(time.Duration(i) * time.Second), Client: "10.0.0.7",
			Kind: "BILL", Method: "GET", Path: "/api/v2/bill/byid/1", Status: 200, RespBody: bill, Source: "store"})
	}
	if err := s.AppendJournal(es); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats()
	if st.Journal != 3000 {
		t.Errorf("stats count %d entries, want 3000", st.Journal)
	}
	if st.JournalBytes > int64(len(bill))*3000/10 {
		t.Errorf("3000 entries with one repeated %d-byte answer take %d bytes: bodies not shared", len(bill), st.JournalBytes)
	}
	t.Logf("3000 entries, %d bytes each answer, %d journal bytes", len(bill), st.JournalBytes)
	got, err := s.Journal(storage.JournalQuery{Limit: 3000})
	if err != nil || len(got) != 3000 {
		t.Fatalf("read %d entries (%v)", len(got), err)
	}
	for i, e := range got {
		if !bytes.Equal(e.RespBody, bill) || !e.Time.Equal(es[2999-i].Time) || e.Seq != uint64(3000-i) {
			t.Fatalf("entry %d read back as %+v", i, e)
		}
	}
	// Prune the first half by age: the block is cut, the rest stays readable.
	n, err := s.PruneJournal(journalT0.Add(3000*time.Second), 1500*time.Second, 0, 10000)
	if err != nil || n != 1500 { // seconds 0..1499 are over 1500 s old
		t.Fatalf("pruned %d (%v), want 1500", n, err)
	}
	got, _ = s.Journal(storage.JournalQuery{Limit: 5000})
	if len(got) != 1500 || got[len(got)-1].Seq != 1501 || !bytes.Equal(got[len(got)-1].RespBody, bill) {
		t.Errorf("after prune: %d entries, oldest seq %d", len(got), got[len(got)-1].Seq)
	}
	// New entries continue the sequence.
	fillJournal(t, s, 1)
	if got, _ := s.Journal(storage.JournalQuery{Limit: 1}); got[0].Seq != 3001 {
		t.Errorf("next seq %d, want 3001", got[0].Seq)
	}
}

// TestJournalReceiptRef: an entry that names a stored receipt reads back
// with the receipt's exact bytes, which the journal itself does not keep.
func TestJournalReceiptRef(t *testing.T) {
	s := storetest.MustOpen(t)
	body := []byte(`{"id":"ev-1","data":{"type":"SELL","mark":"01\u001d93","items":[` +
		strings.Repeat(`{"name":"Шу пуэр","price":13.05},`, 100) + `{}]}}`)
	if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: "ev-1", Body: body, Type: "SELL"}); err != nil {
		t.Fatal(err)
	}
	es := []shopbridge.JournalEntry{
		{Time: journalT0, Kind: "RECEIPT", Method: "POST", Path: "/api/v2/receipts", Status: 200, ReqReceipt: "ev-1"},
		{Time: journalT0.Add(time.Second), Kind: "UPSTREAM_RECEIPT", Method: "POST", Status: 200, ReqReceipt: "ev-1"},
		{Time: journalT0.Add(2 * time.Second), Kind: "RECEIPT", Status: 200, ReqReceipt: "gone"},
	}
	if err := s.AppendJournal(es); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats()
	if st.JournalBytes > int64(len(body)) {
		t.Errorf("the journal keeps %d bytes for entries that only name a %d-byte receipt", st.JournalBytes, len(body))
	}
	got, err := s.Journal(storage.JournalQuery{})
	if err != nil || len(got) != 3 {
		t.Fatalf("%d entries, %v", len(got), err)
	}
	if got[0].ReqReceipt != "gone" || got[0].ReqBody != nil {
		t.Errorf("an unknown receipt reads back as %+v", got[0])
	}
	for _, e := range got[1:] {
		if e.ReqReceipt != "ev-1" || !bytes.Equal(e.ReqBody, body) {
			t.Errorf("%s entry reads back with body %q", e.Kind, e.ReqBody)
		}
	}
}
