package shopbridge_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shopbridge/shopbridge"
)

func TestParseSummary(t *testing.T) {
	tests := []struct {
		name, raw string
		want      shopbridge.BillSummary
		kind      string
	}{
		{name: "cloud", raw: `{"id": 49040, "date": "2026-03-22 21:31:22", "summ": 4604.04, "number": "49040-CRM", "customername": "Александр Сизов"}`,
			want: shopbridge.BillSummary{ID: "49040", Date: "2026-03-22 21:31:22", Summ: "4604.04", Number: "49040-CRM", CustomerName: "Александр Сизов"}},
		{name: "big id", raw: `{"id": 123456789012345678901, "summ": 1}`, want: shopbridge.BillSummary{ID: "123456789012345678901", Summ: "1"}},
		{name: "string id and summ", raw: `{"id": "42", "summ": "10.50"}`, want: shopbridge.BillSummary{ID: "42", Summ: "10.50"}},
		{name: "escapes", raw: `{"id": 1, "number": "A\/1", "customername": "\u0418\u043b\u044c\u044f \"Q\""}`,
			want: shopbridge.BillSummary{ID: "1", Number: "A/1", CustomerName: `Илья "Q"`}},
		{name: "numeric number", raw: `{"id": 1, "number": 206929}`, want: shopbridge.BillSummary{ID: "1", Number: "206929"}},
		{name: "summ not a number", raw: `{"id": 1, "summ": "n/a"}`, want: shopbridge.BillSummary{ID: "1", Summ: "0"}},
		{name: "no id", raw: `{"summ": 1}`, kind: shopbridge.EMISSING},
		{name: "negative id", raw: `{"id": -1}`, kind: shopbridge.EINVALID},
		{name: "not JSON", raw: `{"id": 1`, kind: shopbridge.EINVALID},
		{name: "array", raw: `[1]`, kind: shopbridge.EINVALID},
		{name: "trailing garbage", raw: `{"id": 1} {"id": 2}`, kind: shopbridge.EINVALID},
		{name: "null", raw: `null`, kind: shopbridge.EINVALID},
		{name: "keys in other case ignored", raw: `{"id": 1, "ID": 2, "Number": "x", "CustomerName": "y"}`, want: shopbridge.BillSummary{ID: "1"}},
		{name: "only an ID in other case", raw: `{"ID": 2}`, kind: shopbridge.EMISSING},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shopbridge.ParseSummary([]byte(tt.raw))
			if k := shopbridge.ErrorKind(err); k != tt.kind {
				t.Fatalf("ParseSummary = %v (kind %q), want kind %q", err, k, tt.kind)
			}
			if err != nil {
				return
			}
			if string(got.Raw) != tt.raw {
				t.Errorf("Raw = %s, want the input", got.Raw)
			}
			got.Raw = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSummary = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"1": true, "0": true, "123456789012345678901": true, "1234567890123456789012345678901234567890": true,
		"": false, "12345678901234567890123456789012345678901": false, "-1": false, "1.5": false, "1e3": false,
		" 1": false, "abc": false, "１": false, "007": false, "00": false,
	} {
		if got := shopbridge.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func addParseSeeds(f *testing.F) {
	for _, s := range []string{
		`{"id": 49040, "date": "2026-03-22 21:31:22", "summ": 4604.04, "number": "49040-CRM", "customername": "Александр Сизов"}`,
		`{"id": 123456789012345678901, "summ": "4604.04", "customer": {"name": "\u0418\u043b\u044c\u044f "}}`,
		`{"id": "007", "customer": null}`,
		`{"id": 1, "ID": 2, "Id": "x"}`,
		`{"id": -1}`,
		`{"id": 1e400}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
}

// checkParsed is what every accepted summary must satisfy: digits for an
// id, a JSON summary object that a list answer can carry.
func checkParsed(t *testing.T, in []byte, s shopbridge.BillSummary, err error) {
	if err != nil {
		if k := shopbridge.ErrorKind(err); k != shopbridge.EINVALID && k != shopbridge.EMISSING {
			t.Fatalf("error of kind %q: %v", k, err)
		}
		return
	}
	if !shopbridge.ValidID(s.ID) {
		t.Fatalf("accepted id %q is not digits", s.ID)
	}
	if !json.Valid(s.Raw) {
		t.Fatalf("summary Raw %q is not JSON", s.Raw)
	}
	var back map[string]json.RawMessage
	if err := json.Unmarshal(s.Raw, &back); err != nil {
		t.Fatalf("summary Raw %s is not an object: %v", s.Raw, err)
	}
	// The id indexed is the id the bytes carry under the exact key "id".
	id := string(bytes.TrimSpace(back["id"]))
	if strings.HasPrefix(id, `"`) {
		json.Unmarshal(back["id"], &id)
	}
	if id != s.ID {
		t.Fatalf("indexed as %q, but its id is %s", s.ID, back["id"])
	}
}

func FuzzParseSummary(f *testing.F) {
	addParseSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := shopbridge.ParseSummary(in)
		checkParsed(t, in, s, err)
		if err == nil && !bytes.Equal(s.Raw, bytes.TrimSpace(in)) {
			t.Fatalf("Raw %q is not the input %q", s.Raw, in)
		}
	})
}

