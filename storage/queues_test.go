package storage_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"
	"github.com/shopbridge/shopbridge/storage"
)

// TestQueuesAgree: the counts and the lists of Queues come from one
// transaction, so while receipts are delivered one by one the outbox count
// always equals the length of a list that is not cut by the limit. Read
// apart (Stats, then Outbox), a status showed "1 receipt waiting" with no
// receipt in its list (that version failed 17 runs of 20 of one round;
// five rounds make a miss unlikely).
func TestQueuesAgree(t *testing.T) {
	s := storetest.MustOpen(t)
	for round := range 5 {
		queuesAgreeRound(t, s, round)
	}
}

func queuesAgreeRound(t *testing.T, s *storage.Store, round int) {
	const n = 200
	for i := range n {
		if _, err := s.AcceptReceipt(receipt(fmt.Sprintf("q-%d-%03d", round, i), "SELL", "", "")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := s.MarkDelivered(fmt.Sprintf("q-%d-%03d", round, i), time.Now()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	const limit = 300 // above n: the list is never cut
	reads := 0
	for {
		q, err := s.Queues(limit)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		if q.Stats.Outbox != len(q.OutboxHead) {
			t.Fatalf("read %d: outbox count %d, list of %d", reads, q.Stats.Outbox, len(q.OutboxHead))
		}
		if q.Stats.Outbox == 0 {
			break
		}
	}
	wg.Wait()
	t.Logf("%d reads while %d receipts were delivered", reads, n)
}
