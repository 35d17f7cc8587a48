package storage

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
)

func bigList(t *testing.T, n, from int) []shopbridge.BillSummary {
	t.Helper()
	out := make([]shopbridge.BillSummary, n)
	for i := range out {
		id := from + i
		raw := fmt.Sprintf(`{"id":%d,"date":"2026-03-22 %02d:%02d:%02d","summ":%d.5,"number":"N-%d","customername":"Покупатель %d"}`,
			id, id/3600%24, id/60%60, id%60, id, id, id)
		s, err := shopbridge.ParseSummary([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// TestApplyListInChunks: a full list of more bills than a commit writes is
// written in several commits and ends as one would: every bill listed and
// asked for, and a later full list drops, with its last chunk, the bills
// it no longer carries.
func TestApplyListInChunks(t *testing.T) {
	s := openTemp(t)
	at := time.Date(2026, 3, 22, 21, 0, 0, 0, time.UTC)
	n := 3*applyChunk + 17
	before := s.Commits()
	fetch, err := s.ApplyList(bigList(t, n, 1000), ListAll, at)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Commits() - before; c != 4 {
		t.Errorf("a list of %d new bills took %d commits, want 4 of at most %d", n, c, applyChunk)
	}
	if len(fetch) != n {
		t.Errorf("%d bills to fetch, want %d", len(fetch), n)
	}
	got, err := s.List(ListQuery{})
	if err != nil || len(got) != n {
		t.Fatalf("the no-parameter list has %d bills (%v), want %d", len(got), err, n)
	}

	// The next full list keeps the last 100 and adds 10: it drops 10+n-110
	// bills, as many commits again.
	keep := bigList(t, 110, 1000+n-100)
	before = s.Commits()
	fetch, err = s.ApplyList(keep, ListAll, at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c, want := s.Commits()-before, uint64((10+n-100+applyChunk-1)/applyChunk); c != want {
		t.Errorf("a list that writes 10 new bills and drops %d took %d commits, want %d", n-100, c, want)
	}
	if len(fetch) != 10+100 { // the kept ones were never fetched either
		t.Errorf("%d bills to fetch, want 110", len(fetch))
	}
	got, err = s.List(ListQuery{})
	if err != nil || len(got) != 110 {
		t.Fatalf("the no-parameter list has %d bills (%v), want the 110 listed", len(got), err)
	}
	if st := s.SyncedAt(); !st.Equal(at.Add(time.Minute)) {
		t.Errorf("synced at %v, want %v", st, at.Add(time.Minute))
	}

	// The same list again, one bill fetched meanwhile: one commit (the
	// synced-at time), the other 109 asked for again.
	b := keep[0]
	if _, _, err := s.PutBill([]byte(fmt.Sprintf(`{"id":%s,"date":%q,"summ":1.5,"number":%q,"customername":"x","products":[]}`, b.ID, b.Date, b.Number)), at); err != nil {
		t.Fatal(err)
	}
	before = s.Commits()
	fetch, err = s.ApplyList(keep, ListAll, at.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Commits() - before; c != 1 {
		t.Errorf("a list that changes nothing took %d commits, want 1", c)
	}
	if len(fetch) != 109 {
		t.Errorf("%d bills to fetch, want the 109 not fetched yet", len(fetch))
	}
	if st := s.SyncedAt(); !st.Equal(at.Add(2 * time.Minute)) {
		t.Errorf("synced at %v, want %v", st, at.Add(2*time.Minute))
	}
}
