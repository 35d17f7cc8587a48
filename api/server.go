// Package api is shopbridge's HTTP layer: the terminal protocol 0.1.0 under
// /api/v2 and the operator endpoints. It is the only package that imports
// httprouter. Handlers answer from the store; misses may be read through to
// the upstream via shopbridge.ReadThrough.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// ReadThroughTimeout bounds a miss read through to the upstream.
const ReadThroughTimeout = 2 * time.Second

// DefaultAllow is the client ranges allowed when --allow is not given
// (loopback is allowed whatever the list says).
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
	Timezone      *time.Location // the shop's time zone for date=today
	Now           func() time.Time
	Status        func() Status // admin/api/status body
	// BriefStatus is Status without the store's part (Status.ReadStore),
	// for the console's polls: the overview reads that part itself, once
	// per poll, with its own lists; nil: Status.
	BriefStatus func() Status
	Metrics     []shopbridge.MetricsWriter // extra /metrics parts
	// Hosts are further names (or addresses) of this machine that
	// operator requests may carry in Host (--admin-hosts), besides
	// loopback, its own addresses and host names (docs/security.md).
	Hosts []string
	// HTTPS is the daemon's HTTPS listener, nil when it has none: then
	// the console from another PC answers over plain HTTP too; with it,
	// plain HTTP from another PC is sent there (https.go).
	HTTPS *shopbridge.HTTPSStatus
}

// Server holds the handlers and their counters.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	router  *httprouter.Router
	metrics *metrics
	auth    *consoleAuth
	hosts   *hostCheck
	limiter *tokenLimiter
	bufs    sync.Pool
	states  sync.Pool
	// http serves from Open to Close; serveErr has what its Serve calls
	// returned.
	http     *http.Server
	serveErr chan error
}

// New builds the handlers.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Allow == nil {
		cfg.Allow = DefaultAllow
	}
	if cfg.Timezone == nil {
		cfg.Timezone = time.Local
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("part", "http"), metrics: newMetrics(), auth: newConsoleAuth(cfg.AdminToken, cfg.Now),
		hosts: newHostCheck(cfg.Hosts)}
	s.limiter = s.auth.limiter // one limiter for admin and terminal tokens
	s.limiter.onLock = func(scope string, n netip.Prefix) {
		if scope == "global" {
			s.logger.Warn("wrong tokens from many addresses: tokens are refused from every address that has not presented a right one lately",
				"last_client", n.String(), "budget_per_minute", int(time.Minute/globalEvery))
			return
		}
		s.logger.Warn("wrong tokens: client locked out", "client", n.String(), "failures", limitFails, "window", limitWindow.String())
	}
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	s.states.New = func() any { return new(requestState) }
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false

	r.GET("/api/v2/hello", s.terminal(shopbridge.KindHello, false, s.hello))
	r.GET("/api/v2/list", s.terminal(shopbridge.KindList, true, s.list))
	r.GET("/api/v2/bill/byid/:id", s.terminal(shopbridge.KindBill, true, s.billByID))
	r.POST("/api/v2/receipts", s.terminal(shopbridge.KindReceipt, true, s.receipt))

	r.GET("/healthz", s.healthz)
	r.GET("/metrics", s.admin(s.serveMetrics))
	r.GET("/admin/api/status", s.admin(s.status))
	r.GET("/admin/api/journal", s.admin(s.journal))
	r.GET("/admin/api/backup", s.admin(s.backup))
	r.POST("/admin/api/outbox/:id/retry", s.admin(s.retry))
	r.GET("/admin/api/outbox", s.admin(s.queuePage(cfg.Store.Outbox, func(st storage.Stats) int { return st.Outbox })))
	r.GET("/admin/api/parked", s.admin(s.queuePage(cfg.Store.ParkedAfter, func(st storage.Stats) int { return st.Parked })))
	s.consoleRoutes(r)

	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.failFor(w, req, shopbridge.Errorf(shopbridge.ENOTFOUND, req.URL.Path, "no such route %s", req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.failFor(w, req, shopbridge.Errorf(shopbridge.EMETHOD, req.URL.Path, "method %s is not allowed on %s", req.Method, req.URL.Path))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.logger.Error("panic in handler", "path", logText(req.URL.Path), "panic", logText(fmt.Sprint(v)))
		s.fail(w, errors.New("panic"))
	}
	s.router = r
	return s
}

