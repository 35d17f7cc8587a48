package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/storage"
)

// upstreamIDs lists the ids of the simulator's no-parameter list.
func upstreamIDs(t *testing.T, sim *crmsim.Server) []string {
	t.Helper()
	var sums []struct {
		ID json.Number `json:"id"`
	}
	if err := json.Unmarshal(simGet(t, sim, "/api/v2/list"), &sums); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(sums))
	for i, s := range sums {
		ids[i] = s.ID.String()
	}
	return ids
}

// mirrored reports whether the store holds every upstream bill byte for byte.
func mirrored(t *testing.T, sim *crmsim.Server, st *storage.Store) bool {
	ids := upstreamIDs(t, sim)
	open, err := st.List(storage.ListQuery{})
	if err != nil || len(open) != len(ids) {
		return false
	}
	for _, id := range ids {
		b, err := st.Bill(id)
		if err != nil || !bytes.Equal(b.Body, bytes.TrimSpace(simGet(t, sim, "/api/v2/bill/byid/"+id))) {
			return false
		}
	}
	return true
}

func TestPullMirrorsUpstream(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	j := &journaltest.Journal{}
	s := MustOpenSyncer(t, testConfig(sim, j), st)

	poll.Eventually(t, "the store to mirror the upstream", func() bool { return mirrored(t, sim, st) })
	if got := st.System(); got != crmsim.DefaultSystem {
		t.Errorf("system = %q, want %q", got, crmsim.DefaultSystem)
	}
	if st.SyncedAt().IsZero() {
		t.Error("synced-at not set after a pull")
	}
	status := s.Status()
	if status.Upstream != shopbridge.UpstreamOnline || status.LastPullAt.IsZero() {
		t.Errorf("status = %+v, want online with a last pull", status)
	}
	for _, kind := range []string{shopbridge.KindUpstreamHello, shopbridge.KindUpstreamList, shopbridge.KindUpstreamBill, shopbridge.KindUpstreamState} {
		if !j.Has(kind, "") {
			t.Errorf("no %s in the journal", kind)
		}
	}
	// The summary of 49040 keeps its number text exactly.
	sums, err := st.List(storage.ListQuery{Number: "49040-CRM"})
	if err != nil || len(sums) != 1 || sums[0].Summ != "4604.04" {
		t.Errorf("49040-CRM: %+v, %v; want summ 4604.04", sums, err)
	}
	// Hello is asked at most every 10 minutes, not every pull.
	pulls := s.m.pulls.ok.Load()
	poll.Eventually(t, "three more pulls", func() bool { return s.m.pulls.ok.Load() >= pulls+3 })
	if n := sim.Counters()[crmsim.KindHello]; n != 1 {
		t.Errorf("hello asked %d times, want 1", n)
	}
}

func TestPullFollowsUpstreamChanges(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	MustOpenSyncer(t, testConfig(sim, &journaltest.Journal{}), st)
	poll.Eventually(t, "the first mirror", func() bool { return mirrored(t, sim, st) })

	// A price change (and so summ) is pulled; a dropped bill leaves the
	// no-parameter list; a new one joins it.
	old := simGet(t, sim, "/api/v2/bill/byid/206929")
	changed := bytes.Replace(old, []byte(`"price": 9093`), []byte(`"price": 9100`), 1)
	changed = bytes.Replace(changed, []byte(`"summ": 15077`), []byte(`"summ": 15084`), 1)
	if bytes.Equal(old, changed) {
		t.Fatal("test bill 206929 has no price 9093 / summ 15077 to change")
	}
	if err := sim.PutBill(changed); err != nil {
		t.Fatal(err)
	}
	if !sim.DeleteBill("49040") {
		t.Fatal("no bill 49040 upstream")
	}
	fresh := []byte(`{"id": 777000111222333444555, "date": "2026-03-23 10:00:00", "summ": 10.5, "number": "N-777", "customer": {"name": "Новый "}, "products": [], "prepayment": 0, "prepaymentEnable": false}`)
	if err := sim.PutBill(fresh); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "the changes to arrive", func() bool { return mirrored(t, sim, st) })
	b, err := st.Bill("206929")
	if err != nil || !bytes.Contains(b.Body, []byte(`"price": 9100`)) {
		t.Errorf("bill 206929 not updated: %v", err)
	}
	for _, sum := range mustList(t, st, storage.ListQuery{}) {
		if sum.ID == "49040" {
			t.Error("bill 49040 dropped upstream is still in the no-parameter list")
		}
	}
	if b, err := st.Bill("777000111222333444555"); err != nil || !bytes.Equal(b.Body, fresh) {
		t.Errorf("new bill with a long id not mirrored exactly: %v", err)
	}
}

