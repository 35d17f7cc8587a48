package crmsim_test

import (
	"bytes"
	"encoding/json"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
)

// call does one request and returns status, body and headers.
func call(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp.StatusCode, b, resp.Header
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	st, b, _ := call(t, http.MethodGet, url, nil, nil)
	return st, b
}

// decode parses JSON keeping number text.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %.200s", err, b)
	}
	return v
}

// ids returns the id text of each summary in a list answer.
func ids(t *testing.T, b []byte) []string {
	t.Helper()
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("list answer: %v: %.200s", err, b)
	}
	out := []string{}
	for _, r := range rows {
		out = append(out, string(r["id"]))
	}
	return out
}

// evotorError checks an Evotor error body and returns its first code.
func evotorError(t *testing.T, b []byte) int {
	t.Helper()
	var e struct {
		Errors []struct {
			Code    int    `json:"code"`
			Reason  string `json:"reason"`
			Subject string `json:"subject"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Reason == "" {
		t.Fatalf("not an Evotor error body: %s", b)
	}
	return e.Errors[0].Code
}

func TestHello(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	st, b := get(t, s.URL()+"/api/v2/hello")
	if want := `{"system": "new-sens-gel, sens-khabarovsk", "protocol": "0.1.0"}`; st != 200 || string(b) != want {
		t.Fatalf("hello = %d %s, want 200 %s", st, b, want)
	}
	s.SetSystem("")
	if _, b := get(t, s.URL()+"/api/v2/hello"); string(b) != `{"system": "", "protocol": "0.1.0"}` {
		t.Fatalf("hello with empty system = %s", b)
	}
}

func TestList(t *testing.T) {
	loc := time.FixedZone("Asia/Vladivostok", 10*3600)
	today := time.Now().In(loc)
	s := crmsimtest.MustOpen(t, crmsim.Config{Timezone: loc})
	todayBill := `{"id": 777, "date": "` + today.Format(time.DateOnly) + ` 00:00:01", "summ": 1.5, "number": "T-1", "customer": {"name": "  Пётр  "}}`
	if err := s.PutBill([]byte(todayBill)); err != nil {
		t.Fatal(err)
	}
	all := []string{"777", "206929", "49040", "206917", "49024", "206907", "49020", "49007", "48983", "48957",
		"48953", "48934", "48822", "48728", "48723", "48694", "48669", "48668", "48659", "350255"}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"all newest first", "", all},
		{"unknown parameter ignored", "?foo=bar", all},
		{"empty date ignored", "?date=", all},
		{"one day", "?date=2026-03-22", []string{"206929", "49040", "206917", "49024", "206907", "49020"}},
		{"day without bills", "?date=2026-01-01", []string{}},
		{"today in the configured zone", "?date=today", []string{"777"}},
		{"number", "?number=1311752", []string{"350255"}},
		{"number with letters", "?number=49040-CRM", []string{"49040"}},
		{"unknown number", "?number=nope", []string{}},
		{"date and number", "?date=2026-03-22&number=50259", []string{"49024"}},
		{"date and number of another day", "?date=2026-03-21&number=50259", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b := get(t, s.URL()+"/api/v2/list"+tt.query)
			if st != 200 {
				t.Fatalf("status %d: %s", st, b)
			}
			if len(tt.want) == 0 && string(b) != "[]" {
				t.Fatalf("empty answer = %q, want []", b)
			}
			if got := ids(t, b); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("customername trimmed", func(t *testing.T) {
		_, b := get(t, s.URL()+"/api/v2/list?number=T-1")
		if want := `[{"id": 777, "date": "` + today.Format(time.DateOnly) + ` 00:00:01", "summ": 1.5, "number": "T-1", "customername": "Пётр"}]`; string(b) != want {
			t.Fatalf("list = %s, want %s", b, want)
		}
	})
	t.Run("bad date", func(t *testing.T) {
		st, b := get(t, s.URL()+"/api/v2/list?date=22.03.2026")
		if st != 400 || evotorError(t, b) != crmsim.CodeSyntax {
			t.Fatalf("bad date = %d %s", st, b)
		}
	})
}

func TestBillFidelity(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	t.Run("journal bill served as embedded", func(t *testing.T) {
		st, b := get(t, s.URL()+"/api/v2/bill/byid/49040")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
		def, _ := os.ReadFile("default.json")
		if !bytes.Contains(def, b) || !bytes.HasPrefix(b, []byte(`{"id": 49040, "date": "2026-03-22 21:31:22", "summ": 4604.04,`)) {
			t.Fatalf("bill bytes changed: %.200s", b)
		}
	})
	t.Run("list keeps number text", func(t *testing.T) {
		_, b := get(t, s.URL()+"/api/v2/list")
		for _, want := range []string{`"summ": 4604.04,`, `"summ": 3216.02,`, `"summ": 451,`} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("list lacks %s", want)
			}
		}
	})
	t.Run("id beyond 2^53 and odd formatting", func(t *testing.T) {
		raw := "{ \"id\" : 123456789012345678901,\n\t\"date\":\"2026-03-23 10:00:00\", \"summ\": 1.10, \"number\":\"X\\u0031\", \"extra\": {\"keep\": [1e2, 0.1]} }"
		if err := s.PutBill([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		_, b := get(t, s.URL()+"/api/v2/bill/byid/123456789012345678901")
		if string(b) != raw {
			t.Fatalf("bill = %q, want %q", b, raw)
		}
		_, b = get(t, s.URL()+"/api/v2/list?number=X1")
		if want := `[{"id": 123456789012345678901, "date": "2026-03-23 10:00:00", "summ": 1.10, "number": "X\u0031", "customername": ""}]`; string(b) != want {
			t.Fatalf("list = %s, want %s", b, want)
		}
	})
	t.Run("unknown bill", func(t *testing.T) {
		for _, id := range []string{"1", "", "49040/x"} {
			st, b := get(t, s.URL()+"/api/v2/bill/byid/"+id)
			if st != 404 || evotorError(t, b) != crmsim.CodeNotFound {
				t.Fatalf("bill %q = %d %s", id, st, b)
			}
		}
	})
	t.Run("unknown route and wrong method", func(t *testing.T) {
		if st, b := get(t, s.URL()+"/api/v2/nope"); st != 404 || evotorError(t, b) != crmsim.CodeNotFound {
			t.Fatalf("unknown route = %d %s", st, b)
		}
		if st, b := get(t, s.URL()+"/api/v2/receipts"); st != 405 || evotorError(t, b) != crmsim.CodeMethod {
			t.Fatalf("GET receipts = %d %s", st, b)
		}
		if st, b, _ := call(t, "POST", s.URL()+"/api/v2/list", nil, nil); st != 405 {
			t.Fatalf("POST list = %d %s", st, b)
		}
	})
}

func TestReceipts(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{Control: "127.0.0.1:0"})
	ctl := &crmsim.Control{URL: s.ControlURL()}
	body := []byte(`{"id": "bef47ac2", "data": {"type": "SELL", "totalAmount": 4604.04, "extras": {"billId": "49040"}}}`)
	hdr := map[string]string{
		"X-Evotor-Store-Uuid":  "20170606-69FB",
		"X-Evotor-Device-UUID": "20170525-C638",
		"X-Evotor-User-Id":     "01-000000000233309",
		"Authorization":        "Bearer terminal",
		"Content-Type":         "application/json",
	}
	for i := 0; i < 2; i++ { // a duplicate is recorded too
		st, b, _ := call(t, "POST", s.URL()+"/api/v2/receipts", body, hdr)
		if st != 200 || len(b) != 0 {
			t.Fatalf("receipt = %d %q, want 200 and an empty body", st, b)
		}
	}
	if st, _, _ := call(t, "POST", s.URL()+"/api/v2/receipts", []byte("not json"), nil); st != 200 {
		t.Fatalf("non-JSON receipt = %d, the simulator records anything", st)
	}
	rs, err := ctl.Receipts()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d receipts recorded, want 3", len(rs))
	}
	for i, r := range rs[:2] {
		if r.Seq != i+1 || !bytes.Equal(r.Body, body) || r.EventID != "bef47ac2" || !r.Authorization || r.Status != 200 || !r.Delivered || r.Time.IsZero() {
			t.Errorf("receipt %d = %+v", i, r)
		}
		want := map[string]string{"X-Evotor-Store-Uuid": "20170606-69FB", "X-Evotor-Device-Uuid": "20170525-C638", "X-Evotor-User-Id": "01-000000000233309"}
		if !reflect.DeepEqual(r.Headers, want) {
			t.Errorf("receipt %d headers = %v, want %v", i, r.Headers, want)
		}
	}
	if r := rs[2]; string(r.Body) != "not json" || r.EventID != "" || r.Authorization || len(r.Headers) != 0 {
		t.Errorf("third receipt = %+v", r)
	}
	c, err := ctl.Counters()
	if err != nil || c[crmsim.KindReceipts] != 3 {
		t.Fatalf("counters = %v, %v", c, err)
	}
	if err := ctl.ResetReceipts(); err != nil {
		t.Fatal(err)
	}
	if rs := s.Receipts(); len(rs) != 0 {
		t.Fatalf("%d receipts after reset", len(rs))
	}
}

func TestToken(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{Token: "s3cret"})
	for _, path := range []string{"/api/v2/hello", "/api/v2/list", "/api/v2/bill/byid/49040"} {
		for _, auth := range []string{"", "Bearer wrong", "s3cret"} {
			st, b, _ := call(t, "GET", s.URL()+path, nil, map[string]string{"Authorization": auth})
			if st != 401 || evotorError(t, b) != crmsim.CodeUnauthorized {
				t.Errorf("%s with %q = %d %s, want 401", path, auth, st, b)
			}
		}
		if st, b, _ := call(t, "GET", s.URL()+path, nil, map[string]string{"Authorization": "Bearer s3cret"}); st != 200 {
			t.Errorf("%s with the token = %d %s", path, st, b)
		}
	}
	call(t, "POST", s.URL()+"/api/v2/receipts", []byte(`{"id":"a"}`), nil)
	call(t, "POST", s.URL()+"/api/v2/receipts", []byte(`{"id":"a"}`), map[string]string{"Authorization": "Bearer s3cret"})
	rs := s.Receipts()
	if len(rs) != 2 || rs[0].Status != 401 || rs[0].Delivered || rs[0].Authorization || rs[1].Status != 200 || !rs[1].Delivered || !rs[1].Authorization {
		t.Fatalf("receipts = %+v", rs)
	}
}

func TestControlBills(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{Control: "127.0.0.1:0"})
	ctl := &crmsim.Control{URL: s.ControlURL()}
	if err := ctl.PutBill([]byte(`{"id": 1, "date": "2026-03-23 09:00:00", "summ": 10, "number": "N1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b := get(t, s.URL()+"/api/v2/list"); ids(t, b)[0] != "1" {
		t.Fatalf("put bill not listed first: %s", b)
	}
	// A replaced bill is listed with its new summary.
	if err := ctl.PutBill([]byte(`{"id": 1, "date": "2026-03-23 09:00:00", "summ": 12.5, "number": "N1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b := get(t, s.URL()+"/api/v2/list?number=N1"); !bytes.Contains(b, []byte(`"summ": 12.5`)) {
		t.Fatalf("replaced bill summary: %s", b)
	}
	// Any bytes as a bill answer; the old summary stays listed.
	if err := ctl.PutBillAs("1", []byte(`{"date": "no id here"`)); err != nil {
		t.Fatal(err)
	}
	if st, b := get(t, s.URL()+"/api/v2/bill/byid/1"); st != 200 || string(b) != `{"date": "no id here"` {
		t.Fatalf("bill as = %d %s", st, b)
	}
	if _, b := get(t, s.URL()+"/api/v2/list?number=N1"); len(ids(t, b)) != 1 {
		t.Fatalf("summary lost: %s", b)
	}
	if err := ctl.DeleteBill("1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := get(t, s.URL()+"/api/v2/bill/byid/1"); st != 404 {
		t.Fatalf("deleted bill = %d", st)
	}
	if _, b := get(t, s.URL()+"/api/v2/list?number=N1"); string(b) != "[]" {
		t.Fatalf("deleted bill still listed: %s", b)
	}
	if err := ctl.DeleteBill("1"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("deleting an unknown bill: %v", err)
	}
	if err := ctl.PutBill([]byte(`{"date": "2026-03-23 09:00:00"}`)); err == nil || !strings.Contains(err.Error(), "id: missing") {
		t.Fatalf("bill without id: %v", err)
	}

	// A list override: a summary without a bill, and a summary that differs from its bill.
	data := `{"system": "a, b", "bills": [{"id": 5, "date": "2026-03-01 10:00:00", "summ": 5, "number": "5"}],
	  "list": [{"id": 6, "date": "2026-03-02 10:00:00", "summ": 6.60, "number": "6", "customername": "x"},
	           {"id": 5, "date": "2026-03-01 10:00:00", "summ": 55, "number": "5", "customername": "y"}]}`
	if err := ctl.SetData([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if _, b := get(t, s.URL()+"/api/v2/list"); string(b) != `[{"id": 6, "date": "2026-03-02 10:00:00", "summ": 6.60, "number": "6", "customername": "x"}, {"id": 5, "date": "2026-03-01 10:00:00", "summ": 55, "number": "5", "customername": "y"}]` {
		t.Fatalf("list with overrides = %s", b)
	}
	if st, _ := get(t, s.URL()+"/api/v2/bill/byid/6"); st != 404 {
		t.Fatalf("summary-only bill = %d, want 404", st)
	}
	if err := ctl.SetSystem("x"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.SetLatency(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st, err := ctl.State()
	if err != nil || st.System != "x" || st.Bills != 1 || st.Latency != "1ms" || st.API != s.Addr() {
		t.Fatalf("state = %+v, %v", st, err)
	}
	if err := ctl.SetFault(crmsim.Fault{Mode: "explode"}); err == nil || !strings.Contains(err.Error(), `fault mode "explode"`) {
		t.Fatalf("bad fault mode: %v", err)
	}
	if err := ctl.SetData([]byte(`{"bills": [{"id": 1}]}`)); err == nil || !strings.Contains(err.Error(), "bills[0].date") {
		t.Fatalf("bad data: %v", err)
	}
}

func TestDefaultDataMatchesJournal(t *testing.T) {
	f, err := os.ReadFile("testdata/seed-journal.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	for _, line := range bytes.Split(bytes.TrimSpace(f), []byte("\n")) {
		var e struct {
			Direction, Kind string
			Body            json.RawMessage
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if e.Direction != "response" {
			continue
		}
		switch e.Kind {
		case "BILL":
			var b struct{ ID json.Number }
			json.Unmarshal(e.Body, &b)
			_, got := get(t, s.URL()+"/api/v2/bill/byid/"+b.ID.String())
			if !reflect.DeepEqual(decode(t, got), decode(t, e.Body)) {
				t.Errorf("bill %s differs from the journal", b.ID)
			}
		case "LIST":
			var rows []json.RawMessage
			json.Unmarshal(e.Body, &rows)
			for _, row := range rows {
				var r struct{ Number string }
				json.Unmarshal(row, &r)
				_, got := get(t, s.URL()+"/api/v2/list?number="+r.Number)
				if want := decode(t, []byte("["+string(row)+"]")); !reflect.DeepEqual(decode(t, got), want) {
					t.Errorf("list?number=%s = %s, journal %s", r.Number, got, row)
				}
			}
		}
	}
}

func TestSettle(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{Settle: true})
	post := func(body string) {
		t.Helper()
		if st, b, _ := call(t, "POST", s.URL()+"/api/v2/receipts", []byte(body), nil); st != 200 {
			t.Fatalf("receipt = %d %s", st, b)
		}
	}
	listed := func(query string) bool {
		_, b := get(t, s.URL()+"/api/v2/list"+query)
		for _, id := range ids(t, b) {
			if id == "49040" {
				return true
			}
		}
		return false
	}
	post(`{"id": "1", "data": {"type": "SELL", "extras": {"billId": "49040", "settlementMethod": "PartialPrepayment"}}}`)
	if s.Settled("49040") || !listed("") {
		t.Fatal("a prepayment settled the bill")
	}
	post(`{"id": "2", "data": {"type": "SELL", "extras": {"billId": "49040"}}}`)
	if !s.Settled("49040") || listed("") || listed("?date=2026-03-22") || !listed("?number=49040-CRM") {
		t.Fatal("a SELL without a method did not settle the bill (or number= lost it)")
	}
	if st, _ := get(t, s.URL()+"/api/v2/bill/byid/49040"); st != 200 {
		t.Fatalf("settled bill by id = %d", st)
	}
	post(`{"id": "3", "data": {"type": "PAYBACK", "extras": {"billId": "49040"}}}`)
	if s.Settled("49040") || !listed("") {
		t.Fatal("a PAYBACK did not reopen the bill")
	}
	// Without Settle, receipts change nothing.
	plain := crmsimtest.MustOpen(t, crmsim.Config{})
	call(t, "POST", plain.URL()+"/api/v2/receipts", []byte(`{"id": "2", "data": {"type": "SELL", "extras": {"billId": "49040"}}}`), nil)
	if plain.Settled("49040") {
		t.Fatal("settled without Config.Settle")
	}
}

// TestControlListEntry: a bill given its own list entry is listed with the
// entry's exact bytes by every list call, while bill/byid keeps the bill;
// the entry can be replaced and dropped.
func TestControlListEntry(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{Control: "127.0.0.1:0", Data: &crmsim.Data{}})
	ctl := &crmsim.Control{URL: s.ControlURL()}
	const day = "2026-03-23"
	bill := `{"id": 7, "date": "` + day + ` 09:00:00", "summ": 7, "number": "N\/7", "customer": {"name": " Ann "}}`
	if err := ctl.PutBill([]byte(bill)); err != nil {
		t.Fatal(err)
	}
	derived := `{"id": 7, "date": "` + day + ` 09:00:00", "summ": 7, "number": "N\/7", "customername": "Ann"}`
	entry := `{"customername":"\u0418 x","number":"N\/7","id":7,"date":"` + day + ` 09:00:00","summ":7.0,"extra":true}`
	lists := []string{"/api/v2/list", "/api/v2/list?date=" + day, "/api/v2/list?number=N/7"}
	listed := func(step, want string) {
		t.Helper()
		for _, path := range lists {
			if _, b := get(t, s.URL()+path); string(b) != "["+want+"]" {
				t.Errorf("%s: %s = %s, want [%s]", step, path, b, want)
			}
		}
		if _, b := get(t, s.URL()+"/api/v2/bill/byid/7"); string(b) != bill {
			t.Errorf("%s: bill/byid/7 = %s, want the bill", step, b)
		}
	}
	listed("derived", derived)
	if err := ctl.PutListEntry([]byte(entry)); err != nil {
		t.Fatal(err)
	}
	listed("own entry", entry)
	entry2 := strings.Replace(entry, `"extra":true`, `"extra":false`, 1)
	if err := ctl.PutListEntry([]byte(entry2)); err != nil {
		t.Fatal(err)
	}
	listed("entry replaced", entry2)
	if err := ctl.DeleteListEntry("7"); err != nil {
		t.Fatal(err)
	}
	listed("entry dropped", derived)
	if err := ctl.DeleteListEntry("7"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("dropping an unknown entry: %v", err)
	}
	if err := ctl.PutListEntry([]byte(`{"id": 8}`)); err == nil || !strings.Contains(err.Error(), "date") {
		t.Errorf("entry without a date: %v", err)
	}
	// Putting the bill again drops its entry, as documented.
	if err := ctl.PutListEntry([]byte(entry)); err != nil {
		t.Fatal(err)
	}
	if err := ctl.PutBill([]byte(bill)); err != nil {
		t.Fatal(err)
	}
	listed("bill put again", derived)
}

// TestClockOffset: the simulator's answers carry a Date moved by the
// offset set in process or over the control listener (errors for a bad
// offset), and net/http's own Date again at 0.
func TestClockOffset(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{Control: "127.0.0.1:0"})
	ctl := &crmsim.Control{URL: s.ControlURL()}
	dateOf := func(path string) time.Duration {
		t.Helper()
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			t.Fatalf("%s: Date %q: %v", path, resp.Header.Get("Date"), err)
		}
		return time.Until(d)
	}
	near := func(got, want time.Duration) bool { return (got - want).Abs() <= 2*time.Second }
	if d := dateOf("/api/v2/hello"); !near(d, 0) {
		t.Errorf("Date without an offset is %v away", d)
	}
	const year = 365 * 24 * time.Hour
	s.SetClockOffset(year)
	for _, p := range []string{"/api/v2/hello", "/api/v2/list", "/api/v2/bill/byid/0", "/api/v2/nowhere"} {
		if d := dateOf(p); !near(d, year) {
			t.Errorf("%s: Date %v away, want a year ahead", p, d)
		}
	}
	if err := ctl.SetClockOffset(-year); err != nil {
		t.Fatal(err)
	}
	if d := dateOf("/api/v2/list"); !near(d, -year) {
		t.Errorf("Date %v away, want a year behind", d)
	}
	if st, err := ctl.State(); err != nil || st.ClockOffset != (-year).String() {
		t.Errorf("state clock_offset %q, %v", st.ClockOffset, err)
	}
	for body, want := range map[string]string{`{"offset": "a year"}`: "offset: time: invalid duration", `{}`: "offset: missing"} {
		st, b, _ := call(t, http.MethodPut, s.ControlURL()+"/clock", []byte(body), nil)
		if st != 400 || !strings.Contains(string(b), want) {
			t.Errorf("PUT /clock %s: %d %s, want 400 with %q", body, st, b, want)
		}
	}
	if err := ctl.SetClockOffset(0); err != nil {
		t.Fatal(err)
	}
	if d := dateOf("/api/v2/hello"); !near(d, 0) {
		t.Errorf("Date back at 0 is %v away", d)
	}
}
