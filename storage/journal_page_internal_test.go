package storage

import "testing"

func TestTextMatcher(t *testing.T) {
	for _, c := range []struct {
		needle, hay string
		want        bool
	}{
		{"ev-0419", `{"id":"EV-0419"}`, true},
		{"EV-0419", `{"id":"ev-0419"}`, true},
		{"ev-0419", `{"id":"ev-041"}`, false},
		{"Илья", `"name":"илья "`, true},
		{"ИЛЬЯ", `"name":"Илья"`, true},
		{"илья", `"name":"Ильяс"`, true},
		{"илья", `"name":"Иль"`, false},
		{"Илья", `"name":"\u0418\u043b\u044c\u044f"`, true}, // escaped as PHP's json_encode writes it
		{"Илья", `"name":"\u0418\u043B\u044C\u044F"`, true}, // upper-case hex digits
		{"кресло кларк", "Кресло компьютерное Кларк", false},
		{"компьютерное кл", "Кресло компьютерное Кларк", true},
		{"kelvin", "\u212aelvin", true}, // K (Kelvin sign) folds to k
		{"ß", "SS", false},              // simple folding only
		{"4604.04", `"summ": 4604.04`, true},
		{"a", "", false},
		{"ab", "a", false},
		{"x", "\xff\xfex", true}, // invalid UTF-8 around the match
	} {
		m := newTextMatcher(c.needle)
		if got := m.match([]byte(c.hay)); got != c.want {
			t.Errorf("match(%q in %q) = %v, want %v", c.needle, c.hay, got, c.want)
		}
	}
	if m := newTextMatcher(""); !m.empty() {
		t.Error("an empty needle is not empty")
	}
}

func BenchmarkTextMatcher(b *testing.B) {
	hay := []byte(`{"id": 206929, "date": "2026-03-22 21:43:55", "summ": 15077, "number": "206929C", "customer": {"id": 339838,
"name": "Илья ", "fullname": "Илья ", "legalentity": false}, "products": [{"id": 15446, "type": "NORMAL", "price": 9093,
"taxrate": "5%", "itemType": 1, "prodname": "Кресло компьютерное Кларк велюр серый", "quantity": 1, "unitname": "Штука"}]}`)
	for _, needle := range []string{"nomatch", "нетакого"} {
		b.Run(needle, func(b *testing.B) {
			m := newTextMatcher(needle)
			b.SetBytes(int64(len(hay)))
			for range b.N {
				m.match(hay)
			}
		})
	}
}
