package sync_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/poll"
)

// elements splits a list answer into its entries' exact bytes.
func elements(t testing.TB, b []byte) []string {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		t.Fatalf("list answer is not a JSON array: %v: %.300s", err, b)
	}
	out := make([]string, len(raws))
	for i, r := range raws {
		out[i] = string(r)
	}
	return out
}

// listed returns the entries a list call answers, daemon or simulator.
func listed(t testing.TB, base, query string) []string {
	t.Helper()
	code, b := get(t, base+"/api/v2/list"+query)
	if code != 200 {
		t.Fatalf("GET %s/api/v2/list%s: %d %s", base, query, code, b)
	}
	return elements(t, b)
}

func sameEntries(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// TestE2EListEntryBytes: the simulator process lists bills with entries
// that disagree with their bills (other customer name, a name the cloud
// trimmed its own way, extra fields, other key order, \uXXXX and \/
// escapes); the daemon serves exactly those bytes for the no-parameter,
// number= and date= lists, through the pull, read-through by number and by
// id, a SIGKILL and restart with the upstream down, and changes of the
// entries upstream.
func TestE2EListEntryBytes(t *testing.T) {
	skipShort(t)
	s := startSim(t)
	put := func(bill, entry string) {
		t.Helper()
		if bill != "" {
			if err := s.ctl.PutBill([]byte(bill)); err != nil {
				t.Fatal(err)
			}
		}
		if entry != "" { // after the bill: putting a bill drops its entry
			if err := s.ctl.PutListEntry([]byte(entry)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 801: the bill has no customer; its entry names one, has an extra
	// field, its own key order and escapes.
	e801 := `{"customername":"\u0418\u0432\u0430\u043d \/ x","number":"N\/801","id":801,"date":"2026-03-23 10:00:00","summ":100.10,"loyalty":{"card":"\/gold","points":[1,2.50]}}`
	put(`{"id": 801, "date": "2026-03-23 10:00:00", "summ": 100.10, "number": "N/801", "products": [], "prepayment": 0, "prepaymentEnable": true}`, e801)
	// 802: the cloud trimmed the name its own way (inner spaces too).
	e802 := `{"id": 802, "date": "2026-03-23 11:00:00", "summ": 5, "number": "N-802", "customername": "Пётр Иванов"}`
	put(`{"id": 802, "date": "2026-03-23 11:00:00", "summ": 5, "number": "N-802", "customer": {"name": "  Пётр  Иванов "}, "products": []}`, e802)
	// 206929, a seed bill: another name and key order in its entry.
	e206929 := `{"id": 206929, "customername": "Илья (VIP)", "summ": 15077, "number": "206929C", "date": "2026-03-22 21:43:55"}`
	put("", e206929)

	// 805: listed, but its bill is missing upstream at the first pull.
	e805 := `{"id": 805, "date": "2026-03-23 09:00:00", "summ": 8.05, "number": "N-805", "customername": "Listed \u2116 5"}`
	put("", e805)

	data := t.TempDir()
	// One pull at start, no more: later misses must be read through.
	d := startDaemon(t, data, s.api, "--sync-interval", "1h")
	// Wait on the status, not on bill/byid: a miss there would read the bill
	// through before the pull lists it.
	poll.Until(t, "the first pull", 30*time.Second, func() bool { return d.status(t).LastPullAt != nil })
	want := listed(t, s.api, "")
	if got := listed(t, d.Base, ""); !sameEntries(got, want) {
		t.Fatalf("daemon list after the pull:\n%s\nwant the simulator's entries:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, q := range []struct{ query, entry string }{
		{"?number=N/801", e801}, {"?number=N-802", e802}, {"?number=206929C", e206929},
	} {
		if got := listed(t, d.Base, q.query); !sameEntries(got, []string{q.entry}) {
			t.Errorf("list%s = %q, want %s", q.query, got, q.entry)
		}
	}
	if got := listed(t, d.Base, "?date=2026-03-23"); !sameEntries(got, []string{e802, e801, e805}) {
		t.Errorf("list?date=2026-03-23 = %q", got)
	}

	// Read-through by number: 803 is new upstream.
	e803 := `{"number":"N-803","id":803,"date":"2026-03-23 12:00:00","summ":3,"customername":"\u0413\u043e\u0441\u0442\u044c","via":"number"}`
	put(`{"id": 803, "date": "2026-03-23 12:00:00", "summ": 3, "number": "N-803", "products": []}`, e803)
	if got := listed(t, d.Base, "?number=N-803"); !sameEntries(got, []string{e803}) {
		t.Errorf("number= read-through = %q, want %s", got, e803)
	}
	if got := listed(t, d.Base, "?number=N-803"); !sameEntries(got, []string{e803}) {
		t.Errorf("number= from the store after the read-through = %q, want %s", got, e803)
	}
	// Read-through by id: 804 never listed to the daemon gets a summary
	// built from the bill (until a pull brings its entry).
	e804 := `{"id":804,"date":"2026-03-23 13:00:00","summ":4,"number":"N-804","customername":"Entry name"}`
	bill804 := `{"id": 804, "date": "2026-03-23 13:00:00", "summ": 4, "number": "N-804", "customer": {"name": " Bill name "}, "products": []}`
	put(bill804, e804)
	if code, b := get(t, d.Base+"/api/v2/bill/byid/804"); code != 200 || string(b) != bill804 {
		t.Fatalf("bill/byid read-through of 804: %d %s", code, b)
	}
	derived804 := `{"id":804,"date":"2026-03-23 13:00:00","summ":4,"number":"N-804","customername":"Bill name"}`
	if got := listed(t, d.Base, "?number=N-804"); !sameEntries(got, []string{derived804}) {
		t.Errorf("bill learned by id listed as %q, want %s", got, derived804)
	}
	// Read-through by id of a bill the daemon knows only by its entry.
	bill805 := `{"id": 805, "date": "2026-03-23 09:00:00", "summ": 8.05, "number": "N-805", "customer": {"name": "Other"}, "products": []}`
	put(bill805, e805)
	if code, b := get(t, d.Base+"/api/v2/bill/byid/805"); code != 200 || string(b) != bill805 {
		t.Fatalf("bill/byid read-through of 805: %d %s", code, b)
	}
	if got := listed(t, d.Base, "?number=N-805"); !sameEntries(got, []string{e805}) {
		t.Errorf("805 after its bill was read through = %q, want its entry %s", got, e805)
	}

	// SIGKILL, then start with the upstream refusing: the bytes come from
	// the store.
	d.Kill()
	s.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse})
	d = startDaemon(t, data, s.api)
	stored := map[string][]string{
		"?number=N/801": {e801}, "?number=N-802": {e802}, "?number=206929C": {e206929},
		"?number=N-803": {e803}, "?number=N-804": {derived804}, "?number=N-805": {e805},
		"?date=2026-03-23": {derived804, e803, e802, e801, e805},
	}
	for q, w := range stored {
		if got := listed(t, d.Base, q); !sameEntries(got, w) {
			t.Errorf("after the restart, upstream down: list%s = %q, want %q", q, got, w)
		}
	}
	// The bills read through since the pull are newest, then what it pulled.
	if got, w := listed(t, d.Base, ""), append([]string{derived804, e803}, want...); !sameEntries(got, w) {
		t.Errorf("after the restart, upstream down: the no-parameter list is\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(w, "\n"))
	}

	// The upstream comes back and changes entries: a name (801), only key
	// order and spacing (206929). The daemon follows byte for byte, and
	// 804's entry replaces the summary built from its bill.
	e801b := strings.Replace(e801, `\/ x`, `\/ y`, 1)
	e206929b := `{"id":206929,"date":"2026-03-22 21:43:55","summ":15077,"number":"206929C","customername":"Илья (VIP)"}`
	put("", e801b)
	put("", e206929b)
	s.fault(t, crmsim.Fault{})
	poll.Until(t, "the daemon to list the simulator's entries", 30*time.Second, func() bool {
		return sameEntries(listed(t, d.Base, ""), listed(t, s.api, ""))
	})
	for q, w := range map[string][]string{
		"?number=N/801": {e801b}, "?number=206929C": {e206929b}, "?number=N-804": {e804},
		"?number=N-805": {e805}, "?date=2026-03-23": {e804, e803, e802, e801b, e805},
	} {
		if got := listed(t, d.Base, q); !sameEntries(got, w) {
			t.Errorf("after the entries changed: list%s = %q, want %q", q, got, w)
		}
	}

	// 801 leaves the upstream: off the no-parameter list, its last entry
	// still answers number=.
	if err := s.ctl.DeleteBill("801"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "801 off the no-parameter list", 30*time.Second, func() bool {
		return sameEntries(listed(t, d.Base, ""), listed(t, s.api, ""))
	})
	if got := listed(t, d.Base, "?number=N/801"); !sameEntries(got, []string{e801b}) {
		t.Errorf("dropped 801 by number = %q, want its last entry %s", got, e801b)
	}
}