// MaxURL is the longest request target accepted (414 beyond).
const MaxURL = 8 << 10

// MaxHeader is the most request header bytes accepted, names and values
// (431 beyond). The http.Server's own MaxHeaderBytes must be well above it
// (see MaxHeaderBytes), so that this check, with the Evotor body, is the one
// a register meets.
const MaxHeader = 64 << 10

// MaxHeaderBytes is what the daemon gives http.Server: its plain-text 431
// answers only requests far beyond MaxURL and MaxHeader, and Listener turns
// even that into the Evotor body.
const MaxHeaderBytes = 1 << 20

// ServeHTTP checks the request's size and the client address, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := checkSize(r); err != nil {
		w.Header().Set("Connection", "close")
		s.fail(w, err)
		return
	}
	ok, known := r.Context().Value(connAllowedKey{}).(bool)
	if !known {
		ok = s.allowed(clientAddr(r))
	}
	if !ok {
		s.failFor(w, r, shopbridge.Errorf(shopbridge.EFORBIDDEN, "client", "client address %s is not allowed (see --allow)", clientAddr(r)))
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/"):
		// A web page's request is refused on every terminal route, a
		// CORS preflight (which the router would answer 405) too, and
		// journalled like any terminal call.
		if why := crossSite(r); why != "" {
			s.terminal(terminalKind(p), false, func(http.ResponseWriter, *http.Request, httprouter.Params, *exchange) error {
				return browserRefused(why)
			})(w, r, nil)
			return
		}
	case p == "/metrics" || p == "/admin" || strings.HasPrefix(p, "/admin/"):
		if !s.hosts.ok(r.Host, localAddr(r)) {
			s.failAdmin(w, r, hostRefused(r.Host)) // a browser gets the console's page
			return
		}
		if p != "/metrics" && s.toHTTPS(w, r) {
			return
		}
	}
	s.router.ServeHTTP(w, r)
}

// terminalKind is the journal kind of a terminal path.
func terminalKind(p string) string {
	switch {
	case p == "/api/v2/hello":
		return shopbridge.KindHello
	case p == "/api/v2/list":
		return shopbridge.KindList
	case strings.HasPrefix(p, "/api/v2/bill/"):
		return shopbridge.KindBill
	case p == "/api/v2/receipts":
		return shopbridge.KindReceipt
	}
	return shopbridge.KindTerminal
}

// checkSize enforces MaxURL and MaxHeader.
func checkSize(r *http.Request) error {
	if len(r.RequestURI) > MaxURL {
		return shopbridge.Errorf(shopbridge.EURITOOLONG, "url", "the URL is %d bytes, over the %d KiB limit", len(r.RequestURI), MaxURL>>10)
	}
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4 // ": " and CRLF
		}
	}
	if n > MaxHeader {
		return shopbridge.Errorf(shopbridge.EHEADERS, "header", "the request headers are %d bytes, over the %d KiB limit", n, MaxHeader>>10)
	}
	return nil
}

type connAllowedKey struct{}

// ConnContext is for http.Server.ConnContext: it checks a connection's
// client address against --allow once, not on every request over it.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return ctx // each request is checked, and refused
	}
	return context.WithValue(ctx, connAllowedKey{}, s.allowed(ap.Addr().Unmap()))
}

func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// allowed reports whether a client may talk to the server at all. Loopback
// always may: the operator commands (status, journal, backup) run on the
// shop PC itself, and an --allow list naming the shop's LAN must not lock
// them out.
func (s *Server) allowed(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, p := range s.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// failFor answers a refusal: a browser's request for anything but the
// terminal protocol gets the console's page saying why (console.go); the
// terminal protocol and programs get the Evotor error body.
func (s *Server) failFor(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.fail(w, err)
		return
	}
	s.failAdmin(w, r, err)
}

