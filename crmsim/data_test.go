package crmsim_test

import (
	"bytes"
	"encoding/json"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
)

func TestParseData(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means valid
	}{
		{"minimal", `{"bills": []}`, ""},
		{"string id", `{"bills": [{"id": "A-1", "date": "2026-03-01 10:00:00"}]}`, ""},
		{"null customer", `{"bills": [{"id": 1, "date": "2026-03-01 10:00:00", "customer": null}]}`, ""},
		{"not an object", `[]`, "not a data object"},
		{"trailing data", `{"bills": []} {}`, "trailing data"},
		{"bad json", `{"bills": [`, "not a data object"},
		{"bill not an object", `{"bills": [1]}`, "bills[0]: not a JSON object"},
		{"bill without id", `{"bills": [{"date": "2026-03-01 10:00:00"}]}`, "bills[0].id: missing"},
		{"fractional id", `{"bills": [{"id": 1.5, "date": "2026-03-01 10:00:00"}]}`, "bills[0].id: not an integer"},
		{"empty string id", `{"bills": [{"id": "", "date": "2026-03-01 10:00:00"}]}`, "bills[0].id"},
		{"id with slash", `{"bills": [{"id": "a/b", "date": "2026-03-01 10:00:00"}]}`, "bills[0].id"},
		{"missing date", `{"bills": [{"id": 1}]}`, "bills[0].date"},
		{"bad date", `{"bills": [{"id": 1, "date": "2026-03-01T10:00:00Z"}]}`, "bills[0].date"},
		{"number not a string", `{"bills": [{"id": 1, "date": "2026-03-01 10:00:00", "number": 5}]}`, "bills[0].number: not a string"},
		{"customer not an object", `{"bills": [{"id": 1, "date": "2026-03-01 10:00:00", "customer": "x"}]}`, "bills[0].customer"},
		{"customer name not a string", `{"bills": [{"id": 1, "date": "2026-03-01 10:00:00", "customer": {"name": 1}}]}`, "bills[0].customer.name"},
		{"duplicate id", `{"bills": [{"id": 1, "date": "2026-03-01 10:00:00"}, {"id": 1, "date": "2026-03-01 10:00:00"}]}`, "bills[1].id: duplicate id 1"},
		{"bad list entry", `{"bills": [], "list": [{"id": 1}]}`, "list[0].date"},
		{"system not a string", `{"system": 1, "bills": []}`, "not a data object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := crmsim.ParseData([]byte(tt.in))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	d, err := crmsim.ParseData([]byte(`{"bills": []}`))
	if err != nil || d.System != crmsim.DefaultSystem {
		t.Fatalf("missing system = %q, %v; want the default", d.System, err)
	}
	d, err = crmsim.ParseData([]byte(`{"system": "", "bills": []}`))
	if err != nil || d.System != "" {
		t.Fatalf("empty system = %q, %v", d.System, err)
	}
}

func TestLoadData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(path, []byte(`{"bills": [{"id": 1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := crmsim.LoadData(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bills[0].date") {
		t.Fatalf("error = %v, want it to name the file and the field", err)
	}
	if _, err := crmsim.LoadData(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// FuzzParseData checks that no data file crashes the parser and that every
// accepted one can be served: each bill byte for byte, each list a JSON array.
func FuzzParseData(f *testing.F) {
	def, err := os.ReadFile("default.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	f.Add([]byte(`{"system": "", "bills": [{"id": 123456789012345678901, "date": "2026-03-01 10:00:00", "summ": 1.10}], "list": [{"id": "x", "date": "2026-03-01 10:00:00"}]}`))
	f.Add([]byte(`{"bills": [{"id": "A", "date": "2026-03-01 10:00:00", "customer": {"name": " \u00a0x "}}]}`))
	// One server for all inputs keeps an execution fast enough for the fuzzer.
	s := crmsimtest.MustOpen(f, crmsim.Config{Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := crmsim.ParseData(b)
		if err != nil {
			return
		}
		if err := s.SetData(d); err != nil {
			t.Fatalf("parsed data refused by SetData: %v", err)
		}
		_, list := get(t, s.URL()+"/api/v2/list")
		if !json.Valid(list) {
			t.Fatalf("list answer is not JSON: %s", list)
		}
		for i, raw := range d.Bills {
			if i == 5 {
				break
			}
			var v struct{ ID json.RawMessage }
			json.Unmarshal(raw, &v)
			id := string(bytes.TrimSpace(v.ID))
			var str string
			if json.Unmarshal(v.ID, &str) == nil {
				id = str
			}
			st, got := get(t, s.URL()+"/api/v2/bill/byid/"+url.PathEscape(id))
			if st != 200 || !bytes.Equal(got, raw) {
				t.Fatalf("bill %s = %d %q, want %q", id, st, got, raw)
			}
		}
	})
}

// sumOfProducts adds price*quantity of a bill's products exactly.
func sumOfProducts(t *testing.T, raw []byte) (summ, sum *big.Rat) {
	t.Helper()
	var b struct {
		Summ     json.Number
		Products []struct{ Price, Quantity json.Number }
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	summ, ok := new(big.Rat).SetString(b.Summ.String())
	if !ok {
		t.Fatalf("summ %q", b.Summ)
	}
	sum = new(big.Rat)
	for _, p := range b.Products {
		pr, ok1 := new(big.Rat).SetString(p.Price.String())
		q, ok2 := new(big.Rat).SetString(p.Quantity.String())
		if !ok1 || !ok2 {
			t.Fatalf("price %q quantity %q", p.Price, p.Quantity)
		}
		sum.Add(sum, pr.Mul(pr, q))
	}
	return summ, sum
}

func TestDefaultData(t *testing.T) {
	d := crmsim.DefaultData()
	if d.System != "new-sens-gel, sens-khabarovsk" || len(d.Bills) != 19 {
		t.Fatalf("default: system %q, %d bills", d.System, len(d.Bills))
	}
	for _, raw := range d.Bills {
		if summ, sum := sumOfProducts(t, raw); summ.Cmp(sum) != 0 {
			t.Errorf("summ %s != products %s in %.80s", summ.FloatString(2), sum.FloatString(2), raw)
		}
	}
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGenerate(t *testing.T) {
	now := time.Date(2026, 3, 22, 21, 0, 0, 0, time.FixedZone("Asia/Vladivostok", 10*3600))
	d := crmsim.Generate(1000, now)
	again := crmsim.Generate(1000, now)
	if len(d.Bills) != 1000 || !bytes.Equal(d.Bills[999], again.Bills[999]) {
		t.Fatalf("%d bills, or not deterministic", len(d.Bills))
	}
	taxrates := map[string]int{}
	var marked, delivery int
	for _, raw := range d.Bills {
		if summ, sum := sumOfProducts(t, raw); summ.Cmp(sum) != 0 {
			t.Fatalf("summ %s != products %s in %s", summ.FloatString(2), sum.FloatString(2), raw)
		}
		var b struct {
			Products []map[string]any
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		for _, p := range b.Products {
			taxrates[p["taxrate"].(string)]++
			if m, ok := p["mark"].(string); ok {
				if !strings.HasSuffix(p["type"].(string), "_MARKED") || !strings.Contains(m, "\x1d") {
					t.Fatalf("bad marked product %v", p)
				}
				marked++
			}
			if p["itemType"].(float64) == 3 {
				id, _ := p["id"].(string)
				if _, hasType := p["type"]; hasType || p["unitname"] != "шт" || !uuidRe.MatchString(id) {
					t.Fatalf("bad delivery line %v", p)
				}
				delivery++
			}
		}
	}
	for _, tr := range []string{"22%", "7%", "5%", "Без НДС"} {
		if taxrates[tr] == 0 {
			t.Errorf("no product with taxrate %q", tr)
		}
	}
	if marked == 0 || delivery == 0 {
		t.Errorf("%d marked products, %d delivery lines", marked, delivery)
	}

	s := crmsimtest.MustOpen(t, crmsim.Config{Data: d, Timezone: now.Location()})
	_, b := get(t, s.URL()+"/api/v2/list")
	if got := ids(t, b); len(got) != 1000 || got[0] != "900001" || got[999] != "901000" {
		t.Fatalf("generated list: %d rows", len(got))
	}
	if _, b := get(t, s.URL()+"/api/v2/list?date=2026-03-22"); len(ids(t, b)) == 0 {
		t.Fatal("no generated bill on now's day")
	}
}

func BenchmarkList1000(b *testing.B) {
	s := crmsimtest.MustOpen(b, crmsim.Config{Data: crmsim.Generate(1000, time.Now())})
	url := s.URL() + "/api/v2/list"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := httpClient.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := drain(resp)
		b.SetBytes(n)
	}
}

func BenchmarkReceipt(b *testing.B) {
	s := crmsimtest.MustOpen(b, crmsim.Config{})
	url := s.URL() + "/api/v2/receipts"
	body := []byte(`{"id": "bef47ac2-50f0-422a-8d73-2a32d930370d", "data": {"type": "SELL", "extras": {"billId": "49040"}}}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := httpClient.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		drain(resp)
	}
}
