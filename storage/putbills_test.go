package storage_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"
)

// TestPutBills: many bills in one commit, each stored as its exact bytes;
// a body that is not a bill gets its own error and the others are stored;
// a bill already stored with the same bytes is left as it was.
func TestPutBills(t *testing.T) {
	st := storetest.MustOpen(t)
	bodies := [][]byte{
		[]byte(`{"id": 700001, "date": "2026-03-22 21:31:22", "summ": 4604.04, "number": "A-1", "customer": {"name": "Ира"}, "products": []}`),
		[]byte(`{"date": "2026-03-22 21:31:22"}`),
		[]byte("  {\"id\": 700002, \"date\": \"2026-03-23 10:00:00\", \"summ\": 1.10, \"number\": \"A-2\", \"products\": [], \"extra\": {\"x\": 1}}\n"),
	}
	commits := st.Commits()
	n, errs, err := st.PutBills(bodies, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("stored %d, errs %v: want 2 stored and an error for the body without an id", n, errs)
	}
	if c := st.Commits() - commits; c != 1 {
		t.Errorf("%d commits for one PutBills, want 1", c)
	}
	for i, id := range map[int]string{0: "700001", 2: "700002"} {
		b, err := st.Bill(id)
		if err != nil {
			t.Fatalf("bill %s: %v", id, err)
		}
		if !bytes.Equal(b.Body, bytes.TrimSpace(bodies[i])) {
			t.Errorf("bill %s = %s, want the exact bytes %s", id, b.Body, bytes.TrimSpace(bodies[i]))
		}
	}
	// The same again changes nothing; a changed bill replaces the old bytes.
	changed := []byte(`{"id": 700001, "date": "2026-03-22 21:31:22", "summ": 4604.05, "number": "A-1", "customer": {"name": "Ира"}, "products": []}`)
	if n, _, err := st.PutBills([][]byte{bodies[2], changed}, time.Now()); err != nil || n != 2 {
		t.Fatalf("second PutBills: %d, %v", n, err)
	}
	if b, err := st.Bill("700001"); err != nil || !bytes.Equal(b.Body, changed) {
		t.Errorf("bill 700001 after a change: %v %s", err, b.Body)
	}
	// Nothing to store: no commit.
	commits = st.Commits()
	if n, errs, err := st.PutBills([][]byte{[]byte("nope")}, time.Now()); n != 0 || err != nil || errs[0] == nil {
		t.Errorf("PutBills of a non-bill: %d, %v, %v", n, errs, err)
	}
	if c := st.Commits() - commits; c != 0 {
		t.Errorf("%d commits for nothing to store", c)
	}
}