func mustList(t *testing.T, st *storage.Store, q storage.ListQuery) []shopbridge.BillSummary {
	t.Helper()
	sums, err := st.List(q)
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func TestPushDeliversExactlyOnceInOrder(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Token: "s3cret-token", Logger: quietLogger()})
	st := storetest.MustOpen(t)
	j := &journaltest.Journal{}
	cfg := testConfig(sim, j)
	cfg.Token = "s3cret-token"
	MustOpenSyncer(t, cfg, st)

	// Bills A..E each get a SELL then a PAYBACK then a SELL; registers
	// without bills send on their own keys.
	var want []*shopbridge.Receipt
	n := 0
	for round, typ := range []string{"SELL", "PAYBACK", "SELL"} {
		for b := range 5 {
			n++
			r := receipt(n, fmt.Sprintf("dev-%d", b), fmt.Sprintf("%d", 5000+b), typ)
			want = append(want, r)
			accept(t, st, r)
		}
		n++
		r := receipt(n, "dev-nobill", "", "SELL")
		want = append(want, r)
		accept(t, st, r)
		_ = round
	}
	rs, err := sim.WaitReceipts(waitCtx(t), len(want))
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, rs, want)
	for _, r := range rs {
		if !r.Authorization {
			t.Errorf("receipt %s arrived without the bearer token", r.EventID)
		}
	}
	poll.Eventually(t, "the outbox to empty", func() bool { return st.OutboxLen() == 0 })
	for _, e := range j.Entries() {
		if strings.Contains(fmt.Sprintf("%+v %s %s", e, e.ReqBody, e.RespBody), "s3cret") {
			t.Errorf("the token reached the journal: %+v", e)
		}
	}
}

// checkDelivered checks that every wanted receipt arrived once, byte for
// byte with its X-Evotor-* headers, in order within its order key.
func checkDelivered(t *testing.T, rs []crmsim.Receipt, want []*shopbridge.Receipt) {
	t.Helper()
	got := deliveredOnce(t, rs)
	if len(got) != len(want) {
		t.Errorf("%d receipts delivered, want %d", len(got), len(want))
	}
	lastSeq := map[string]int{}
	for _, w := range want {
		g, ok := got[w.EventID]
		if !ok {
			t.Errorf("receipt %s lost", w.EventID)
			continue
		}
		if !bytes.Equal(g.Body, w.Body) {
			t.Errorf("receipt %s body changed:\n got %s\nwant %s", w.EventID, g.Body, w.Body)
		}
		for k, v := range w.Headers {
			if g.Headers[k] != v {
				t.Errorf("receipt %s header %s = %q, want %q", w.EventID, k, g.Headers[k], v)
			}
		}
		key := w.OrderKey()
		if g.Seq < lastSeq[key] {
			t.Errorf("receipt %s overtook an earlier receipt of %s", w.EventID, key)
		}
		lastSeq[key] = g.Seq
	}
}