func FuzzParseBill(f *testing.F) {
	addParseSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := shopbridge.ParseBill(in)
		checkParsed(t, in, s, err)
		if err == nil {
			// The derived summary must parse back to the same fields.
			again, err := shopbridge.ParseSummary(s.Raw)
			if err != nil {
				t.Fatalf("derived summary %s does not parse: %v", s.Raw, err)
			}
			again.Raw = s.Raw
			if again.ID != s.ID || again.Date != s.Date || again.Number != s.Number || again.CustomerName != s.CustomerName {
				t.Fatalf("derived summary %s parses as %+v, want %+v", s.Raw, again, s)
			}
		}
	})
}

// receiptBody is a receipt webhook event as a register sends it (the api
// tests' receiptBody).
func receiptBody(eventID, typ, billID, method string) string {
	extras := ""
	if billID != "" || method != "" {
		extras = fmt.Sprintf(`, "extras": {"billId": %q, "number": "50259", "settlementMethod": %q, "contentModified": false}`, billID, method)
	}
	return fmt.Sprintf(`{"id": %q, "data": {"id": "4387ae61-6f91-49ab-b693-d2ed8eeb903f", "type": %q, "items": [{"id": "4183", "name": "\u0428\u0443 \u043f\u0443\u044d\u0440 \"Q\" 🙂", "price": 13.05, "mark": "0104\u001d93"}], "totalAmount": 4604.04, "deviceId": "20251202-AA8B-407D-80BF-6266DA5332CF"%s}, "type": "ReceiptCreated", "userId": "01-000000008095428", "version": 2, "timestamp": 1774204950650}`,
		eventID, typ, extras)
}