// fail writes the Evotor error body for err.
func (s *Server) fail(w http.ResponseWriter, err error) {
	status, body := errorBody(err)
	// Only the unexpected: a store that cannot write says so once itself.
	if status == http.StatusInternalServerError {
		s.logger.Error("request failed", "err", err)
	}
	var c *coded
	if errors.As(err, &c) && c.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(c.retry))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func bearer(r *http.Request) string {
	h := header(r.Header, "Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// header is h.Get(key) for a key already in canonical form, as net/http
// stores a request's headers: Get canonicalizes its key first, which a
// terminal request paid for eight times.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// deviceHeader is the register's X-Evotor-Device-UUID as net/http keys it.
const deviceHeader = "X-Evotor-Device-Uuid"

func tokenOK(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// handler is a terminal call: it writes the answer and sets x.source to
// where the answer came from ("store", "upstream", "duplicate"), or returns
// an error, which terminal turns into the Evotor error body.
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
		err := s.checkTerminal(r, needToken)
		if err == nil {
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
				Time: start, Client: clientHost(r.RemoteAddr), Device: clipID(header(r.Header, deviceHeader)),
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

// checkTerminal is what every terminal call must pass before its handler:
// a device header of sane length and, where needed, the terminal token
// (through the limiter).
func (s *Server) checkTerminal(r *http.Request, needToken bool) error {
	if n := len(header(r.Header, deviceHeader)); n > shopbridge.MaxID {
		return tooLong("X-Evotor-Device-UUID", n)
	}
	if !needToken || s.cfg.TerminalToken == "" {
		return nil
	}
	got := bearer(r)
	if got == "" {
		return shopbridge.Errorf(shopbridge.EUNAUTHORIZED, "Authorization", "missing or wrong terminal token")
	}
	a := clientAddr(r)
	if locked, wait := s.limiter.locked(a); locked {
		return lockedOut(wait)
	}
	if !tokenOK(got, s.cfg.TerminalToken) {
		s.limiter.failed(a)
		return shopbridge.Errorf(shopbridge.EUNAUTHORIZED, "Authorization", "missing or wrong terminal token")
	}
	s.limiter.succeeded(a)
	return nil
}

// clipID keeps at most shopbridge.MaxID bytes of a client's identifier for the
// journal (whose terminals are keyed by it).
func clipID(s string) string {
	if len(s) > shopbridge.MaxID {
		return s[:shopbridge.MaxID]
	}
	return s
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
	if len(b) > shopbridge.MaxJournalBody {
		return b[:shopbridge.MaxJournalBody]
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

// Unwrap lets http.ResponseController reach the connection (the receipt
// handler sets a read deadline through it).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Write(p []byte) (int, error) {
	if r.keep && len(r.body) < shopbridge.MaxJournalBody {
		n := min(len(p), shopbridge.MaxJournalBody-len(r.body))
		r.body = append(r.body, p[:n]...)
	}
	return r.ResponseWriter.Write(p)
}

// writeShared writes a JSON answer whose body nobody modifies (a bill's
// stored bytes): the journal keeps those bytes instead of a copy.
func (r *recorder) writeShared(status int, body []byte) {
	keep := r.keep
	r.keep = false
	writeJSON(r, status, body)
	if r.keep = keep; keep && r.body == nil {
		r.body = clip(body)
	}
}

// opHandler is an operator endpoint or a console form: it writes the
// answer, or returns an error, which its wrapper (admin, answer, form)
// turns into the answer.
type opHandler func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error

// admin guards operator endpoints: loopback always, others only with the
// admin token (or a console session) when one is configured; a browser's
// state-changing requests also need the console's CSRF token
// (console_auth.go). A refusal gets the console's page for a browser; h's
// own error gets the Evotor error body, as from answer.
func (s *Server) admin(h opHandler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if _, err := s.auth.allow(r); err != nil {
			s.failAdmin(w, r, err)
			return
		}
		if err := h(w, r, ps); err != nil {
			s.fail(w, err)
		}
	}
}

// answer turns h's error into the Evotor error body, for a browser too.
func (s *Server) answer(h opHandler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if err := h(w, r, ps); err != nil {
			s.fail(w, err)
		}
	}
}

// form turns h's error into failAdmin's answer: a page saying why for a
// browser (the console's own form posts), the Evotor body for a program.
func (s *Server) form(h opHandler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if err := h(w, r, ps); err != nil {
			s.failAdmin(w, r, err)
		}
	}
}

// jsonType is shared by every answer: net/http never changes a header's
// values, so one slice saves an allocation per request.
var jsonType = []string{"application/json; charset=utf-8"}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = contentLength(len(body))
	w.WriteHeader(status)
	w.Write(body)
}

// lengths holds the Content-Length values of answers shorter than 4 KiB,
// made on first use: a bill's answer is the same few lengths over and over,
// and each one made afresh was two allocations on every request.
var lengths [4 << 10]atomic.Pointer[[]string]

// contentLength is the Content-Length header value for n bytes. Like
// jsonType, the slice is shared: net/http only reads it.
func contentLength(n int) []string {
	if n >= len(lengths) {
		return []string{strconv.Itoa(n)}
	}
	if v := lengths[n].Load(); v != nil {
		return *v
	}
	v := []string{strconv.Itoa(n)}
	lengths[n].Store(&v)
	return v
}

// Evotor error codes. 2001 and 2002 are Evotor's documented codes; the others
// are shopbridge's, listed in docs/protocol.md.
const (
	CodeSyntax       = 2001 // 400: the request is not well-formed
	CodeMissingField = 2002 // 400: a required field is absent or empty
	CodeInvalidValue = 2003 // 400: a parameter has a value that cannot be used
	CodeUnauthorized = 1001 // 401: missing or wrong terminal token
	CodeForbidden    = 1002 // 403: the client address is not allowed
	CodeBrowser      = 1003 // 403: a terminal request from a web page (lan.go)
	CodeLocked       = 1004 // 429: too many wrong tokens (lan.go)
	CodeNotFound     = 2004 // 404: unknown bill or route
	CodeMethod       = 2005 // 405
	CodeConflict     = 2006 // 409: event id already used with other content
	CodeTooLarge     = 2007 // 413: body over 1 MiB
	CodeURITooLong   = 2008 // 414: URL over MaxURL
	CodeHeaders      = 2009 // 431: request headers over MaxHeader
	CodeExpect       = 2010 // 417: an Expect other than 100-continue (Listener)
	CodeEncoding     = 2011 // 501: a Transfer-Encoding other than chunked (Listener)
	CodeVersion      = 2012 // 505: an HTTP version other than 1.x (Listener)
	CodeInternal     = 3000 // 500
	CodeUnavailable  = 3001 // 503: the store is closed or cannot write (disk full)
)

// errorStatus maps the project's error kinds to HTTP status and Evotor code.
func errorStatus(err error) (status, code int) {
	var c *coded
	if errors.As(err, &c) {
		return c.status, c.code
	}
	switch shopbridge.ErrorKind(err) {
	case shopbridge.EINVALID:
		return http.StatusBadRequest, CodeSyntax
	case shopbridge.EMISSING:
		return http.StatusBadRequest, CodeMissingField
	case shopbridge.EVALUE:
		return http.StatusBadRequest, CodeInvalidValue
	case shopbridge.EUNAUTHORIZED:
		return http.StatusUnauthorized, CodeUnauthorized
	case shopbridge.EFORBIDDEN:
		return http.StatusForbidden, CodeForbidden
	case shopbridge.ENOTFOUND:
		return http.StatusNotFound, CodeNotFound
	case shopbridge.EMETHOD:
		return http.StatusMethodNotAllowed, CodeMethod
	case shopbridge.ECONFLICT:
		return http.StatusConflict, CodeConflict
	case shopbridge.ETOOLARGE:
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case shopbridge.EURITOOLONG:
		return http.StatusRequestURITooLong, CodeURITooLong
	case shopbridge.EHEADERS:
		return http.StatusRequestHeaderFieldsTooLarge, CodeHeaders
	case shopbridge.EUNAVAILABLE:
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

type errorItem struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Subject string `json:"subject"`
}

// errorBody is Evotor's documented error body.
func errorBody(err error) (status int, body []byte) {
	status, code := errorStatus(err)
	reason := err.Error()
	var e *shopbridge.Error
	var c *coded
	if errors.As(err, &c) {
		reason = c.msg
	} else if errors.As(err, &e) {
		reason = e.Message
	}
	if status == http.StatusInternalServerError {
		reason = "internal error" // details go to the log, not to terminals
	}
	subject := shopbridge.ErrorSubject(err)
	if c != nil {
		subject = c.subject
	}
	return status, errorJSON(code, reason, subject)
}

func errorJSON(code int, reason, subject string) []byte {
	body, _ := json.Marshal(struct {
		Errors []errorItem `json:"errors"`
	}{[]errorItem{{Code: code, Reason: reason, Subject: subject}}})
	return body
}