func TestUpstreamDownFromStart(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse}); err != nil {
		t.Fatal(err)
	}
	st := storetest.MustOpen(t)
	j := &journaltest.Journal{}
	s := MustOpenSyncer(t, testConfig(sim, j), st)

	var want []*shopbridge.Receipt
	for i := range 40 {
		r := receipt(i+1, fmt.Sprintf("dev-%d", i%4), fmt.Sprintf("%d", 100+i%10), []string{"SELL", "PAYBACK"}[i/10%2])
		want = append(want, r)
		accept(t, st, r)
	}
	poll.Eventually(t, "a few probes", func() bool { return s.Status().LastError != "" })
	if s.Online() {
		t.Fatal("online with the upstream refusing connections")
	}
	start := time.Now()
	if _, err := s.BillByID(context.Background(), "206929"); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
		t.Errorf("read-through while offline: %v, want ENOTFOUND", err)
	}
	if _, err := s.ListByNumber(context.Background(), "206929C"); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
		t.Errorf("number read-through while offline: %v, want ENOTFOUND", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Logf("offline read-through took %v (expected at once)", d)
	}
	if st.OutboxLen() != len(want) {
		t.Errorf("outbox holds %d, want %d", st.OutboxLen(), len(want))
	}

	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	rs, err := sim.WaitReceipts(waitCtx(t), len(want))
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, rs, want)
	poll.Eventually(t, "the bills to be mirrored", func() bool { return mirrored(t, sim, st) })
	// Never online before: first contact, not a recovery.
	if !j.Has(shopbridge.KindUpstreamState, "online: first contact") || !j.Has(shopbridge.KindUpstreamState, "unreachable") || j.Has(shopbridge.KindUpstreamState, "offline -> online") {
		t.Errorf("first contact after a down start is not journaled as such: %+v", j.Entries())
	}
}

func TestParkedReceiptRetry(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	s := MustOpenSyncer(t, testConfig(sim, &journaltest.Journal{}), st)
	poll.Eventually(t, "online", s.Online)

	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.Fault400, Kind: crmsim.KindReceipts}); err != nil {
		t.Fatal(err)
	}
	first, second := receipt(1, "dev-1", "42", "SELL"), receipt(2, "dev-1", "42", "PAYBACK")
	accept(t, st, first)
	accept(t, st, second)
	poll.Eventually(t, "both receipts parked", func() bool {
		p, _ := st.Parked()
		return len(p) == 2
	})
	parked, _ := st.Parked()
	if !strings.Contains(parked[0].LastError, "HTTP 400") || !strings.Contains(parked[0].LastError, "2001") {
		t.Errorf("parked answer = %q, want the upstream's 400 and its error body", parked[0].LastError)
	}
	if !s.Online() {
		t.Error("a refused receipt made the upstream offline")
	}
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	sim.ResetReceipts()
	for _, r := range []*shopbridge.Receipt{first, second} {
		if err := st.Retry(r.EventID); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := sim.WaitReceipts(waitCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, rs, []*shopbridge.Receipt{first, second})
}

func TestRetryKeepsPlace(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	s := MustOpenSyncer(t, testConfig(sim, &journaltest.Journal{}), st)
	poll.Eventually(t, "online", s.Online)

	// Receipts fail with 500 (then 429) for a while: each keeps its place
	// and the upstream, which answers the rest, stays online.
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.Fault500, Kind: crmsim.KindReceipts}); err != nil {
		t.Fatal(err)
	}
	var want []*shopbridge.Receipt
	for i := range 30 {
		r := receipt(i+1, "dev-1", fmt.Sprintf("%d", 7+i%3), []string{"SELL", "PAYBACK", "SELL"}[i/3%3])
		want = append(want, r)
		accept(t, st, r)
	}
	poll.Eventually(t, "retries", func() bool { return s.m.pushes.retry.Load() >= 6 })
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.Fault429, Kind: crmsim.KindReceipts}); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "more retries", func() bool { return s.m.pushes.retry.Load() >= 9 })
	if !s.Online() {
		t.Error("receipt-only 5xx/429 made the upstream offline")
	}
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	rs, err := sim.WaitReceipts(waitCtx(t), len(want))
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, rs, want)
	poll.Eventually(t, "the outbox to empty", func() bool { return st.OutboxLen() == 0 })
	if p, _ := st.Parked(); len(p) != 0 {
		t.Errorf("%d receipts parked on retryable answers", len(p))
	}
}

