package shopbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Journal kinds: the terminal's calls (api) and the exchanges with the
// upstream (sync).
const (
	KindHello    = "HELLO"
	KindList     = "LIST"
	KindBill     = "BILL"
	KindReceipt  = "RECEIPT"
	KindTerminal = "TERMINAL" // any other terminal path

	KindUpstreamHello   = "UPSTREAM_HELLO"
	KindUpstreamList    = "UPSTREAM_LIST"
	KindUpstreamBill    = "UPSTREAM_BILL"
	KindUpstreamReceipt = "UPSTREAM_RECEIPT"
	KindUpstreamState   = "UPSTREAM_STATE"
)

// MaxBody is the largest receipt body accepted (413 beyond).
const MaxBody = 1 << 20

// MaxJournalBody is how much of a request or answer body the journal keeps.
const MaxJournalBody = 64 << 10

// IsEvotorHeader reports whether a header is one of the X-Evotor-* a
// receipt is stored and forwarded with (any case).
func IsEvotorHeader(name string) bool {
	const prefix = "x-evotor-"
	return len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix)
}

// EvotorHeaders are a request's X-Evotor-* headers, the first value of each.
func EvotorHeaders(h http.Header) map[string]string {
	headers := map[string]string{}
	for k, v := range h {
		if IsEvotorHeader(k) && len(v) > 0 {
			headers[k] = v[0]
		}
	}
	return headers
}

