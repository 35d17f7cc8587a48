package storage

import (
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
)

// TestBackgroundCallsWaitForCompany: a record the sync makes (a receipt
// delivered) waits for company, a register's receipt does not wait for it
// and takes it into its own commit, and closing the store commits what
// waits.
func TestBackgroundCallsWaitForCompany(t *testing.T) {
	defer func(d time.Duration) { backgroundLinger = d }(backgroundLinger)
	backgroundLinger = time.Hour // only company or closing ends the wait
	waiting := make(chan struct{}, 1)
	onBackgroundWait = func() { waiting <- struct{}{} }
	defer func() { onBackgroundWait = nil }()
	s := openTemp(t)
	for _, id := range []string{"ev-1", "ev-2"} {
		if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: id, Type: "SELL", Body: []byte(`{"id":"` + id + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Commits()
	delivered := make(chan error, 1)
	go func() { delivered <- s.MarkDelivered("ev-1", time.Now()) }()
	waitFor(t, waiting) // the record waits in the committer: a register's receipt ends it
	if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: "ev-3", Type: "SELL", Body: []byte(`{"id":"ev-3"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	if n := s.Commits() - before; n != 1 {
		t.Errorf("the record and the receipt took %d commits, want 1", n)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Receipts != 3 || st.Outbox != 2 {
		t.Errorf("stats %+v: want 3 receipts, 2 in the outbox", st)
	}

	// Closing commits a record that is still waiting.
	go func() { delivered <- s.MarkDelivered("ev-2", time.Now()) }()
	waitFor(t, waiting)
	select {
	case err := <-delivered:
		t.Fatalf("the background record was committed alone, before any company (%v)", err)
	default:
	}
	s.Close()
	if err := <-delivered; err != nil {
		t.Fatalf("the record waiting when the store closed: %v", err)
	}
}

func waitFor(t *testing.T, waiting <-chan struct{}) {
	t.Helper()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the background record never waited for company: it was committed alone")
	}
}
