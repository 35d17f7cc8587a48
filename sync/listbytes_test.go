package sync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/internal/storetest"
	"github.com/shopbridge/shopbridge/storage"
)

// entryUpstream is an upstream whose list entries are set apart from its
// bills, as the cloud builds them on its own.
type entryUpstream struct {
	mu      gosync.Mutex
	all     []string          // entries of the no-parameter list
	today   []string          // entries of list?date=today
	number  map[string]string // number → the one entry of list?number=
	bills   map[string]string // id → bill/byid answer
	fetched map[string]int    // id → bill/byid calls
}

func (u *entryUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	switch {
	case r.URL.Path == "/api/v2/hello":
		w.Write([]byte(`{"system": "entries", "protocol": "0.1.0"}`))
	case r.URL.Path == "/api/v2/list":
		q := r.URL.Query()
		entries := u.all
		switch {
		case q.Get("date") == "today":
			entries = u.today
		case q.Get("number") != "":
			entries = nil
			if e, ok := u.number[q.Get("number")]; ok {
				entries = []string{e}
			}
		}
		w.Write([]byte("[\n" + strings.Join(entries, ",\n") + "\n]"))
	case strings.HasPrefix(r.URL.Path, "/api/v2/bill/byid/"):
		id := strings.TrimPrefix(r.URL.Path, "/api/v2/bill/byid/")
		u.fetched[id]++
		b, ok := u.bills[id]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errors":[{"code":2003,"reason":"bill not found","subject":"id"}]}`))
			return
		}
		w.Write([]byte(b))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (u *entryUpstream) set(fn func(u *entryUpstream)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	fn(u)
}

func (u *entryUpstream) fetches(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.fetched[id]
}

// served is a store list answer as the bytes /api/v2/list writes.
func served(t *testing.T, st *storage.Store, q storage.ListQuery) string {
	t.Helper()
	var raws []string
	for _, sum := range mustList(t, st, q) {
		raws = append(raws, string(sum.Raw))
	}
	return "[" + strings.Join(raws, ",") + "]"
}

// TestListEntryBytes: bills a list carried are listed with the entry's
// exact bytes, not with a summary built from the bill, through pulls,
// read-through by id and by number, and changes of the entry upstream; the
// no-parameter list's entry beats list?date=today's; bills no list carried
// get a summary built from the bill.
func TestListEntryBytes(t *testing.T) {
	// 701's entries and bill disagree: name (the bill has no customer),
	// extra fields, key order, escapes. 702's bill name has spaces the
	// entry trimmed. 705 is listed but its bill is missing at first.
	e701 := `{"customername": "x", "id": 701, "date": "2026-03-22 10:00:00", "summ": 10.50, "number": "N\/701", "card": "\u0418-7"}`
	e701today := `{"id": 701, "date": "2026-03-22 10:00:00", "summ": 10.50, "number": "N\/701", "customername": "today's"}`
	e702 := `{"id":702,"date":"2026-03-22 11:00:00","summ":2,"number":"N-702","customername":"Борис"}`
	e705 := `{"id": 705, "date": "2026-03-22 09:00:00", "summ": 5, "number": "N-705", "customername": "Вера", "extra": [1, {"a": null}]}`
	e704 := `{"number": "N-704", "customername": "\u0413\u043e\u0441\u0442\u044c", "summ": 4.00, "date": "2026-03-22 12:00:00", "id": 704}`
	up := &entryUpstream{
		all:    []string{e701, e705},
		today:  []string{e701today, e702},
		number: map[string]string{"N-704": e704},
		bills: map[string]string{
			"701": `{"id": 701, "date": "2026-03-22 10:00:00", "summ": 10.50, "number": "N/701", "products": []}`,
			"702": `{"id": 702, "date": "2026-03-22 11:00:00", "summ": 2, "number": "N-702", "customer": {"name": "  Борис  "}, "products": []}`,
			"703": `{"id": 703, "date": "2026-03-22 08:00:00", "summ": 3, "number": "N-703", "customer": {"name": " Гриша \/ \u0418 "}, "products": []}`,
			"704": `{"id": 704, "date": "2026-03-22 12:00:00", "summ": 4.00, "number": "N-704", "products": []}`,
		},
		fetched: map[string]int{},
	}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	st := storetest.MustOpen(t)
	cfg := Config{URL: srv.URL, Interval: 50 * time.Millisecond, Timeout: 2 * time.Second,
		ReadThroughTimeout: 2 * time.Second, Journal: &journaltest.Journal{}, Logger: quietLogger()}
	s := MustOpenSyncer(t, cfg, st)
	ctx := context.Background()

	poll.Eventually(t, "bills 701 and 702 pulled", func() bool {
		_, err1 := st.Bill("701")
		_, err2 := st.Bill("702")
		return err1 == nil && err2 == nil
	})
	pulls := s.m.pulls.ok.Load()
	poll.Eventually(t, "three more pulls", func() bool { return s.m.pulls.ok.Load() >= pulls+3 })
	check := func(step string, q storage.ListQuery, want ...string) {
		t.Helper()
		if got, w := served(t, st, q), "["+strings.Join(want, ",")+"]"; got != w {
			t.Errorf("%s: list %+v =\n%s\nwant\n%s", step, q, got, w)
		}
	}
	// 702 is only in today's list: after one pull in the no-parameter list
	// (learned since), then out (the upstream's own list lacks it).
	check("pulled", storage.ListQuery{}, e701, e705)
	check("pulled", storage.ListQuery{Date: "2026-03-22"}, e702, e701, e705)
	check("pulled", storage.ListQuery{Number: "N/701"}, e701)
	// The entry and its bill disagree for good: that is no change, the bill
	// is fetched once, not on every pull.
	for _, id := range []string{"701", "702"} {
		if n := up.fetches(id); n != 1 {
			t.Errorf("bill %s fetched %d times in %d pulls, want once", id, n, s.m.pulls.ok.Load())
		}
	}

	// Read-through by id of a listed bill whose bill the pull missed.
	up.set(func(u *entryUpstream) {
		u.bills["705"] = `{"id": 705, "date": "2026-03-22 09:00:00", "summ": 5, "number": "N-705", "customer": {"name": "Другая"}}`
	})
	if _, err := s.BillByID(ctx, "705"); err != nil {
		t.Fatalf("BillByID(705): %v", err)
	}
	check("705 read through", storage.ListQuery{Number: "N-705"}, e705)
	// Read-through by id of a bill no list carried: a summary from the bill.
	if _, err := s.BillByID(ctx, "703"); err != nil {
		t.Fatalf("BillByID(703): %v", err)
	}
	check("703 read through", storage.ListQuery{Number: "N-703"},
		`{"id":703,"date":"2026-03-22 08:00:00","summ":3,"number":"N-703","customername":"Гриша / И"}`)
	// Read-through by number: the answer and the store are the entry's bytes.
	sums, err := s.ListByNumber(ctx, "N-704")
	if err != nil || len(sums) != 1 || string(sums[0].Raw) != e704 {
		t.Fatalf("ListByNumber(N-704) = %+v, %v; want the entry %s", sums, err, e704)
	}
	check("704 read through", storage.ListQuery{Number: "N-704"}, e704)
	if b, err := st.Bill("704"); err != nil || string(b.Body) != up.bills["704"] {
		t.Errorf("bill 704 not stored by the number read-through: %v", err)
	}

	// The entry changes upstream: a name changes (fetched again), then only
	// key order and escapes (refreshed, not fetched).
	e701b := strings.Replace(e701, `"x"`, `"y"`, 1)
	up.set(func(u *entryUpstream) { u.all = []string{e701b, e705} })
	poll.Eventually(t, "the changed entry of 701", func() bool { return served(t, st, storage.ListQuery{Number: "N/701"}) == "["+e701b+"]" })
	poll.Eventually(t, "701 fetched again", func() bool { return up.fetches("701") == 2 })
	e701c := `{"id":701,"date":"2026-03-22 10:00:00","summ":10.50,"number":"N/701","customername":"y","card":"И-7"}`
	up.set(func(u *entryUpstream) { u.all = []string{e701c, e705} })
	poll.Eventually(t, "the reordered entry of 701", func() bool { return served(t, st, storage.ListQuery{Number: "N/701"}) == "["+e701c+"]" })
	pulls = s.m.pulls.ok.Load()
	poll.Eventually(t, "two more pulls", func() bool { return s.m.pulls.ok.Load() >= pulls+2 })
	if n := up.fetches("701"); n != 2 {
		t.Errorf("bill 701 fetched %d times, want 2: a reordered entry is no changed summary field", n)
	}
	check("entries changed", storage.ListQuery{}, e701c, e705)

	// 701 leaves the upstream lists: off the no-parameter list, its last
	// entry kept for number= and date=.
	up.set(func(u *entryUpstream) { u.all, u.today = []string{e705}, nil })
	poll.Eventually(t, "701 off the no-parameter list", func() bool { return served(t, st, storage.ListQuery{}) == "["+e705+"]" })
	check("701 dropped", storage.ListQuery{Number: "N/701"}, e701c)
	check("701 dropped", storage.ListQuery{Date: "2026-03-22"}, e704, e702, e701c, e705,
		`{"id":703,"date":"2026-03-22 08:00:00","summ":3,"number":"N-703","customername":"Гриша / И"}`)
}