func TestParseReceipt(t *testing.T) {
	tests := []struct {
		name, body string
		want       shopbridge.ReceiptEnvelope
	}{
		{"full", receiptBody("ev", "SELL", "49024", "FullSettlement"),
			shopbridge.ReceiptEnvelope{EventID: "ev", Type: "SELL", BillID: "49024", SettlementMethod: "FullSettlement", DeviceID: "20251202-AA8B-407D-80BF-6266DA5332CF"}},
		{"numeric bill id", `{"id": "ev", "data": {"type": "PAYBACK", "extras": {"billId": 123456789012345678901}}}`,
			shopbridge.ReceiptEnvelope{EventID: "ev", Type: "PAYBACK", BillID: "123456789012345678901"}},
		{"escaped id", `{"id": "\u0418\/1", "data": {}}`, shopbridge.ReceiptEnvelope{EventID: "И/1"}},
		{"extras not an object", `{"id": "ev", "data": {"type": "SELL", "extras": "x"}}`, shopbridge.ReceiptEnvelope{EventID: "ev", Type: "SELL"}},
		{"extras null", `{"id": "ev", "data": {"extras": null}}`, shopbridge.ReceiptEnvelope{EventID: "ev"}},
		{"keys in other case ignored", `{"id": "ev", "data": {"Type": "SELL", "extras": {"BillId": "1"}}}`, shopbridge.ReceiptEnvelope{EventID: "ev"}},
		{"id other case does not override", `{"id": "ev", "Id": "other", "data": {}}`, shopbridge.ReceiptEnvelope{EventID: "ev"}},
	}
	for _, tt := range tests {
		got, err := shopbridge.ParseReceipt([]byte(tt.body))
		if err != nil || got != tt.want {
			t.Errorf("%s: ParseReceipt = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func FuzzParseReceipt(f *testing.F) {
	for _, s := range []string{
		receiptBody("77fb892f-87ce-43f1-b998-48c848b3073f", "SELL", "49040", "FullSettlement"),
		`{"id": "a", "data": {}}`,
		`{"id": "", "data": {}}`,
		`{"ID": "a", "data": {}}`,
		`{"id": "a", "Id": "b", "data": {}}`,
		`{"id": 1, "data": []}`,
		`{"id": "a", "data": {"extras": {"billId": 1e400}}}`,
		`{"id": "a", "id": "b", "data": {}}`,
		`{"id": "a", "\u0069d": "b", "data": {}}`,
		`{"id": "a", "data": {"extras": {"billId": "1", "billId": "2"}}}`,
		`{"id": "a\u0000", "data": {}}`,
		`{"id": "\ud83d", "data": {}}`,
		`{"id": "\ud83d\ude00", "data": {}}`,
		`{"id": "\udc00\ud83d", "data": {}}`,
		"{\"id\": \"\xed\xa0\x80\", \"data\": {}}",
		`null`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := shopbridge.ParseReceipt(body)
		if err != nil {
			if k := shopbridge.ErrorKind(err); k != shopbridge.EINVALID && k != shopbridge.EMISSING && k != shopbridge.EVALUE {
				t.Fatalf("error of kind %q: %v", k, err)
			}
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil || top == nil {
			t.Fatalf("accepted a body that is not a JSON object: %q", body)
		}
		var id string
		if err := json.Unmarshal(top["id"], &id); err != nil || id == "" || id != env.EventID {
			t.Fatalf("accepted %q: id %s, event id %q", body, top["id"], env.EventID)
		}
		var data map[string]json.RawMessage
		if d := bytes.TrimSpace(top["data"]); len(d) == 0 || d[0] != '{' || json.Unmarshal(d, &data) != nil {
			t.Fatalf("accepted %q with data %s", body, top["data"])
		}
		// Issue 16.12: one key once at the top; an id fit for a key.
		if k, dup := duplicateTopKey(body); dup {
			t.Fatalf("accepted %q with the key %q twice", body, k)
		}
		if len(id) > shopbridge.MaxID || strings.ContainsRune(id, 0) ||
			(strings.ContainsRune(id, utf8.RuneError) && !bytes.ContainsRune(top["id"], utf8.RuneError) &&
				!bytes.Contains(bytes.ToLower(top["id"]), []byte(`\ufffd`))) {
			t.Fatalf("accepted %q: id %q", body, id)
		}
	})
}

// duplicateTopKey is a second opinion on duplicate keys: encoding/json's
// tokenizer over the top-level object.
func duplicateTopKey(body []byte) (string, bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return "", false
		}
		k, _ := tok.(string)
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return "", false
		}
	}
	return "", false
}

func TestEvotorHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Evotor-Device-Uuid", "d1")
	h.Add("X-Evotor-Device-Uuid", "d2")
	h.Set("X-Evotor-Store-Id", "s")
	h["X-Evotor-Empty"] = nil
	h.Set("X-Evotorx", "no")
	h.Set("Authorization", "Bearer t")
	got := shopbridge.EvotorHeaders(h)
	want := map[string]string{"X-Evotor-Device-Uuid": "d1", "X-Evotor-Store-Id": "s"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EvotorHeaders = %v, want %v", got, want)
	}
	if got := shopbridge.EvotorHeaders(http.Header{}); got == nil || len(got) != 0 {
		t.Errorf("EvotorHeaders of none = %#v, want an empty map", got)
	}
	for name, want := range map[string]bool{"X-Evotor-A": true, "x-evotor-a": true, "X-EVOTOR-": true, "X-Evotor": false, "X-Other": false, "": false} {
		if got := shopbridge.IsEvotorHeader(name); got != want {
			t.Errorf("IsEvotorHeader(%q) = %v, want %v", name, got, want)
		}
	}
}
