package storage

import (
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	bolt "go.etcd.io/bbolt"
)

// upstreamAnswers are the simulator's real answers to the daemon's polls:
// hello, the list and today's list of its default bills.
type upstreamAnswers struct{ hello, list, today []byte }

func simAnswers(tb testing.TB) upstreamAnswers {
	tb.Helper()
	sim := crmsimtest.MustOpen(tb, crmsim.Config{})
	get := func(path string) []byte {
		resp, err := http.Get(sim.URL() + path)
		if err != nil {
			tb.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			tb.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return b
	}
	return upstreamAnswers{hello: get("/api/v2/hello"), list: get("/api/v2/list"), today: get("/api/v2/list?date=today")}
}

func poll(kind, query string, body []byte, at time.Time) shopbridge.JournalEntry {
	path := "/api/v2/list"
	if kind == "UPSTREAM_HELLO" {
		path = "/api/v2/hello"
	}
	return shopbridge.JournalEntry{Time: at, Client: "upstream", Kind: kind, Method: "GET", Path: path, Query: query,
		Status: 200, RespBody: body, Duration: time.Duration(300+rand.IntN(900)) * time.Microsecond, Source: "upstream"}
}

// cycle is what one sync cycle journals (sync/pull.go): hello at most
// every 10 minutes, the list and today's list.
func cycle(a upstreamAnswers, at time.Time, hello bool) []shopbridge.JournalEntry {
	var es []shopbridge.JournalEntry
	if hello {
		es = append(es, poll("UPSTREAM_HELLO", "", a.hello, at))
	}
	return append(es, poll("UPSTREAM_LIST", "", a.list, at.Add(time.Millisecond)), poll("UPSTREAM_LIST", "date=today", a.today, at.Add(2*time.Millisecond)))
}

func openTemp(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), FileName), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestJournalFoldsRepeatedPolls(t *testing.T) {
	a := simAnswers(t)
	s := openTemp(t)
	t0 := time.Date(2026, 3, 22, 9, 0, 0, 0, time.UTC)
	register := shopbridge.JournalEntry{Client: "192.168.1.20", Device: "dev-1", Kind: "LIST", Method: "GET", Path: "/api/v2/list",
		Status: 200, RespBody: a.list, Source: "store"}
	// Ten cycles 10 s apart, a register's list between them: the register's
	// ten are entries, the polls fold into the first cycle's.
	for i := range 10 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		r := register
		r.Time = at.Add(5 * time.Second)
		if err := s.AppendJournal(append(cycle(a, at, i == 0), r)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Journal(JournalQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 13 {
		t.Fatalf("%d entries, want 13 (hello, two lists, ten of the register's)", len(all))
	}
	last := t0.Add(90 * time.Second)
	for _, e := range all {
		switch {
		case e.Client != "upstream":
			if e.Repeats != 0 {
				t.Errorf("a register's entry %d has repeats %d", e.Seq, e.Repeats)
			}
		case e.Kind == "UPSTREAM_HELLO":
			if e.Repeats != 0 {
				t.Errorf("hello (asked once) has repeats %d", e.Repeats)
			}
		default:
			wantLast := last.Add(time.Millisecond)
			if e.Query == "date=today" {
				wantLast = last.Add(2 * time.Millisecond)
			}
			if e.Repeats != 9 || !e.LastTime.Equal(wantLast) || !e.Time.Equal(t0.Add(e.Time.Sub(t0))) {
				t.Errorf("poll %s %q: repeats %d last %v, want 9 and %v", e.Kind, e.Query, e.Repeats, e.LastTime, wantLast)
			}
		}
	}

	// A changed answer is an entry of its own; the same again folds into it;
	// the old answer once more is new again (it is not the previous one).
	changed := append([]byte(nil), a.list[:len(a.list)-1]...)
	changed = append(changed, []byte(`,{"id":1,"date":"2026-03-22 09:02:00","summ":1,"number":"N1","customername":""}]`)...)
	at := t0.Add(100 * time.Second)
	for i, body := range [][]byte{changed, changed, changed, a.list} {
		if err := s.AppendJournal([]shopbridge.JournalEntry{poll("UPSTREAM_LIST", "", body, at.Add(time.Duration(i)*10*time.Second))}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.JournalPage(JournalPageQuery{Kind: "UPSTREAM_LIST", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, e := range page.Entries {
		if e.Query == "" {
			got = append(got, e.Repeats)
		}
	}
	if len(got) != 3 || got[0] != 0 || got[1] != 2 || got[2] != 9 {
		t.Errorf("list entries' repeats newest first = %v, want [0 2 9] (back to the old answer, the change twice more, the first)", got)
	}
	one, err := s.JournalEntry(page.Entries[1].Seq)
	if err != nil || one.Repeats != 2 || !one.LastTime.Equal(at.Add(20*time.Second)) {
		t.Errorf("JournalEntry(%d) = repeats %d last %v (%v), want 2 and %v", page.Entries[1].Seq, one.Repeats, one.LastTime, err, at.Add(20*time.Second))
	}

	// Without polls, the registers' exchanges remain.
	np, err := s.JournalPage(JournalPageQuery{NoPolls: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(np.Entries) != 10 {
		t.Errorf("NoPolls page has %d entries, want the register's 10", len(np.Entries))
	}
	for _, e := range np.Entries {
		if e.Client == "upstream" {
			t.Errorf("NoPolls page holds upstream entry %d %s", e.Seq, e.Kind)
		}
	}

	// A receipt pushed (POST) never folds, even with the same bytes.
	push := shopbridge.JournalEntry{Time: at, Client: "upstream", Kind: "UPSTREAM_RECEIPT", Method: "POST", Path: "/api/v2/receipts", Status: 200, ReqReceipt: "ev-1"}
	if err := s.AppendJournal([]shopbridge.JournalEntry{push, push}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.JournalPage(JournalPageQuery{Kind: "UPSTREAM_RECEIPT"}); len(p.Entries) != 2 {
		t.Errorf("%d receipt pushes, want 2", len(p.Entries))
	}

	// Once the folded entry is pruned, the same answer is an entry again
	// and the stale repeat records go.
	if _, err := s.PruneJournal(at.Add(time.Hour), 30*time.Minute, 0, 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendJournal([]shopbridge.JournalEntry{poll("UPSTREAM_LIST", "", a.list, at.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Journal(JournalQuery{})
	if len(after) != 1 || after[0].Repeats != 0 {
		t.Errorf("after pruning everything, the same poll gave %+v, want one new entry without repeats", after)
	}
	var stale int
	_ = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJournalRepeats).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if k[0] == 'r' {
				stale++
			}
		}
		return nil
	})
	if stale != 0 {
		t.Errorf("%d repeat records left for pruned entries", stale)
	}
}

// BenchmarkJournalDayOfPolls measures what folding saves: a day of a quiet
// shop (an upstream whose answers never change), polled every 5 s and every
// 10 s, written as the journal writer writes it (one commit a cycle), with
// folding and without. It reports entries, the journal's bytes as the store
// counts them and the store file's size.
func BenchmarkJournalDayOfPolls(b *testing.B) {
	a := simAnswers(b)
	for _, interval := range []time.Duration{5 * time.Second, 10 * time.Second} {
		for _, fold := range []bool{false, true} {
			name := interval.String() + "/fold=" + map[bool]string{false: "off", true: "on"}[fold]
			b.Run(name, func(b *testing.B) {
				foldPolls = fold
				defer func() { foldPolls = true }()
				for b.Loop() {
					s := openTemp(b)
					t0 := time.Date(2026, 3, 22, 0, 0, 0, 0, time.UTC)
					var lastHello time.Time
					for at := t0; at.Before(t0.Add(24 * time.Hour)); at = at.Add(interval) {
						hello := at.Sub(lastHello) >= 10*time.Minute
						if hello {
							lastHello = at
						}
						if err := s.AppendJournal(cycle(a, at, hello)); err != nil {
							b.Fatal(err)
						}
					}
					st, err := s.Stats()
					if err != nil {
						b.Fatal(err)
					}
					fi, err := os.Stat(s.Path())
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(st.Journal), "entries")
					b.ReportMetric(float64(st.JournalBytes), "journal-bytes")
					b.ReportMetric(float64(fi.Size()), "file-bytes")
				}
			})
		}
	}
}

// A batch where folded polls sit among a register's calls keeps the calls
// and the unfolded polls in their order, numbered without gaps.
func TestJournalFoldKeepsOrderInBatch(t *testing.T) {
	a := simAnswers(t)
	s := openTemp(t)
	t0 := time.Date(2026, 3, 22, 9, 0, 0, 0, time.UTC)
	reg := func(dev string) shopbridge.JournalEntry {
		return shopbridge.JournalEntry{Time: t0, Client: "192.168.1.20", Device: dev, Kind: "LIST", Method: "GET",
			Path: "/api/v2/list", Status: 200, RespBody: a.list, Source: "store"}
	}
	if err := s.AppendJournal([]shopbridge.JournalEntry{poll("UPSTREAM_LIST", "", a.list, t0)}); err != nil {
		t.Fatal(err)
	}
	batch := []shopbridge.JournalEntry{
		reg("r1"), reg("r2"),
		poll("UPSTREAM_LIST", "", a.list, t0.Add(time.Second)), // folds
		reg("r3"),
		poll("UPSTREAM_LIST", "", a.today, t0.Add(2*time.Second)), // a new answer: kept
		poll("UPSTREAM_LIST", "", a.today, t0.Add(3*time.Second)), // folds into the one before
		reg("r4"),
	}
	if err := s.AppendJournal(batch); err != nil {
		t.Fatal(err)
	}
	all, err := s.Journal(JournalQuery{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(all) // newest first
	var got []string
	for i, e := range all {
		if e.Seq != all[0].Seq+uint64(i) {
			t.Errorf("entry %d has seq %d after %d", i, e.Seq, all[0].Seq)
		}
		got = append(got, e.Device+e.Kind[:1]+strconv.Itoa(e.Repeats))
	}
	want := "U1 r1L0 r2L0 r3L0 U1 r4L0"
	if strings.Join(got, " ") != want {
		t.Errorf("journal %q, want %q", strings.Join(got, " "), want)
	}
	if s := string(all[4].RespBody); s != string(a.today) {
		t.Errorf("the second poll's entry has the first answer")
	}
}
