package sync

import (
	"fmt"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/internal/poll"
)

// TestFlappingInProcess pushes a backlog through an upstream that refuses
// connections on and off every 150 ms: nothing lost, and nothing sent again
// after the syncer saw its 200. (The simulator may count a receipt twice
// when it closes a connection after writing a 200 that never reached us.)
func TestFlappingInProcess(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	j := &journaltest.Journal{}
	s := MustOpenSyncer(t, testConfig(sim, j), st)
	poll.Eventually(t, "online", s.Online)
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse, Flap: 150 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var want []*shopbridge.Receipt
	for i := range 1000 {
		r := receipt(i+1, fmt.Sprintf("dev-%d", i%20), fmt.Sprintf("%d", 300+i/2), []string{"SELL", "PAYBACK"}[i%2])
		want = append(want, r)
		accept(t, st, r)
		if i%100 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Receipts get through between the flaps (progress, not speed: under
	// -race on a busy machine this is much slower), then the flapping goes
	// on for a while with receipts in flight.
	poll.Eventually(t, "deliveries while flapping", func() bool { return st.OutboxLen() < 900 })
	time.Sleep(2 * time.Second)
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "the outbox to drain", func() bool { return st.OutboxLen() == 0 })
	rs := sim.Receipts()
	seen := map[string]int{}
	for _, r := range rs {
		if r.Delivered {
			seen[r.EventID]++
		}
	}
	for id, n := range seen {
		if n < 2 {
			continue
		}
		// Which attempts did the syncer see, and how did they end?
		var attempts []string
		for _, e := range j.Entries() {
			if e.Kind == shopbridge.KindUpstreamReceipt && e.ReqReceipt == id {
				attempts = append(attempts, fmt.Sprintf("%s status %d %q", e.Time.Format("15:04:05.000000"), e.Status, e.Note))
			}
		}
		var arrivals []string
		for _, r := range rs {
			if r.EventID == id {
				arrivals = append(arrivals, fmt.Sprintf("%s status %d delivered %v", r.Time.Format("15:04:05.000000"), r.Status, r.Delivered))
			}
		}
		ok := 0
		for _, e := range j.Entries() {
			if e.Kind == shopbridge.KindUpstreamReceipt && e.ReqReceipt == id && e.Status == 200 {
				ok++
			}
		}
		if ok > 1 {
			t.Errorf("receipt %s sent again after a 200:\n attempts %q\n arrivals %q", id, attempts, arrivals)
		} else {
			t.Logf("receipt %s delivered %d times, the syncer saw %d 200s:\n attempts %q\n arrivals %q", id, n, ok, attempts, arrivals)
		}
	}
	got := deliveredOnceLenient(rs)
	for _, w := range want {
		if _, ok := got[w.EventID]; !ok {
			t.Errorf("receipt %s lost", w.EventID)
		}
	}
}

func deliveredOnceLenient(rs []crmsim.Receipt) map[string]crmsim.Receipt {
	out := map[string]crmsim.Receipt{}
	for _, r := range rs {
		if _, ok := out[r.EventID]; r.Delivered && !ok {
			out[r.EventID] = r
		}
	}
	return out
}
