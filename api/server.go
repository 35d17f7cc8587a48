// Package api is shopbridge's HTTP layer: the terminal protocol 0.1.0 under
// /api/v2 and the operator endpoints. It is the only package that imports
// httprouter. Handlers answer from the store; misses may be read through to
// the upstream via shopbridge.ReadThrough.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// MaxBody is the largest request body accepted (413 beyond).
const MaxBody = 1 << 20

// MaxJournalBody is how much of a request or answer body the journal keeps.
const MaxJournalBody = 64 << 10

// ReadThroughTimeout bounds a miss read through to the upstream.
const ReadThroughTimeout = 2 * time.Second

// DefaultAllow is the client ranges allowed when --allow is not given.
var DefaultAllow = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"),
}

// Config is what the HTTP layer needs from the daemon.
type Config struct {
	Store         *storage.Store
	ReadThrough   shopbridge.ReadThrough // nil: standalone, misses are 404
	Journal       shopbridge.Journal     // nil: nothing recorded
	Logger        *slog.Logger
	TerminalToken string
	AdminToken    string
	Allow         []netip.Prefix // nil: DefaultAllow
	Location      *time.Location // the shop's time zone for date=today
	Now           func() time.Time
	Status        func() any                 // admin/api/status body
	Metrics       []shopbridge.MetricsWriter // extra /metrics parts
}

// Server holds the handlers and their counters.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	router  *httprouter.Router
	metrics *metrics
	bufs    sync.Pool
	states  sync.Pool
}

// New builds the handlers.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Allow == nil {
		cfg.Allow = DefaultAllow
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("part", "http"), metrics: newMetrics()}
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	s.states.New = func() any { return new(requestState) }
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false

	r.GET("/api/v2/hello", s.terminal("HELLO", false, s.hello))
	r.GET("/api/v2/list", s.terminal("LIST", true, s.list))
	r.GET("/api/v2/bill/byid/:id", s.terminal("BILL", true, s.billByID))
	r.POST("/api/v2/receipts", s.terminal("RECEIPT", true, s.receipt))

	r.GET("/healthz", s.healthz)
	r.GET("/metrics", s.admin(s.serveMetrics))
	r.GET("/admin/api/status", s.admin(s.status))
	r.GET("/admin/api/journal", s.admin(s.journal))
	r.GET("/admin/api/backup", s.admin(s.backup))
	r.POST("/admin/api/outbox/:id/retry", s.admin(s.retry))

	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.fail(w, shopbridge.Errorf(shopbridge.ENOTFOUND, req.URL.Path, "no such route %s", req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.fail(w, shopbridge.Errorf(shopbridge.EMETHOD, req.URL.Path, "method %s is not allowed on %s", req.Method, req.URL.Path))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.logger.Error("panic in handler", "path", req.URL.Path, "panic", fmt.Sprint(v))
		s.fail(w, errors.New("panic"))
	}
	s.router = r
	return s
}

// ServeHTTP checks the client address, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(clientAddr(r)) {
		s.fail(w, shopbridge.Errorf(shopbridge.EFORBIDDEN, "client", "client address %s is not allowed (see --allow)", clientAddr(r)))
		return
	}
	s.router.ServeHTTP(w, r)
}