// ParseSummary reads the fields shopbridge indexes from one summary object of
// a list answer. raw is kept as given.
func ParseSummary(raw []byte) (BillSummary, error) {
	v, err := object(raw)
	if err != nil {
		return BillSummary{}, Errorf(EINVALID, "summary", "not a JSON object: %v", err)
	}
	id, err := parseID(v["id"])
	if err != nil {
		return BillSummary{}, err
	}
	return BillSummary{
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
func ParseBill(body []byte) (BillSummary, error) {
	v, err := object(body)
	if err != nil {
		return BillSummary{}, Errorf(EINVALID, "bill", "not a JSON object: %v", err)
	}
	var customer map[string]json.RawMessage
	if c := v["customer"]; c != nil {
		if err := json.Unmarshal(c, &customer); err != nil {
			return BillSummary{}, Errorf(EINVALID, "customer", "not a JSON object: %v", err)
		}
	}
	id, err := parseID(v["id"])
	if err != nil {
		return BillSummary{}, err
	}
	s := BillSummary{
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
func summaryJSON(s BillSummary) []byte {
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
		return "", Errorf(EMISSING, "id", "the bill has no id")
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", Errorf(EINVALID, "id", "bad id %s", raw)
		}
	}
	if !ValidID(s) {
		return "", Errorf(EINVALID, "id", "id %s is not a whole number", raw)
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

// MaxID is the longest identifier a client may send where shopbridge keeps
// or looks it up: a receipt's event id, data.extras.billId and
// settlementMethod, data.deviceId, X-Evotor-Device-UUID, a number= query.
// Real ones are UUIDs (36 bytes) and bill numbers; bbolt refuses keys over
// 32 KiB, and logs must not carry much more than this of a client's text.
const MaxID = 128

// MaxLogText is how much of a client's text one log field carries.
const MaxLogText = 64

// LogText is s cut to MaxLogText bytes (at a rune boundary), marked when
// cut, for log lines: a client's id, path or header never fills a log.
func LogText(s string) string {
	if len(s) <= MaxLogText {
		return s
	}
	n := MaxLogText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// TooLong refuses an identifier over MaxID bytes, naming the field and the
// limit (400, code 2003).
func TooLong(subject string, n int) error {
	return Errorf(EVALUE, subject, "%s is %d bytes, over the %d-byte limit", subject, n, MaxID)
}

// ReceiptEnvelope is what shopbridge reads of a receipt webhook event.
type ReceiptEnvelope struct {
	EventID          string
	Type             string
	BillID           string
	SettlementMethod string
	DeviceID         string
}

// ParseReceipt checks a receipt body: a JSON object with a non-empty string
// id and an object data. It reads the fields that settle bills and order
// the outbox and leaves the bytes alone.
func ParseReceipt(body []byte) (ReceiptEnvelope, error) {
	var env ReceiptEnvelope
	if len(bytes.TrimSpace(body)) == 0 {
		return env, Errorf(EINVALID, "body", "the body is empty: a receipt is a JSON object")
	}
	if !json.Valid(body) {
		err := json.Unmarshal(body, new(json.RawMessage))
		return env, Errorf(EINVALID, "body", "the receipt is not valid JSON: %v", err)
	}
	if !utf8.Valid(body) {
		return env, Errorf(EINVALID, "body", "the receipt is not valid UTF-8")
	}
	var id, data []byte
	ok, dup := uniqueMembers(body, func(k, v []byte) {
		switch {
		case keyIs(k, "id"):
			id = v
		case keyIs(k, "data"):
			data = v
		}
	})
	if !ok {
		return env, Errorf(EINVALID, "body", "the receipt must be a JSON object, not %s", kindOf(bytes.TrimSpace(body)))
	}
	if dup != nil {
		return env, duplicate("", dup)
	}
	switch {
	case len(id) == 0 || string(id) == "null":
		return env, Errorf(EMISSING, "id", "the receipt has no event id")
	case id[0] != '"':
		return env, Errorf(EINVALID, "id", "the event id must be a string, not %s", LogText(string(id)))
	}
	if bad := badString(id); bad != "" {
		return env, Errorf(EINVALID, "id", "the event id holds %s", bad)
	}
	if env.EventID = stringValue(id); env.EventID == "" {
		return env, Errorf(EMISSING, "id", "the event id is empty")
	}
	if len(env.EventID) > MaxID {
		return env, TooLong("id", len(env.EventID))
	}
	switch {
	case len(data) == 0 || string(data) == "null":
		return env, Errorf(EMISSING, "data", "the receipt has no data")
	case data[0] != '{':
		return env, Errorf(EINVALID, "data", "data must be an object")
	}
	// The fields that settle bills and order the outbox: each once, fit
	// for a key. Other members of data pass through as they are.
	var fields [5]int
	var extras []byte
	var err error
	field := func(i int, subject string, v []byte, dst *string) {
		if fields[i]++; fields[i] > 1 {
			if err == nil {
				err = duplicate(subject[:strings.LastIndexByte(subject, '.')+1], []byte(subject[strings.LastIndexByte(subject, '.')+1:]))
			}
			return
		}
		if dst == nil {
			extras = v
			return
		}
		if len(v) > 0 && v[0] == '"' {
			if bad := badString(v); bad != "" && err == nil {
				err = Errorf(EINVALID, subject, "%s holds %s", subject, bad)
			}
		}
		if *dst = text(v); len(*dst) > MaxID && err == nil {
			err = TooLong(subject, len(*dst))
		}
	}
	members(data, func(k, v []byte) {
		switch {
		case keyIs(k, "type"):
			field(0, "data.type", v, &env.Type)
		case keyIs(k, "deviceId"):
			field(1, "data.deviceId", v, &env.DeviceID)
		case keyIs(k, "extras"):
			field(2, "data.extras", v, nil)
		}
	})
	members(extras, func(k, v []byte) {
		switch {
		case keyIs(k, "billId"):
			field(3, "data.extras.billId", v, &env.BillID)
		case keyIs(k, "settlementMethod"):
			field(4, "data.extras.settlementMethod", v, &env.SettlementMethod)
		}
	})
	if err != nil {
		return ReceiptEnvelope{}, err
	}
	return env, nil
}

// duplicate refuses a key an object has twice; in is the path of the
// object ("" the receipt itself, "data.extras.").
func duplicate(in string, key []byte) error {
	return Errorf(EINVALID, in+LogText(string(key)),
		"the key %q appears more than once in the %s: each may appear only once", LogText(string(key)), where(in))
}

func where(in string) string {
	if in == "" {
		return "receipt"
	}
	return "object " + strings.TrimSuffix(in, ".")
}

// kindOf names the JSON type of a valid value, for messages.
func kindOf(v []byte) string {
	switch v[0] {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// text is a JSON string's value or a number's text; "" for anything else.
func text(raw []byte) string {
	switch {
	case len(raw) == 0:
		return ""
	case raw[0] == '"':
		return stringValue(raw)
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw)
	}
	return ""
}

// A tiny walker over JSON that json.Valid has already accepted. The receipt
// path reads five fields of a body it must keep byte for byte; unmarshalling
// it into maps three times cost more than the fsync it waits for. Keys are
// matched exactly (encoding/json would take "ID" for "id").

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && !isSpace(b[i]) {
		i++
	}
	return i
}

// members calls fn with each member of the object b (valid JSON): the key as
// its JSON string token and the value's raw bytes. It reports false when b
// is not an object.
func members(b []byte, fn func(key, val []byte)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] == '"' {
		ke := skipString(b, i)
		key := b[i:ke]
		i = skipSpace(b, ke)
		i = skipSpace(b, i+1) // ':'
		ve := skipValue(b, i)
		fn(key, b[i:ve])
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return true
}

// keyIs reports whether the JSON string token key spells name.
func keyIs(key []byte, name string) bool {
	if len(key) == len(name)+2 && string(key[1:len(key)-1]) == name {
		return true
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return false
	}
	var s string
	return json.Unmarshal(key, &s) == nil && s == name
}

// stringValue is a JSON string token's value.
func stringValue(tok []byte) string {
	if bytes.IndexByte(tok, '\\') < 0 {
		return string(tok[1 : len(tok)-1])
	}
	var s string
	json.Unmarshal(tok, &s)
	return s
}

// keyBytes is a JSON string token's value, sharing tok's bytes when it has
// no escapes.
func keyBytes(tok []byte) []byte {
	if bytes.IndexByte(tok, '\\') < 0 {
		return tok[1 : len(tok)-1]
	}
	return []byte(stringValue(tok))
}

// uniqueMembers is members that also reports the first key (its value)
// that the object has more than once; fn sees only each key's first member.
// Decoders disagree on duplicates (encoding/json keeps the last, others the
// first), so a receipt with two ids would be one receipt here and another
// upstream.
func uniqueMembers(b []byte, fn func(key, val []byte)) (ok bool, dup []byte) {
	var stack [16][]byte
	seen := stack[:0]
	var many map[string]bool // beyond a few keys, so a huge object is not quadratic
	ok = members(b, func(k, v []byte) {
		kb := keyBytes(k)
		if many != nil {
			if many[string(kb)] {
				if dup == nil {
					dup = kb
				}
				return
			}
			many[string(kb)] = true
		} else {
			for _, s := range seen {
				if bytes.Equal(s, kb) {
					if dup == nil {
						dup = kb
					}
					return
				}
			}
			if seen = append(seen, kb); len(seen) > 32 {
				many = make(map[string]bool, 64)
				for _, s := range seen {
					many[string(s)] = true
				}
			}
		}
		fn(k, v)
	})
	return ok, dup
}

// badString tells what makes a JSON string token unfit for an identifier
// (an event id, a bill id, a key in the store), or "": a \u0000, or an
// escaped UTF-16 surrogate without its pair, which decoders turn into
// U+FFFD or refuse, each their own way. tok is valid JSON (raw control
// characters are not) and the body valid UTF-8 (checked before).
func badString(tok []byte) string {
	for i := 1; i < len(tok)-1; i++ {
		if tok[i] != '\\' {
			continue
		}
		i++
		if tok[i] != 'u' || i+4 >= len(tok) {
			continue
		}
		r := hex4(tok[i+1 : i+5])
		i += 4
		switch {
		case r == 0:
			return `\u0000`
		case r >= 0xD800 && r < 0xDC00:
			if i+6 < len(tok)-1 && tok[i+1] == '\\' && tok[i+2] == 'u' {
				if r2 := hex4(tok[i+3 : i+7]); r2 >= 0xDC00 && r2 < 0xE000 {
					i += 6
					continue
				}
			}
			return "a lone UTF-16 surrogate"
		case r >= 0xDC00 && r < 0xE000:
			return "a lone UTF-16 surrogate"
		}
	}
	return ""
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
