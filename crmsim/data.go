package crmsim

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// DefaultSystem is the upstream's system string in the seed journal's hello.
const DefaultSystem = "new-sens-gel, sens-khabarovsk"

// defaultJSON is built by testdata/mkdefault.py from the seed journal: its
// three full bills plus a synthesized bill for every list summary the
// journal has no full bill for.
//
//go:embed default.json
var defaultJSON []byte

// Data is what the simulator serves: a system string, bills as exact bytes
// and optional list summaries that override the ones derived from bills.
type Data struct {
	System string
	Bills  []json.RawMessage // each a JSON object with at least id and date
	List   []json.RawMessage // optional summaries; by id they replace or add to the derived ones
}

// dataFile is the on-disk form of Data. Pointers tell absent from empty.
type dataFile struct {
	System *string           `json:"system"`
	Bills  []json.RawMessage `json:"bills"`
	List   []json.RawMessage `json:"list"`
}

// DefaultData returns the embedded default data set built from the seed
// journal (19 open bills, system DefaultSystem).
func DefaultData() *Data {
	d, err := ParseData(defaultJSON)
	if err != nil {
		panic("crmsim: embedded default.json: " + err.Error())
	}
	return d
}

// LoadData reads and checks a data file.
func LoadData(path string) (*Data, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data file: %w", err)
	}
	d, err := ParseData(b)
	if err != nil {
		return nil, fmt.Errorf("data file %s: %w", path, err)
	}
	return d, nil
}

// ParseData parses a data file: {"system": S, "bills": [...], "list": [...]}.
// Every bill and list entry must be an object with an id (integer or
// non-empty string) and a date "YYYY-MM-DD HH:MM:SS"; bill ids must be
// unique. The bytes of each bill are kept exactly as written in the file.
// A missing system means DefaultSystem.
func ParseData(b []byte) (*Data, error) {
	var f dataFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a data object: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the data object at offset %d", dec.InputOffset())
	}
	d := &Data{System: DefaultSystem, Bills: f.Bills, List: f.List}
	if f.System != nil {
		d.System = *f.System
	}
	seen := map[string]bool{}
	for i, raw := range d.Bills {
		s, err := parseSummary(raw, true)
		if err != nil {
			return nil, fmt.Errorf("bills[%d]%w", i, err)
		}
		if seen[s.id] {
			return nil, fmt.Errorf("bills[%d].id: duplicate id %s", i, s.id)
		}
		seen[s.id] = true
	}
	for i, raw := range d.List {
		if _, err := parseSummary(raw, false); err != nil {
			return nil, fmt.Errorf("list[%d]%w", i, err)
		}
	}
	return d, nil
}

// summary is a list row: its id key, date, number and the exact bytes served.
type summary struct {
	id     string // key: integer text as written, or the string's content
	date   string
	number string
	raw    []byte
}

var (
	dateRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)
	intRe  = regexp.MustCompile(`^-?\d+$`)
)

// pathError is an error about a field; its text starts with ".field: " so
// it reads well after an index like "bills[3]".
type pathError struct {
	field, msg string
}

func (e *pathError) Error() string {
	if e.field == "" {
		return ": " + e.msg
	}
	return "." + e.field + ": " + e.msg
}

// parseSummary reads id, date and number from a bill or a summary. With
// derive it builds the summary row from a bill (customername = customer.name
// trimmed of spaces); otherwise raw is the row itself. Number text is copied,
// never re-formatted.
func parseSummary(raw []byte, derive bool) (*summary, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, &pathError{"", "not a JSON object"}
	}
	s := &summary{}
	idRaw, ok := m["id"]
	if !ok {
		return nil, &pathError{"id", "missing"}
	}
	id, err := idKey(idRaw)
	if err != nil {
		return nil, &pathError{"id", err.Error()}
	}
	s.id = id
	if err := json.Unmarshal(m["date"], &s.date); err != nil || !dateRe.MatchString(s.date) {
		return nil, &pathError{"date", `missing or not "YYYY-MM-DD HH:MM:SS"`}
	}
	if n, ok := m["number"]; ok {
		if err := json.Unmarshal(n, &s.number); err != nil {
			return nil, &pathError{"number", "not a string"}
		}
	}
	if !derive {
		s.raw = bytes.Clone(raw)
		return s, nil
	}
	name := ""
	if c, ok := m["customer"]; ok && string(c) != "null" {
		var cm map[string]json.RawMessage
		if err := json.Unmarshal(c, &cm); err != nil {
			return nil, &pathError{"customer", "not an object"}
		}
		if n, ok := cm["name"]; ok && string(n) != "null" {
			if err := json.Unmarshal(n, &name); err != nil {
				return nil, &pathError{"customer.name", "not a string"}
			}
		}
	}
	var buf bytes.Buffer
	buf.WriteString(`{"id": `)
	buf.Write(bytes.TrimSpace(idRaw))
	buf.WriteString(`, "date": `)
	buf.Write(bytes.TrimSpace(m["date"]))
	if v, ok := m["summ"]; ok {
		buf.WriteString(`, "summ": `)
		buf.Write(bytes.TrimSpace(v))
	}
	if v, ok := m["number"]; ok {
		buf.WriteString(`, "number": `)
		buf.Write(bytes.TrimSpace(v))
	}
	buf.WriteString(`, "customername": `)
	buf.Write(jsonString(strings.TrimSpace(name)))
	buf.WriteString(`}`)
	s.raw = buf.Bytes()
	return s, nil
}

// idKey turns a raw id into the key bill/byid matches: integer text exactly
// as written, or a non-empty string's content.
func idKey(raw json.RawMessage) (string, error) {
	t := string(bytes.TrimSpace(raw))
	if intRe.MatchString(t) {
		return t, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && s != "" && !strings.ContainsAny(s, "/?#") {
		return s, nil
	}
	return "", fmt.Errorf("not an integer or a non-empty string without /?#: %.40s", t)
}

// jsonString encodes s without HTML escaping, as the upstream does.
func jsonString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(buf.Bytes(), "\n")
}