func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (s *Server) allowed(a netip.Addr) bool {
	for _, p := range s.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fail writes the Evotor error body for err.
func (s *Server) fail(w http.ResponseWriter, err error) {
	status, body := errorBody(err)
	if status >= 500 {
		s.logger.Error("request failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func tokenOK(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// handler is a terminal call: it returns the answer's source or an error.
type handler func(w http.ResponseWriter, r *http.Request, ps httprouter.Params, x *exchange) error

// exchange is one terminal request on its way to the journal.
type exchange struct {
	reqBody []byte
	receipt string // the event id of a receipt stored with exactly reqBody
	source  string
}

// terminal wraps a protocol handler with the token check, the Evotor error
// body, metrics and the journal.
func (s *Server) terminal(kind string, needToken bool, h handler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		start := time.Now()
		st := s.states.Get().(*requestState)
		st.recorder = recorder{ResponseWriter: w, status: http.StatusOK, keep: s.cfg.Journal != nil}
		st.exchange = exchange{source: "store"}
		rec, x := &st.recorder, &st.exchange
		var err error
		if needToken && s.cfg.TerminalToken != "" && !tokenOK(bearer(r), s.cfg.TerminalToken) {
			err = shopbridge.Errorf(shopbridge.EUNAUTHORIZED, "Authorization", "missing or wrong terminal token")
		} else {
			err = h(rec, r, ps, x)
		}
		if err != nil {
			x.source = ""
			s.fail(rec, err)
		}
		d := time.Since(start)
		s.metrics.observe(kind, rec.status, d)
		if s.cfg.Journal != nil {
			q := r.URL.RawQuery
			if qq, uerr := unescape(q); uerr == nil {
				q = qq
			}
			e := shopbridge.JournalEntry{
				Time: start, Client: clientHost(r.RemoteAddr), Device: r.Header.Get("X-Evotor-Device-Uuid"),
				Kind: kind, Method: r.Method, Path: r.URL.Path, Query: q, ReqBody: clip(x.reqBody),
				ReqReceipt: x.receipt, Status: rec.status, RespBody: rec.body, Duration: d, Source: x.source,
			}
			if e.ReqReceipt != "" {
				e.ReqBody = nil // the store has these bytes already
			}
			s.cfg.Journal.Record(e)
		}
		// The journal keeps the body slices; the state itself is reused.
		*st = requestState{}
		s.states.Put(st)
	}
}

// requestState is a terminal request's recorder and exchange, pooled: two
// allocations less on every request.
type requestState struct {
	recorder recorder
	exchange exchange
}

// clientHost is the address part of a RemoteAddr ("1.2.3.4:5", "[::1]:5")
// without allocating, as clientAddr would print it.
func clientHost(remote string) string {
	i := strings.LastIndexByte(remote, ':')
	if i < 0 {
		return remote
	}
	host := remote[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return strings.TrimPrefix(host, "::ffff:")
}

func unescape(q string) (string, error) {
	if !strings.ContainsAny(q, "%+") {
		return q, nil
	}
	return url.QueryUnescape(q)
}

func clip(b []byte) []byte {
	if len(b) > MaxJournalBody {
		return b[:MaxJournalBody]
	}
	return b
}

// recorder keeps the status and (for the journal) the first 64 KiB written.
type recorder struct {
	http.ResponseWriter
	status int
	keep   bool
	body   []byte
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.keep && len(r.body) < MaxJournalBody {
		n := min(len(p), MaxJournalBody-len(r.body))
		r.body = append(r.body, p[:n]...)
	}
	return r.ResponseWriter.Write(p)
}

// admin guards operator endpoints: loopback always, others only with the
// admin token when one is configured.
func (s *Server) admin(h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		a := clientAddr(r)
		if !a.IsLoopback() {
			if s.cfg.AdminToken == "" {
				s.fail(w, shopbridge.Errorf(shopbridge.EFORBIDDEN, "client", "operator endpoints answer loopback only (set --admin-token to allow others)"))
				return
			}
			if !tokenOK(bearer(r), s.cfg.AdminToken) {
				s.fail(w, shopbridge.Errorf(shopbridge.EUNAUTHORIZED, "Authorization", "missing or wrong admin token"))
				return
			}
		}
		h(w, r, ps)
	}
}

func (s *Server) syncedAt(w http.ResponseWriter) {
	if t := s.cfg.Store.SyncedAt(); !t.IsZero() {
		w.Header().Set("X-Shopbridge-Synced-At", t.UTC().Format(time.RFC3339))
	}
}

// jsonType is shared by every answer: net/http never changes a header's
// values, so one slice saves an allocation per request.
var jsonType = []string{"application/json; charset=utf-8"}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

func (s *Server) hello(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *exchange) error {
	body, _ := json.Marshal(struct {
		System   string `json:"system"`
		Protocol string `json:"protocol"`
	}{s.cfg.Store.System(), shopbridge.ProtocolVersion})
	writeJSON(w, http.StatusOK, body)
	return nil
}

// ListParams are the parameters of /api/v2/list that shopbridge reads.
type ListParams struct {
	Date   string // "", "today" or YYYY-MM-DD
	Number string
}

// ParseListParams reads list parameters from a raw query, ignoring unknown
// ones. date must be "today" or a real calendar day.
func ParseListParams(rawQuery string) (ListParams, error) {
	var p ListParams
	for _, pair := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil || (key != "date" && key != "number") {
			continue // unknown parameters, readable or not, are ignored
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return ListParams{}, shopbridge.Errorf(shopbridge.EINVALID, key, "bad escape in %s: %v", key, err)
		}
		if key == "date" && p.Date == "" {
			p.Date = val
		} else if key == "number" && p.Number == "" {
			p.Number = val
		}
	}
	if p.Date != "" && p.Date != "today" {
		if _, err := time.Parse("2006-01-02", p.Date); err != nil || len(p.Date) != 10 {
			return ListParams{}, shopbridge.Errorf(shopbridge.EVALUE, "date", "date must be \"today\" or YYYY-MM-DD, not %q", p.Date)
		}
	}
	return p, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, _ httprouter.Params, x *exchange) error {
	p, err := ParseListParams(r.URL.RawQuery)
	if err != nil {
		return err
	}
	q := storage.ListQuery{Number: p.Number, Date: p.Date}
	if p.Date == "today" {
		q.Date = s.cfg.Now().In(s.cfg.Location).Format("2006-01-02")
	}
	sums, err := s.cfg.Store.List(q)
	if err != nil {
		return err
	}
	if len(sums) == 0 && p.Number != "" && s.cfg.ReadThrough != nil {
		ctx, cancel := context.WithTimeout(r.Context(), ReadThroughTimeout)
		found, rerr := s.cfg.ReadThrough.ListByNumber(ctx, p.Number)
		cancel()
		if rerr == nil {
			x.source = "upstream"
			for _, sum := range found {
				if q.Date == "" || strings.HasPrefix(sum.Date, q.Date+" ") {
					sums = append(sums, sum)
				}
			}
		}
	}
	if q.Date != "" && p.Number != "" {
		kept := sums[:0]
		for _, sum := range sums {
			if strings.HasPrefix(sum.Date, q.Date+" ") {
				kept = append(kept, sum)
			}
		}
		sums = kept
	}
	bp := s.bufs.Get().(*[]byte)
	b := append((*bp)[:0], '[')
	for i, sum := range sums {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, sum.Raw...)
	}
	b = append(b, ']')
	s.syncedAt(w)
	writeJSON(w, http.StatusOK, b)
	*bp = b
	s.bufs.Put(bp)
	return nil
}

func (s *Server) billByID(w http.ResponseWriter, r *http.Request, ps httprouter.Params, x *exchange) error {
	id := ps.ByName("id")
	if !storage.ValidID(id) {
		return shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %q (ids are whole numbers)", id)
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	body, err := s.cfg.Store.BillBody((*bp)[:0], id)
	*bp = body[:0]
	if shopbridge.ErrorKind(err) == shopbridge.ENOTFOUND && s.cfg.ReadThrough != nil {
		ctx, cancel := context.WithTimeout(r.Context(), ReadThroughTimeout)
		b, rerr := s.cfg.ReadThrough.BillByID(ctx, id)
		cancel()
		if rerr == nil {
			body, err, x.source = b.Body, nil, "upstream"
		}
	}
	if err != nil {
		return err
	}
	s.syncedAt(w)
	writeJSON(w, http.StatusOK, body)
	return nil
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	x.reqBody = body
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return shopbridge.Errorf(shopbridge.ETOOLARGE, "body", "the body is over the 1 MiB limit")
		}
		return shopbridge.Errorf(shopbridge.EINVALID, "body", "reading the body: %v", err)
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

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.cfg.Store.Healthy() {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok")
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var v any = map[string]any{}
	if s.cfg.Status != nil {
		v = s.cfg.Status()
	}
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if err := s.cfg.Store.Retry(ps.ByName("id")); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"retried":true}`))
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	bw := &backupWriter{w: w}
	if _, err := s.cfg.Store.WriteTo(bw); err != nil {
		if !bw.started {
			// Nothing sent yet (say, the store is closed): an error
			// status, not a 200 with an empty file.
			s.fail(w, err)
			return
		}
		s.logger.Error("backup failed", "err", err)
	}
}

// backupWriter sets the download headers with the first byte, so a backup
// that fails before it starts can still answer with an error.
type backupWriter struct {
	w       http.ResponseWriter
	started bool
}

func (b *backupWriter) Write(p []byte) (int, error) {
	if !b.started {
		b.started = true
		b.w.Header().Set("Content-Type", "application/octet-stream")
		b.w.Header().Set("Content-Disposition", `attachment; filename="shopbridge-backup.db"`)
	}
	return b.w.Write(p)
}
