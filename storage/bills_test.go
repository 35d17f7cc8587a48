package storage_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// listFixture is an upstream list answer as the cloud sends it (from the
// seed journal, account 171), newest first.
const listFixture = `[
{
"id": 49040,
"date": "2026-03-22 21:31:22",
"summ": 4604.04,
"number": "49040-CRM",
"customername": "Александр Сизов"
},
{
"id": 49024,
"date": "2026-03-22 15:42:37",
"summ": 3216.02,
"number": "50259",
"customername": "Максим Рудой"
},
{
"id": 49020,
"date": "2026-03-21 14:31:52",
"summ": 3394.86,
"number": "50255",
"customername": "Дмитрий Кузьмин"
}
]`

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSummaries(t testing.TB, list string) []shopbridge.BillSummary {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(list), &raws); err != nil {
		t.Fatal(err)
	}
	out := make([]shopbridge.BillSummary, len(raws))
	for i, raw := range raws {
		s, err := shopbridge.ParseSummary(raw)
		if err != nil {
			t.Fatalf("summary %d: %v", i, err)
		}
		out[i] = s
	}
	return out
}

func summary(t testing.TB, id, date, number string) shopbridge.BillSummary {
	t.Helper()
	s, err := shopbridge.ParseSummary([]byte(fmt.Sprintf(`{"id": %s, "date": %q, "summ": 100.50, "number": %q, "customername": "Покупатель %s"}`, id, date, number, id)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// billBody is a bill/byid answer for a summary made by summary().
func billBody(id, date, number string) []byte {
	return []byte(fmt.Sprintf(`{"id": %s, "date": %q, "summ": 100.50, "number": %q, "customer": {"id": 1, "name": "Покупатель %s "}, "products": [], "prepayment": 0, "prepaymentEnable": true}`,
		id, date, number, id))
}

func ids(sums []shopbridge.BillSummary) string {
	var s []string
	for _, x := range sums {
		s = append(s, x.ID)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func mustList(t testing.TB, s *storage.Store, q storage.ListQuery) string {
	t.Helper()
	sums, err := s.List(q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	return ids(sums)
}

func settle(t testing.TB, s *storage.Store, eventID, typ, billID, method string) {
	t.Helper()
	if _, err := s.AcceptReceipt(receipt(eventID, typ, billID, method)); err != nil {
		t.Fatal(err)
	}
}

// TestListSemantics walks SPEC §1 "List parameters" through a day of syncs.
func TestListSemantics(t *testing.T) {
	s := storetest.MustOpen(t)
	t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	step := func(name string, q storage.ListQuery, want string) {
		t.Helper()
		if got := mustList(t, s, q); got != want {
			t.Errorf("%s: List(%+v) = %s, want %s", name, q, got, want)
		}
	}
	a := summary(t, "1", "2026-03-21 10:00:00", "A-1")
	b := summary(t, "2", "2026-03-22 09:00:00", "B-2")
	c := summary(t, "3", "2026-03-22 11:00:00", "C-3")

	step("empty store", storage.ListQuery{}, "[]")
	fetch, err := s.ApplyList([]shopbridge.BillSummary{c, b, a}, storage.ListAll, t0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(fetch); !slices.Equal(fetch, []string{"1", "2", "3"}) {
		t.Errorf("first full list: fetch %v, want every bill", fetch)
	}
	step("after the first full list", storage.ListQuery{}, "[3 2 1]")
	step("date", storage.ListQuery{Date: "2026-03-22"}, "[3 2]")
	step("other date", storage.ListQuery{Date: "2026-03-21"}, "[1]")
	step("date with no bills", storage.ListQuery{Date: "2026-03-23"}, "[]")
	step("number", storage.ListQuery{Number: "B-2"}, "[2]")
	step("unknown number", storage.ListQuery{Number: "B"}, "[]")

	// Only the summaries are known: bill/byid misses until fetched.
	if _, err := s.Bill("2"); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
		t.Errorf("Bill of a listed, unfetched bill = %v, want ENOTFOUND", err)
	}
	for _, x := range []shopbridge.BillSummary{a, b, c} {
		if _, changed, err := s.PutBill(billBody(x.ID, x.Date, x.Number), t0); err != nil || !changed {
			t.Fatalf("PutBill %s: changed=%v err=%v", x.ID, changed, err)
		}
	}
	fetch, err = s.ApplyList([]shopbridge.BillSummary{c, b, a}, storage.ListAll, t0.Add(time.Minute))
	if err != nil || len(fetch) != 0 {
		t.Errorf("same full list again: fetch %v, err %v; want nothing to fetch", fetch, err)
	}

	// A bill learned since (read through) joins the no-parameter list.
	d := summary(t, "4", "2026-03-22 12:00:00", "D-4")
	if _, changed, err := s.PutBill(billBody(d.ID, d.Date, d.Number), t0); err != nil || !changed {
		t.Fatalf("PutBill of a new bill: changed=%v err=%v", changed, err)
	}
	step("bill learned by id", storage.ListQuery{}, "[4 3 2 1]")
	// So does one from a partial list (date=today).
	e := summary(t, "5", "2026-03-22 12:30:00", "E-5")
	fetch, err = s.ApplyList([]shopbridge.BillSummary{e, c}, storage.ListPartial, t0)
	if err != nil || !slices.Equal(fetch, []string{"5"}) {
		t.Errorf("partial list: fetch %v, err %v; want [5]", fetch, err)
	}
	step("bill learned from a partial list", storage.ListQuery{}, "[5 4 3 2 1]")
	if !s.SyncedAt().Equal(t0.Add(time.Minute)) {
		t.Errorf("a partial list moved SyncedAt to %v", s.SyncedAt())
	}

	// Settled here: off the no-parameter and date lists, still by number.
	settle(t, s, "ev-sell-2", "SELL", "2", "FullSettlement")
	step("settled", storage.ListQuery{}, "[5 4 3 1]")
	step("settled, date", storage.ListQuery{Date: "2026-03-22"}, "[5 4 3]")
	step("settled, number", storage.ListQuery{Number: "B-2"}, "[2]")

	// The upstream still lists the settled bill (the receipt is not
	// pushed yet): it stays settled. Bills it no longer lists, and bills
	// learned since that it does not list, leave the list.
	if _, err := s.ApplyList([]shopbridge.BillSummary{b, a}, storage.ListAll, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	step("full list without 3, 4, 5", storage.ListQuery{}, "[1]")
	step("dropped bills by number", storage.ListQuery{Number: "C-3"}, "[3]")
	if bill, err := s.Bill("2"); err != nil || !bill.Settled || !bill.Listed {
		t.Errorf("bill 2 = %+v, %v; want listed and still settled", bill, err)
	}
	// The upstream drops the settled bill: the local settlement is done.
	if _, err := s.ApplyList([]shopbridge.BillSummary{a}, storage.ListAll, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if bill, err := s.Bill("2"); err != nil || bill.Settled || bill.Listed {
		t.Errorf("bill 2 = %+v, %v; want neither listed nor settled", bill, err)
	}
	// Listed again (say, the upstream reopened it): open again.
	if _, err := s.ApplyList([]shopbridge.BillSummary{b, a}, storage.ListAll, t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	step("listed again", storage.ListQuery{}, "[2 1]")
	if !s.SyncedAt().Equal(t0.Add(4 * time.Minute)) {
		t.Errorf("SyncedAt = %v, want the last full list", s.SyncedAt())
	}
}

func TestApplyListChanges(t *testing.T) {
	s := storetest.MustOpen(t)
	t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	a := summary(t, "10", "2026-03-22 10:00:00", "N-10")
	if _, err := s.ApplyList([]shopbridge.BillSummary{a}, storage.ListAll, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutBill(billBody("10", a.Date, a.Number), t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		raw    string
		fetch  bool
		number string
	}{
		{"same", `{"id": 10, "date": "2026-03-22 10:00:00", "summ": 100.50, "number": "N-10", "customername": "Покупатель 10"}`, false, "N-10"},
		{"whitespace only", `{"id":10,"date":"2026-03-22 10:00:00","summ":100.50,"number":"N-10","customername":"Покупатель 10"}`, false, "N-10"},
		{"summ", `{"id": 10, "date": "2026-03-22 10:00:00", "summ": 100.5, "number": "N-10", "customername": "Покупатель 10"}`, true, "N-10"},
		{"customer", `{"id": 10, "date": "2026-03-22 10:00:00", "summ": 100.5, "number": "N-10", "customername": "Другой"}`, true, "N-10"},
		{"number", `{"id": 10, "date": "2026-03-22 10:00:00", "summ": 100.5, "number": "N-11", "customername": "Другой"}`, true, "N-11"},
		{"date", `{"id": 10, "date": "2026-03-21 10:00:00", "summ": 100.5, "number": "N-11", "customername": "Другой"}`, true, "N-11"},
	}
	for _, tt := range tests {
		sum, err := shopbridge.ParseSummary([]byte(tt.raw))
		if err != nil {
			t.Fatal(err)
		}
		fetch, err := s.ApplyList([]shopbridge.BillSummary{sum}, storage.ListAll, t0)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(fetch) == 1; got != tt.fetch {
			t.Errorf("%s: fetch = %v, want fetch %v", tt.name, fetch, tt.fetch)
		}
		// The list serves the summary as last received, and the indexes follow.
		sums, _ := s.List(storage.ListQuery{})
		if len(sums) != 1 || string(sums[0].Raw) != tt.raw {
			t.Errorf("%s: list = %q, want the new raw summary", tt.name, sums)
		}
		if got := mustList(t, s, storage.ListQuery{Number: tt.number}); got != "[10]" {
			t.Errorf("%s: by number %s = %s", tt.name, tt.number, got)
		}
		if got := mustList(t, s, storage.ListQuery{Date: sum.Date[:10]}); got != "[10]" {
			t.Errorf("%s: by date %s = %s", tt.name, sum.Date[:10], got)
		}
	}
	if got := mustList(t, s, storage.ListQuery{Number: "N-10"}); got != "[]" {
		t.Errorf("old number still indexed: %s", got)
	}
	if got := mustList(t, s, storage.ListQuery{Date: "2026-03-22"}); got != "[]" {
		t.Errorf("old date still indexed: %s", got)
	}
}

func TestListNewestFirst(t *testing.T) {
	s := storetest.MustOpen(t)
	t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	// Same second for several bills: the higher id is newer; ids of
	// different lengths sort as numbers.
	sums := []shopbridge.BillSummary{
		summary(t, "9", "2026-03-22 10:00:00", "same"),
		summary(t, "10", "2026-03-22 10:00:00", "same"),
		summary(t, "123456789012345678901", "2026-03-22 09:59:59", "same"),
		summary(t, "8", "2026-03-22 23:59:59", "same"),
		summary(t, "7", "2026-03-21 23:59:59", "same"),
		summary(t, "6", "2026-03-23 00:00:00", "same"),
	}
	if _, err := s.ApplyList(sums, storage.ListAll, t0); err != nil {
		t.Fatal(err)
	}
	want := "[6 8 10 9 123456789012345678901 7]"
	for _, q := range []storage.ListQuery{{}, {Number: "same"}} {
		if got := mustList(t, s, q); got != want {
			t.Errorf("List(%+v) = %s, want %s", q, got, want)
		}
	}
	if got := mustList(t, s, storage.ListQuery{Date: "2026-03-22"}); got != "[8 10 9 123456789012345678901]" {
		t.Errorf("date list = %s", got)
	}
}

// TestFidelity checks that what the upstream sent comes back byte for byte.
func TestFidelity(t *testing.T) {
	s := storetest.MustOpen(t)
	t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	raws := []string{
		`{"id": 123456789012345678901, "date": "2026-03-22 21:31:22", "summ": 4604.04, "number": "49040-CRM", "customername": "\u0418\u043b\u044c\u044f \"Papa\" 🙂"}`,
		`{"id":49024,"date":"2026-03-22 15:42:37","summ":3216.020,"number":"50259\/1","customername":"Максим Рудой","extra":{"a":[1e2]}}`,
		`{"customername": "", "number": "", "summ": 0, "date": "2026-03-20 00:00:00", "id": "77"}`,
	}
	var sums []shopbridge.BillSummary
	for _, raw := range raws {
		sum, err := shopbridge.ParseSummary([]byte("  " + raw + "\n"))
		if err != nil {
			t.Fatalf("ParseSummary(%s): %v", raw, err)
		}
		sums = append(sums, sum)
	}
	if sums[0].ID != "123456789012345678901" || sums[0].Summ != "4604.04" || sums[0].CustomerName != `Илья "Papa" 🙂` {
		t.Errorf("parsed summary = %+v", sums[0])
	}
	if sums[1].Number != "50259/1" || sums[1].Summ != "3216.020" || sums[2].ID != "77" {
		t.Errorf("parsed summaries = %+v %+v", sums[1], sums[2])
	}
	if _, err := s.ApplyList(sums, storage.ListAll, t0); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(storage.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range raws {
		if string(got[i].Raw) != raw {
			t.Errorf("summary %d came back as\n%s\nwant\n%s", i, got[i].Raw, raw)
		}
	}

	body := mustRead(t, "testdata/bill_fidelity.json")
	b, changed, err := s.PutBill(body, t0)
	if err != nil || !changed {
		t.Fatalf("PutBill: changed=%v err=%v", changed, err)
	}
	want := bytes.TrimSpace(body)
	if !bytes.Equal(b.Body, want) {
		t.Error("PutBill returned other bytes")
	}
	// The list's own summary is kept.
	if string(b.Summary.Raw) != raws[0] {
		t.Errorf("summary after PutBill = %s, want the list's", b.Summary.Raw)
	}
	got1, err := s.Bill("123456789012345678901")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got1.Body, want) {
		t.Errorf("Bill body differs:\n%s", got1.Body)
	}
	prefix := []byte("prefix:")
	got2, err := s.BillBody(prefix, "123456789012345678901")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got2, append([]byte("prefix:"), want...)) {
		t.Errorf("BillBody differs:\n%s", got2)
	}
	for _, needle := range []string{`4604.04`, `123456789012345678901`, `\u0418\u043b\u044c\u044f \"Papa\" 🙂`, `http:\/\/example.ru\/tea`,
		`\u001d93dGVz`, `"22%"`, `"itemType": 3`, `"3f2504e0-4f89-11d3-9a0c-0305e82c3301"`, `[1, 2.50, null, true]`} {
		if !bytes.Contains(got2, []byte(needle)) {
			t.Errorf("bill body lost %s", needle)
		}
	}
	// The same bytes again change nothing.
	if _, changed, err := s.PutBill(body, t0.Add(time.Hour)); err != nil || changed {
		t.Errorf("PutBill of the same bytes: changed=%v err=%v", changed, err)
	}
	if b, _ := s.Bill("123456789012345678901"); !b.UpdatedAt.Equal(t0) {
		t.Errorf("UpdatedAt moved to %v on an unchanged PutBill", b.UpdatedAt)
	}
}

func TestPutBillDerivesSummary(t *testing.T) {
	s := storetest.MustOpen(t)
	t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	body := mustRead(t, "testdata/bill_fidelity.json")
	b, _, err := s.PutBill(body, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Never listed: the summary is derived the way the cloud derives it,
	// the customer's name trimmed, numbers as received.
	want := `{"id":123456789012345678901,"date":"2026-03-22 21:31:22","summ":4604.04,"number":"49040-CRM","customername":"Илья \"Papa\" 🙂"}`
	if string(b.Summary.Raw) != want {
		t.Errorf("derived summary\n%s\nwant\n%s", b.Summary.Raw, want)
	}
	if !json.Valid(b.Summary.Raw) {
		t.Error("derived summary is not JSON")
	}
	if got := mustList(t, s, storage.ListQuery{}); got != "[123456789012345678901]" {
		t.Errorf("a bill learned by id is not in the list: %s", got)
	}
	// A changed bill replaces the bytes and the summary.
	changedBody := bytes.Replace(body, []byte(`"summ": 4604.04`), []byte(`"summ": 4700`), 1)
	b, changed, err := s.PutBill(changedBody, t0.Add(time.Minute))
	if err != nil || !changed {
		t.Fatalf("PutBill changed bill: changed=%v err=%v", changed, err)
	}
	if b.Summary.Summ != "4700" || !b.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after change: %+v", b.Summary)
	}
	got, _ := s.BillBody(nil, "123456789012345678901")
	if !bytes.Equal(got, bytes.TrimSpace(changedBody)) {
		t.Error("BillBody does not serve the changed bytes")
	}
}

func TestPutBillRejects(t *testing.T) {
	s := storetest.MustOpen(t)
	tests := []struct {
		name, body, kind string
	}{
		{"not JSON", `{"id": 1,`, shopbridge.EINVALID},
		{"array", `[{"id": 1}]`, shopbridge.EINVALID},
		{"no id", `{"date": "2026-03-22 10:00:00"}`, shopbridge.EMISSING},
		{"null id", `{"id": null}`, shopbridge.EMISSING},
		{"negative id", `{"id": -5}`, shopbridge.EINVALID},
		{"fractional id", `{"id": 5.5}`, shopbridge.EINVALID},
		{"exponent id", `{"id": 1e3}`, shopbridge.EINVALID},
		{"letters id", `{"id": "12a"}`, shopbridge.EINVALID},
		{"leading zero id", `{"id": "007"}`, shopbridge.EINVALID},
		{"empty string id", `{"id": ""}`, shopbridge.EINVALID},
		{"object id", `{"id": {}}`, shopbridge.EINVALID},
		{"41 digit id", `{"id": 12345678901234567890123456789012345678901}`, shopbridge.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.PutBill([]byte(tt.body), time.Now())
			if k := shopbridge.ErrorKind(err); k != tt.kind {
				t.Errorf("PutBill(%s) = %v (kind %q), want kind %q", tt.body, err, k, tt.kind)
			}
		})
	}
	if st, _ := s.Stats(); st.Bills != 0 {
		t.Errorf("rejected bills were stored: %+v", st)
	}
}

// TestBillBodyCache: bill/byid is served from memory once read, and a
// change through PutBill is never hidden by it, also while readers race the
// writer.
func TestBillBodyCache(t *testing.T) {
	s := storetest.MustOpen(t)
	at := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	version := func(n int) []byte {
		return []byte(fmt.Sprintf(`{"id": 77, "date": "2026-03-22 10:00:00", "summ": %d, "number": "77"}`, n))
	}
	if _, _, err := s.PutBill(version(0), at); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // the second and third reads come from memory
		if b, err := s.BillBody(nil, "77"); err != nil || !bytes.Equal(b, version(0)) {
			t.Fatalf("read %d: %s, %v", i, b, err)
		}
	}
	if _, _, err := s.PutBill(version(1), at); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.BillBody(nil, "77"); !bytes.Equal(b, version(1)) {
		t.Fatalf("after PutBill: %s", b)
	}
	const writes = 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.BillBody(nil, "77"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 2; i < writes; i++ {
		if _, _, err := s.PutBill(version(i), at); err != nil {
			t.Fatal(err)
		}
		if b, _ := s.BillBody(nil, "77"); !bytes.Equal(b, version(i)) {
			t.Fatalf("write %d then read: %s", i, b)
		}
	}
	close(stop)
	wg.Wait()
	if b, _ := s.BillBody(nil, "77"); !bytes.Equal(b, version(writes-1)) {
		t.Fatalf("final read: %s", b)
	}
}

// rawList is what the no-parameter list answers, as one string of bytes.
func rawList(t testing.TB, s *storage.Store, q storage.ListQuery) string {
	t.Helper()
	sums, err := s.List(q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	var b strings.Builder
	for i, sum := range sums {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(sum.Raw)
	}
	return "[" + b.String() + "]"
}

// TestListEntryBytesWin: a bill an upstream list carried is listed with
// that entry's exact bytes, whatever its bill says, by every list query,
// until a list brings another entry; also after the bill is fetched again,
// after it leaves the upstream list and after a restart.
func TestListEntryBytesWin(t *testing.T) {
	path := filepath.Join(t.TempDir(), storage.FileName)
	s, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	// The entry and the bill disagree: another customer name (the bill has
	// no customer at all), a field the bill lacks, another key order,
	// escapes the bill does not use.
	entry := `{"customername":"x \u0418\u043b\u044c\u044f","number":"N\/501","id":501,"date":"2026-03-22 10:00:00","summ":10.50,"discount":{"card":"\/gold"}}`
	bill := []byte(`{"id": 501, "date": "2026-03-22 10:00:00", "summ": 10.50, "number": "N/501", "products": [], "prepayment": 0, "prepaymentEnable": true}`)
	queries := map[string]storage.ListQuery{"none": {}, "number": {Number: "N/501"}, "date": {Date: "2026-03-22"}}
	served := func(step, want string) {
		t.Helper()
		for name, q := range queries {
			if got := rawList(t, s, q); got != "["+want+"]" {
				t.Errorf("%s: list %s =\n%s\nwant\n[%s]", step, name, got, want)
			}
		}
		if b, err := s.Bill("501"); err != nil || string(b.Summary.Raw) != want {
			t.Errorf("%s: Bill(501).Summary = %s, %v", step, b.Summary.Raw, err)
		}
	}
	apply := func(step, raw string, kind storage.ListKind, wantFetch bool) {
		t.Helper()
		var sums []shopbridge.BillSummary
		if raw != "" {
			sums = mustSummaries(t, "["+raw+"]")
		}
		fetch, err := s.ApplyList(sums, kind, t0)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got := len(fetch) > 0; got != wantFetch {
			t.Errorf("%s: fetch %v, want a fetch: %v", step, fetch, wantFetch)
		}
	}

	apply("first list", entry, storage.ListAll, true)
	if _, changed, err := s.PutBill(bill, t0); err != nil || !changed {
		t.Fatalf("PutBill: changed=%v err=%v", changed, err)
	}
	served("bill fetched after its entry", entry)
	apply("the same entry again", entry, storage.ListAll, false) // no fetch loop
	if _, changed, err := s.PutBill(bill, t0); err != nil || changed {
		t.Errorf("PutBill of the same bill: changed=%v err=%v", changed, err)
	}
	// The bill changes but the entry does not (yet): new body, same entry.
	bill2 := bytes.Replace(bill, []byte(`"products": []`), []byte(`"products": [{"id": 1}]`), 1)
	if _, changed, err := s.PutBill(bill2, t0); err != nil || !changed {
		t.Fatalf("PutBill of a changed bill: changed=%v err=%v", changed, err)
	}
	served("bill changed", entry)
	if b, _ := s.BillBody(nil, "501"); !bytes.Equal(b, bill2) {
		t.Errorf("bill body = %s, want the changed bill", b)
	}

	// The entry's bytes change without a field changing: refreshed, no fetch.
	reordered := `{"id":501, "date":"2026-03-22 10:00:00", "summ":10.50, "number":"N/501", "customername":"x Илья", "discount":{"card":"/gold"}}`
	apply("entry reordered", reordered, storage.ListAll, false)
	served("entry reordered", reordered)
	// A field changes: refreshed and the bill is fetched again.
	renamed := `{"id":501, "date":"2026-03-22 10:00:00", "summ":10.50, "number":"N/501", "customername":"Илья"}`
	apply("entry renamed", renamed, storage.ListAll, true)
	served("entry renamed", renamed)
	// A partial list (date=today, number= read-through) that carries the bill
	// is the latest word on it, too.
	partial := `{"id":501,"date":"2026-03-22 10:00:00","summ":10.50,"number":"N/501","customername":"Илья","today":true}`
	apply("partial list", partial, storage.ListPartial, false)
	served("partial list", partial)

	// The upstream drops it: it leaves the no-parameter list and keeps its
	// last entry for number= and date=, also when its bill comes again.
	apply("dropped", "", storage.ListAll, false)
	if got := rawList(t, s, storage.ListQuery{}); got != "[]" {
		t.Errorf("dropped bill still in the no-parameter list: %s", got)
	}
	if _, _, err := s.PutBill(bill, t0); err != nil {
		t.Fatal(err)
	}
	delete(queries, "none")
	served("dropped, bill stored again", partial)

	// The bytes survive a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = storetest.MustOpenAt(t, path)
	served("after reopen", partial)
	apply("listed again after reopen", entry, storage.ListAll, true)
	queries["none"] = storage.ListQuery{}
	served("listed again after reopen", entry)
}

// TestDerivedSummaryUntilListed: a bill learned without a list entry is
// listed with a summary built from the bill, rebuilt when the bill changes,
// until a list carries it; from then on the entry's bytes are served.
func TestDerivedSummaryUntilListed(t *testing.T) {
	s := storetest.MustOpen(t)
	t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	bill := []byte(`{"id": 601, "date": "2026-03-22 11:00:00", "summ": 5, "number": "R-601", "customer": {"name": "  Анна  "}}`)
	if _, _, err := s.PutBill(bill, t0); err != nil {
		t.Fatal(err)
	}
	derived := `[{"id":601,"date":"2026-03-22 11:00:00","summ":5,"number":"R-601","customername":"Анна"}]`
	if got := rawList(t, s, storage.ListQuery{}); got != derived {
		t.Errorf("read-through bill listed as %s, want %s", got, derived)
	}
	bill2 := bytes.Replace(bill, []byte("Анна"), []byte("Мария"), 1)
	if _, _, err := s.PutBill(bill2, t0); err != nil {
		t.Fatal(err)
	}
	derived2 := strings.Replace(derived, "Анна", "Мария", 1)
	if got := rawList(t, s, storage.ListQuery{Number: "R-601"}); got != derived2 {
		t.Errorf("changed read-through bill listed as %s, want %s", got, derived2)
	}
	// Now a list carries it with the cloud's own bytes (and another name).
	entry := `{"id": 601, "date": "2026-03-22 11:00:00", "summ": 5, "number": "R-601", "customername": "Анна  "}`
	fetch, err := s.ApplyList(mustSummaries(t, "["+entry+"]"), storage.ListAll, t0)
	if err != nil || !slices.Equal(fetch, []string{"601"}) {
		t.Errorf("listing a read-through bill under another name: fetch %v, %v; want [601]", fetch, err)
	}
	if _, _, err := s.PutBill(bill2, t0); err != nil {
		t.Fatal(err)
	}
	if got := rawList(t, s, storage.ListQuery{}); got != "["+entry+"]" {
		t.Errorf("listed bill served as %s, want the entry %s", got, entry)
	}
}

// TestSharedBillBody: the shared bytes are the bill's, and a change to the
// bill replaces them rather than writing into what a reader (an answer, its
// journal entry) still holds.
func TestSharedBillBody(t *testing.T) {
	s := storetest.MustOpen(t)
	at := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	v1 := []byte(`{"id": 78, "date": "2026-03-22 10:00:00", "summ": 1, "number": "78"}`)
	v2 := []byte(`{"id": 78, "date": "2026-03-22 10:00:00", "summ": 2, "number": "78"}`)
	if _, _, err := s.PutBill(v1, at); err != nil {
		t.Fatal(err)
	}
	first, err := s.SharedBillBody("78") // read from the file
	if err != nil || !bytes.Equal(first, v1) {
		t.Fatalf("SharedBillBody = %s, %v", first, err)
	}
	held, err := s.SharedBillBody("78") // from memory
	if err != nil || !bytes.Equal(held, v1) {
		t.Fatalf("SharedBillBody again = %s, %v", held, err)
	}
	if _, _, err := s.PutBill(v2, at); err != nil {
		t.Fatal(err)
	}
	if now, _ := s.SharedBillBody("78"); !bytes.Equal(now, v2) {
		t.Errorf("after the change: %s", now)
	}
	if !bytes.Equal(held, v1) || !bytes.Equal(first, v1) {
		t.Errorf("the change wrote into bytes a reader held: %s / %s", first, held)
	}
	if _, err := s.SharedBillBody("79"); shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
		t.Errorf("unknown bill: %v, want ENOTFOUND", err)
	}
}