func TestReadThrough(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	cfg := testConfig(sim, &journaltest.Journal{})
	cfg.Interval = time.Hour // only the first pull: misses must come from read-through
	s := MustOpenSyncer(t, cfg, st)
	poll.Eventually(t, "the first mirror", func() bool { return mirrored(t, sim, st) })

	bill := []byte(`{"id": 555001, "date": "2026-03-23 11:00:00", "summ": 1, "number": "RT-1", "customer": {"name": "A"}, "products": []}`)
	other := []byte(`{"id": 555002, "date": "2026-03-23 11:05:00", "summ": 2, "number": "RT-2", "customer": {"name": "B"}, "products": []}`)
	for _, b := range [][]byte{bill, other} {
		if err := sim.PutBill(b); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	got, err := s.BillByID(ctx, "555001")
	if err != nil || !bytes.Equal(got.Body, bill) {
		t.Fatalf("BillByID: %v", err)
	}
	if b, err := st.Bill("555001"); err != nil || !bytes.Equal(b.Body, bill) {
		t.Errorf("read-through bill not stored: %v", err)
	}
	sums, err := s.ListByNumber(ctx, "RT-2")
	if err != nil || len(sums) != 1 || sums[0].ID != "555002" {
		t.Fatalf("ListByNumber = %+v, %v", sums, err)
	}
	if b, err := st.Bill("555002"); err != nil || !bytes.Equal(b.Body, other) {
		t.Errorf("number read-through did not store the full bill: %v", err)
	}
	if n := mustList(t, st, storage.ListQuery{Number: "RT-2"}); len(n) != 1 {
		t.Errorf("store list number=RT-2 = %+v", n)
	}
	for _, tc := range []struct{ name, id, number string }{
		{"unknown id", "999999999", ""},
		{"bad id", "../hello", ""},
		{"unknown number", "", "NOPE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.id != "" {
				_, err = s.BillByID(ctx, tc.id)
			} else {
				_, err = s.ListByNumber(ctx, tc.number)
			}
			if shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
				t.Errorf("err = %v, want ENOTFOUND", err)
			}
		})
	}
	if !s.Online() {
		t.Error("a 404 made the upstream offline")
	}
	// A bill whose bytes name another id is refused and not stored.
	if err := sim.PutBillAs("555003", bill); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BillByID(ctx, "555003"); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
		t.Errorf("bill answering another id: %v, want ENOTFOUND", err)
	}
}

// TestFaults runs each failure mode of the simulator against a mirrored
// store: the syncer survives, keeps the store, answers misses at once
// when offline, journals the fault and recovers on its own.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		offline bool // the upstream must be judged offline
	}{
		{crmsim.FaultRefuse, true},
		{crmsim.FaultHang, true},
		{crmsim.FaultSlow, true}, // 1 s more than the 500 ms timeout
		{crmsim.Fault500, true},
		{crmsim.Fault429, false}, // busy, not offline: the backoff holds the calls (backoff.go)
		{crmsim.Fault400, true},
		{crmsim.FaultCut, true},
		{crmsim.FaultMalformed, true},
		{crmsim.FaultHuge, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
			st := storetest.MustOpen(t)
			j := &journaltest.Journal{}
			s := MustOpenSyncer(t, testConfig(sim, j), st)
			poll.Eventually(t, "the first mirror", func() bool { return mirrored(t, sim, st) })
			before := mustList(t, st, storage.ListQuery{})

			if err := sim.SetFault(crmsim.Fault{Mode: tc.mode}); err != nil {
				t.Fatal(err)
			}
			r := receipt(1, "dev-1", "206929", "SELL")
			accept(t, st, r)
			if tc.offline {
				poll.Eventually(t, "offline", func() bool { return !s.Online() })
				start := time.Now()
				_, err := s.BillByID(context.Background(), "123456")
				if d := time.Since(start); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND || d > 50*time.Millisecond {
					t.Errorf("offline read-through: %v after %v, want ENOTFOUND at once", err, d)
				}
				if !j.Has(shopbridge.KindUpstreamState, "online -> offline") {
					t.Error("going offline is not journaled")
				}
			}
			after := mustList(t, st, storage.ListQuery{})
			if len(after) != len(before)-1 { // the receipt settled 206929
				t.Errorf("the store lost bills: %d open, had %d", len(after), len(before))
			}
			if b, err := st.Bill("350255"); err != nil || len(b.Body) == 0 {
				t.Errorf("bill 350255 lost: %v", err)
			}
			// A 429 takes the upstream nowhere (busy, not offline), so nothing
			// above waited for the syncer to meet the fault: wait for its entry.
			poll.Eventually(t, "a failed exchange journaled", func() bool {
				for _, e := range j.Entries() {
					if strings.HasPrefix(e.Kind, "UPSTREAM_") && e.Kind != shopbridge.KindUpstreamState && e.Note != "" {
						return true
					}
				}
				return false
			})

			if err := sim.SetFault(crmsim.Fault{}); err != nil {
				t.Fatal(err)
			}
			poll.Eventually(t, "back online", s.Online)
			// A 400 parks what was in flight: the operator retries it.
			if parked, _ := st.Parked(); len(parked) > 0 {
				if tc.mode != crmsim.Fault400 {
					t.Errorf("receipt parked on %s: %s", tc.mode, parked[0].LastError)
				}
				if err := st.Retry(r.EventID); err != nil {
					t.Fatal(err)
				}
			}
			poll.Eventually(t, "the outbox to empty", func() bool { return st.OutboxLen() == 0 })
			// A 200 is a delivery, even with a garbled body (malformed).
			ok := 0
			for _, got := range sim.Receipts() {
				if got.Status == 200 && bytes.Equal(got.Body, r.Body) {
					ok++
				}
			}
			if ok != 1 {
				t.Errorf("receipt answered 200 %d times, want 1", ok)
				for _, got := range sim.Receipts() {
					t.Logf("arrival %d %v status %d fault %q delivered %v", got.Seq, got.Time.Format("15:04:05.000"), got.Status, got.Fault, got.Delivered)
				}
				for _, e := range j.Entries() {
					if e.Kind == shopbridge.KindUpstreamReceipt || e.Kind == shopbridge.KindUpstreamState {
						t.Logf("journal %s %s %d %q", e.Time.Format("15:04:05.000"), e.Kind, e.Status, e.Note)
					}
				}
			}
			pulls := s.m.pulls.ok.Load()
			poll.Eventually(t, "a good pull", func() bool { return s.m.pulls.ok.Load() > pulls })
		})
	}
}

