package storage_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
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
			got, err := storage.ParseSummary([]byte(tt.raw))
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
		if got := storage.ValidID(id); got != want {
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
	if !storage.ValidID(s.ID) {
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
		s, err := storage.ParseSummary(in)
		checkParsed(t, in, s, err)
		if err == nil && !bytes.Equal(s.Raw, bytes.TrimSpace(in)) {
			t.Fatalf("Raw %q is not the input %q", s.Raw, in)
		}
	})
}

func FuzzParseBill(f *testing.F) {
	addParseSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := storage.ParseBill(in)
		checkParsed(t, in, s, err)
		if err == nil {
			// The derived summary must parse back to the same fields.
			again, err := storage.ParseSummary(s.Raw)
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
