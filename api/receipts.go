package api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
)

func (s *Server) receipt(w http.ResponseWriter, r *http.Request, _ httprouter.Params, x *exchange) error {
	if r.ContentLength > shopbridge.MaxBody {
		return shopbridge.Errorf(shopbridge.ETOOLARGE, "body", "the body is %d bytes, over the 1 MiB limit", r.ContentLength)
	}
	body, err := readBody(w, r)
	x.reqBody = body
	if err != nil {
		return err
	}
	env, err := shopbridge.ParseReceipt(body)
	if err != nil {
		return err
	}
	headers := shopbridge.EvotorHeaders(r.Header)
	device := header(r.Header, deviceHeader)
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

// readBody reads a receipt's body within its deadline and up to shopbridge.MaxBody. Its
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, shopbridge.MaxBody))
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