func TestBadUpstreamAnswersAreSkipped(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	j := &journaltest.Journal{}
	s := MustOpenSyncer(t, testConfig(sim, j), st)
	poll.Eventually(t, "the first mirror", func() bool { return mirrored(t, sim, st) })
	good, err := st.Bill("350255")
	if err != nil {
		t.Fatal(err)
	}
	// A bill that turns into garbage or loses its id keeps its old bytes.
	for _, bad := range [][]byte{[]byte(`{"id": 350255, "date": "2026-`), []byte(`{"date": "2026-03-22 10:00:00", "summ": 3}`), []byte(`[1, 2]`)} {
		if err := sim.PutBillAs("350255", bad); err != nil {
			t.Fatal(err)
		}
		_, err := s.BillByID(context.Background(), "350255")
		if shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
			t.Errorf("bad bill %s: %v", bad, err)
		}
	}
	if b, err := st.Bill("350255"); err != nil || !bytes.Equal(b.Body, good.Body) {
		t.Errorf("a bad answer replaced a good bill: %v", err)
	}
	if !j.Has(shopbridge.KindUpstreamBill, "malformed") {
		t.Error("the bad bill is not journaled")
	}
}

func TestCloseAbandonsHungPushes(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	cfg := testConfig(sim, &journaltest.Journal{})
	cfg.Timeout = time.Minute
	s := New(cfg, st)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, "online", s.Online)
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.FaultHang, Kind: crmsim.KindReceipts}); err != nil {
		t.Fatal(err)
	}
	accept(t, st, receipt(1, "dev-1", "", "SELL"))
	poll.Eventually(t, "a push in flight", func() bool { return s.Status().InFlight == 1 })
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close waits on a hung push")
	}
	if st.OutboxLen() != 1 {
		t.Errorf("the abandoned receipt left the outbox")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMetricsAndStatus(t *testing.T) {
	sim := crmsimtest.MustOpen(t, crmsim.Config{Logger: quietLogger()})
	st := storetest.MustOpen(t)
	s := MustOpenSyncer(t, testConfig(sim, &journaltest.Journal{}), st)
	accept(t, st, receipt(1, "dev-1", "", "SELL"))
	poll.Eventually(t, "a delivery", func() bool { return s.m.pushes.delivered.Load() == 1 })
	// The push may beat the first pull on a busy machine.
	poll.Eventually(t, "a pull", func() bool { return !s.Status().LastPullAt.IsZero() })
	var buf bytes.Buffer
	s.WriteMetrics(&buf)
	for _, want := range []string{"shopbridge_upstream_up 1", `shopbridge_upstream_pushes_total{result="delivered"} 1`,
		"shopbridge_upstream_pulls_total", "shopbridge_upstream_read_through_total", "shopbridge_outbox_oldest_age_seconds 0"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, buf.String())
		}
	}
	b, err := json.Marshal(s.Status())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"upstream":"online"`, `"upstream_since":`, `"last_pull_at":`, `"last_push_at":`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("status %s lacks %s", b, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	st := storetest.MustOpen(t)
	for _, u := range []string{"", "ftp://x", "http://", "::"} {
		s := New(Config{URL: u, Logger: quietLogger()}, st)
		if err := s.Open(context.Background()); err == nil {
			s.Close()
			t.Errorf("URL %q accepted", u)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"1", time.Second}, {" 30 ", 30 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(5 * time.Second).Format(timeFormatHTTP), 5 * time.Second},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

const timeFormatHTTP = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		ids     []string
		skipped int
		err     bool
	}{
		{"empty", `[]`, nil, 0, false},
		{"two", `[{"id": 1, "date": "2026-01-01 00:00:00"}, {"id": "2"}]`, []string{"1", "2"}, 0, false},
		{"no id", `[{"date": "x"}, {"id": 3}]`, []string{"3"}, 1, false},
		{"twice", `[{"id": 3}, {"id": 3}]`, []string{"3"}, 1, false},
		{"not objects", `[1, "a", null]`, nil, 3, false},
		{"object", `{"id": 1}`, nil, 0, true},
		{"cut", `[{"id": 1}, {"id"`, nil, 0, true},
		{"null", `null`, nil, 0, false},
		{"long id", `[{"id": 123456789012345678901234567890}]`, []string{"123456789012345678901234567890"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sums, skipped, err := parseList([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !errors.Is(err, errMalformed) {
				t.Errorf("err %v is not errMalformed", err)
			}
			var ids []string
			for _, s := range sums {
				ids = append(ids, s.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.ids) || len(skipped) != tc.skipped {
				t.Errorf("ids %v skipped %v, want %v and %d skipped", ids, skipped, tc.ids, tc.skipped)
			}
		})
	}
}

func TestParseHello(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{`{"system": "a, b", "protocol": "0.1.0"}`, "a, b", false},
		{`{"system": ""}`, "", false},
		{`{}`, "", false},
		{`{"system": 5}`, "", true},
		{`[]`, "", true},
		{`null`, "", true},
		{`{"system": "x"`, "", true},
	} {
		got, err := parseHello([]byte(tc.in))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseHello(%s) = %q, %v", tc.in, got, err)
		}
	}
}

func FuzzParseList(f *testing.F) {
	f.Add([]byte(`[{"id": 1, "date": "2026-01-01 00:00:00", "summ": 4604.04, "number": "1", "customername": "x"}]`))
	f.Add([]byte(`[{"id": "12345678901234567890123"}, {}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sums, _, err := parseList(b)
		if err != nil {
			return
		}
		for _, s := range sums {
			if !shopbridge.ValidID(s.ID) {
				t.Errorf("parseList let through id %q", s.ID)
			}
		}
	})
}

func FuzzParseHello(f *testing.F) {
	f.Add([]byte(`{"system": "a", "protocol": "0.1.0"}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseHello(b) })
}

func FuzzCheckBill(f *testing.F) {
	f.Add("206929", []byte(`{"id": 206929, "date": "2026-03-22 21:43:55", "summ": 15077}`))
	f.Fuzz(func(t *testing.T, id string, b []byte) {
		if checkBill(id, b) == nil {
			if sum, err := shopbridge.ParseBill(b); err != nil || sum.ID != id {
				t.Errorf("checkBill accepted %q for id %q", b, id)
			}
		}
	})
}
