package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
)

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
		return env, shopbridge.Errorf(shopbridge.EINVALID, "body", "the body is empty: a receipt is a JSON object")
	}
	if !json.Valid(body) {
		err := json.Unmarshal(body, new(json.RawMessage))
		return env, shopbridge.Errorf(shopbridge.EINVALID, "body", "the receipt is not valid JSON: %v", err)
	}
	if !utf8.Valid(body) {
		return env, shopbridge.Errorf(shopbridge.EINVALID, "body", "the receipt is not valid UTF-8")
	}
	var id, data []byte
	if !members(body, func(k, v []byte) {
		switch {
		case keyIs(k, "id"):
			id = v
		case keyIs(k, "data"):
			data = v
		}
	}) {
		return env, shopbridge.Errorf(shopbridge.EINVALID, "body", "the receipt must be a JSON object, not %s", kindOf(bytes.TrimSpace(body)))
	}
	switch {
	case len(id) == 0 || string(id) == "null":
		return env, shopbridge.Errorf(shopbridge.EMISSING, "id", "the receipt has no event id")
	case id[0] != '"':
		return env, shopbridge.Errorf(shopbridge.EINVALID, "id", "the event id must be a string, not %s", id)
	}
	if env.EventID = stringValue(id); env.EventID == "" {
		return env, shopbridge.Errorf(shopbridge.EMISSING, "id", "the event id is empty")
	}
	switch {
	case len(data) == 0 || string(data) == "null":
		return env, shopbridge.Errorf(shopbridge.EMISSING, "data", "the receipt has no data")
	case data[0] != '{':
		return env, shopbridge.Errorf(shopbridge.EINVALID, "data", "data must be an object")
	}
	members(data, func(k, v []byte) {
		switch {
		case keyIs(k, "type"):
			env.Type = text(v)
		case keyIs(k, "deviceId"):
			env.DeviceID = text(v)
		case keyIs(k, "extras"):
			members(v, func(k, v []byte) {
				switch {
				case keyIs(k, "billId"):
					env.BillID = text(v)
				case keyIs(k, "settlementMethod"):
					env.SettlementMethod = text(v)
				}
			})
		}
	})
	return env, nil
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

func (s *Server) receipt(w http.ResponseWriter, r *http.Request, _ httprouter.Params, x *exchange) error {
	if r.ContentLength > MaxBody {
		return shopbridge.Errorf(shopbridge.ETOOLARGE, "body", "the body is %d bytes, over the 1 MiB limit", r.ContentLength)
	}
	body, err := readBody(w, r)
	x.reqBody = body
	if err != nil {
		return err
	}
	env, err := ParseReceipt(body)
	if err != nil {
		return err
	}
	headers := map[string]string{}
	for k, v := range r.Header {
		if strings.HasPrefix(k, "X-Evotor-") && len(v) > 0 {
			headers[k] = v[0]
		}
	}
	device := r.Header.Get("X-Evotor-Device-Uuid")
	if device == "" {
		device = env.DeviceID
	}
	if device == "" {
		device = clientAddr(r).String()
	}
	dup, err := s.cfg.Store.AcceptReceipt(&shopbridge.Receipt{
		EventID: env.EventID, Body: body, Headers: headers, ReceivedAt: s.cfg.Now().UTC(),
		Type: env.Type, BillID: env.BillID, SettlementMethod: env.SettlementMethod, DeviceID: device,
	})
	if err != nil {
		return err
	}
	x.receipt = env.EventID // accepted: stored with exactly these bytes
	if dup {
		x.source = "duplicate"
	} else {
		s.metrics.receiptsAccepted.Add(1)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// BodyTime is how long a receipt's body may take to arrive after its
// headers, plus a second per BodyRate bytes declared: a register on the LAN
// sends a receipt in milliseconds, and one that stops short of its
// Content-Length hears 400 within seconds instead of holding the connection
// until the server's ReadTimeout.
const (
	BodyTime = 5 * time.Second
	BodyRate = 100 << 10
)

// readBody reads a receipt's body within its deadline and up to MaxBody. Its
// errors say what was wrong with the body, never the socket's error text.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	d := BodyTime
	if r.ContentLength > 0 {
		d += time.Duration(r.ContentLength/BodyRate) * time.Second
	}
	rc := http.NewResponseController(w)
	// Not every ResponseWriter can (a test's recorder): the server's own
	// timeouts still apply then.
	_ = rc.SetReadDeadline(time.Now().Add(d))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err == nil {
		_ = rc.SetReadDeadline(time.Time{})
		return body, nil
	}
	// What is left of the body must not be read as the next request, and
	// net/http must not wait for it before answering (it reads the rest of
	// an unread body to keep the connection): close after the answer, and
	// let any further read fail at once.
	w.Header().Set("Connection", "close")
	_ = rc.SetReadDeadline(time.Now())
	got := len(body)
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return body, shopbridge.Errorf(shopbridge.ETOOLARGE, "body", "the body is over the 1 MiB limit")
	case errors.As(err, &ne) && ne.Timeout():
		if r.ContentLength > 0 {
			return body, shopbridge.Errorf(shopbridge.EINVALID, "body",
				"the body stopped short of its Content-Length: got %d of %d bytes in %s", got, r.ContentLength, d)
		}
		return body, shopbridge.Errorf(shopbridge.EINVALID, "body", "the body did not end within %s (got %d bytes)", d, got)
	case errors.Is(err, io.ErrUnexpectedEOF) && r.ContentLength > 0:
		return body, shopbridge.Errorf(shopbridge.EINVALID, "body",
			"the body ended before its Content-Length (got %d of %d bytes)", got, r.ContentLength)
	case r.ContentLength < 0:
		// Chunked: net/http's chunk parser failed.
		return body, shopbridge.Errorf(shopbridge.EINVALID, "body", "the body's chunked encoding is malformed (after %d bytes)", got)
	}
	return body, shopbridge.Errorf(shopbridge.EINVALID, "body", "the body could not be read (got %d bytes)", got)
}
