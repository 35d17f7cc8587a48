package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/shopbridge/shopbridge"
)

// ParseSummary reads the fields shopbridge indexes from one summary object of
// a list answer. raw is kept as given.
func ParseSummary(raw []byte) (shopbridge.BillSummary, error) {
	v, err := object(raw)
	if err != nil {
		return shopbridge.BillSummary{}, shopbridge.Errorf(shopbridge.EINVALID, "summary", "not a JSON object: %v", err)
	}
	id, err := parseID(v["id"])
	if err != nil {
		return shopbridge.BillSummary{}, err
	}
	return shopbridge.BillSummary{
		ID:           id,
		Date:         jsonText(v["date"]),
		Summ:         numberText(v["summ"]),
		Number:       jsonText(v["number"]),
		CustomerName: jsonText(v["customername"]),
		Raw:          append([]byte(nil), bytes.TrimSpace(raw)...),
	}, nil
}

// object decodes a JSON object into its members. A map, not a struct:
// encoding/json matches struct fields case-insensitively, so {"id":1,"ID":2}
// would be indexed as bill 2 while its bytes say 1.
func object(raw []byte) (map[string]json.RawMessage, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errors.New("null")
	}
	return v, nil
}

// ParseBill reads a bill/byid answer and derives its summary the way the
// cloud does: the customer's name without surrounding spaces.
func ParseBill(body []byte) (shopbridge.BillSummary, error) {
	v, err := object(body)
	if err != nil {
		return shopbridge.BillSummary{}, shopbridge.Errorf(shopbridge.EINVALID, "bill", "not a JSON object: %v", err)
	}
	var customer map[string]json.RawMessage
	if c := v["customer"]; c != nil {
		if err := json.Unmarshal(c, &customer); err != nil {
			return shopbridge.BillSummary{}, shopbridge.Errorf(shopbridge.EINVALID, "customer", "not a JSON object: %v", err)
		}
	}
	id, err := parseID(v["id"])
	if err != nil {
		return shopbridge.BillSummary{}, err
	}
	s := shopbridge.BillSummary{
		ID:           id,
		Date:         jsonText(v["date"]),
		Summ:         numberText(v["summ"]),
		Number:       jsonText(v["number"]),
		CustomerName: strings.TrimSpace(jsonText(customer["name"])),
	}
	s.Raw = summaryJSON(s)
	return s, nil
}

// summaryJSON builds a summary object from parsed fields, keeping the id and
// summ number text as received.
func summaryJSON(s shopbridge.BillSummary) []byte {
	var b bytes.Buffer
	b.WriteString(`{"id":`)
	b.WriteString(s.ID)
	b.WriteString(`,"date":`)
	writeString(&b, s.Date)
	b.WriteString(`,"summ":`)
	if s.Summ == "" {
		b.WriteString("0")
	} else {
		b.WriteString(s.Summ)
	}
	b.WriteString(`,"number":`)
	writeString(&b, s.Number)
	b.WriteString(`,"customername":`)
	writeString(&b, s.CustomerName)
	b.WriteByte('}')
	return b.Bytes()
}

func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode adds a newline
}

// parseID accepts an integer id of any length, as a JSON number or a string
// of digits, and returns its digits.
func parseID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", shopbridge.Errorf(shopbridge.EMISSING, "id", "the bill has no id")
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", shopbridge.Errorf(shopbridge.EINVALID, "id", "bad id %s", raw)
		}
	}
	if !ValidID(s) {
		return "", shopbridge.Errorf(shopbridge.EINVALID, "id", "id %s is not a whole number", raw)
	}
	return s, nil
}

// ValidID reports whether s is a bill id: 1 to 40 decimal digits with no
// leading zero. Leading zeros are refused because an id is written into
// derived summaries as a JSON number (where 007 is not JSON) and sorted by
// its zero-padded form (where 7 and 007 would share index keys).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 40 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// jsonText returns a JSON string's value, or the raw text of any other value.
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// numberText returns a number's text as received ("4604.04" stays so).
func numberText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			var n json.Number
			if json.Unmarshal([]byte(s), &n) == nil {
				return s
			}
		}
		return "0"
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}
