package crmsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Call kinds: what Counters counts and what a Fault may be limited to.
const (
	KindHello    = "hello"
	KindList     = "list"
	KindBill     = "bill"
	KindReceipts = "receipts"
	KindOther    = "other" // any other path: 404
)

// Evotor error codes the simulator answers with.
const (
	CodeInternal     = 1000 // 500
	CodeUnauthorized = 1001 // 401
	CodeUnavailable  = 1002 // 503
	CodeRateLimited  = 1003 // 429
	CodeSyntax       = 2001 // 400: malformed request
	CodeMissing      = 2002 // 400: missing field
	CodeNotFound     = 2003 // 404: unknown bill or route
	CodeMethod       = 2005 // 405
	CodeTooLarge     = 2006 // 413
)

// MaxReceiptBody is the largest receipt body the simulator reads; larger
// ones get 413.
const MaxReceiptBody = 16 << 20

// Config configures a Server. The zero value serves the default data on
// 127.0.0.1 with a random port and no control listener.
type Config struct {
	Listen   string         // API address; "" means "127.0.0.1:0"
	Control  string         // control address; "" means no control listener
	Data     *Data          // nil means DefaultData()
	Token    string         // when set, /api/v2 calls need "Authorization: Bearer Token"
	Timezone *time.Location // zone of date=today; nil means time.Local
	Latency  time.Duration  // base latency added to every /api/v2 call
	Logger   *slog.Logger   // nil means slog.Default()

	// MaxConcurrent, when > 0, is how many /api/v2 calls are served at
	// once, as an upstream limiting each client's concurrency does: a call
	// arriving while MaxConcurrent are in progress is answered 429 (code
	// 1003) after the base latency, without Retry-After (a slot frees as
	// soon as any call ends), and is not itself counted as in progress.
	MaxConcurrent int

	// Settle makes the simulator behave like the CRM closing a bill: a
	// delivered SELL receipt whose data.extras.billId names a bill and whose
	// data.extras.settlementMethod is FullSettlement or absent drops the bill
	// from the no-parameter and date lists (number= and bill/byid still find
	// it); a delivered PAYBACK for it lists it again.
	Settle bool
}

// Server is a running simulator. Its methods are safe for concurrent use
// and do in-process what the control endpoints do over HTTP.
type Server struct {
	cfg Config
	log *slog.Logger
	loc *time.Location

	mu       sync.Mutex
	system   string
	bills    map[string]*bill
	over     map[string]*summary // list overrides by id
	settled  map[string]bool     // bills settled by receipts (Config.Settle)
	sorted   []*summary          // cache of the no-parameter list; nil when stale
	latency  time.Duration
	clock    time.Duration // added to the Date of every /api/v2 answer
	fault    Fault
	faultOn  bool          // the fault is in its "on" phase (always, unless flapping)
	release  chan struct{} // closed when a hang ends
	stopFlap chan struct{} // closed to stop the flapping goroutine
	receipts []*Receipt
	changed  chan struct{} // closed and replaced whenever receipts change
	counters map[string]int64
	calls    []*Call // every /api/v2 call that arrived, the last maxCalls
	closed   bool

	maxConc    int   // Config.MaxConcurrent, changed by SetMaxConcurrent
	inProgress int   // /api/v2 calls being served (refused ones not counted)
	open       int   // /api/v2 calls being handled, refused ones in their latency included
	peak       int   // the most calls open at once
	refused    int64 // calls answered 429 for maxConc

	apiAddr string // bound address, kept so a refused listener reopens on the same port
	apiSrv  *http.Server
	ctlSrv  *http.Server
	ctlAddr string
	wg      sync.WaitGroup
}

type bill struct {
	raw []byte
	sum *summary // nil when the bytes are not a bill we can list
}

// Open checks cfg, binds the API (and control) listeners and serves them
// until Close. A taken port is an error here.
func Open(cfg Config) (*Server, error) {
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		loc:      cfg.Timezone,
		latency:  cfg.Latency,
		fault:    Fault{Mode: FaultNone},
		release:  make(chan struct{}),
		changed:  make(chan struct{}),
		counters: map[string]int64{},
		apiAddr:  cfg.Listen,
		maxConc:  cfg.MaxConcurrent,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("part", "crmsim")
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.apiAddr == "" {
		s.apiAddr = "127.0.0.1:0"
	}
	if cfg.Latency < 0 {
		return nil, fmt.Errorf("crmsim: latency %v is negative", cfg.Latency)
	}
	if cfg.MaxConcurrent < 0 {
		return nil, fmt.Errorf("crmsim: max concurrent %d is negative", cfg.MaxConcurrent)
	}
	d := cfg.Data
	if d == nil {
		d = DefaultData()
	}
	if err := s.SetData(d); err != nil {
		return nil, err
	}
	s.mu.Lock()
	addr, err := s.startAPI()
	s.apiAddr = addr // fixed from now on: a refused listener reopens on this port
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if cfg.Control != "" {
		ln, err := net.Listen("tcp", cfg.Control)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("crmsim: control listener: %w", err)
		}
		s.ctlAddr = ln.Addr().String()
		s.ctlSrv = &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.ctlSrv.Serve(ln)
		}()
	}
	s.log.Info("listening", "api", s.apiAddr, "control", s.ctlAddr)
	return s, nil
}

// Close stops both listeners, ends hanging calls and waits for the serving
// goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.stopFlap != nil {
		close(s.stopFlap)
		s.stopFlap = nil
	}
	close(s.release)
	s.release = make(chan struct{})
	s.stopAPI()
	ctl := s.ctlSrv
	s.mu.Unlock()
	if ctl != nil {
		ctl.Close()
	}
	s.wg.Wait()
	return nil
}

// URL is the upstream base URL to give the daemon, e.g.
// "http://127.0.0.1:8481"; the calls live under URL()+"/api/v2/".
func (s *Server) URL() string { return "http://" + s.apiAddr }

// Addr is the bound API address (host:port).
func (s *Server) Addr() string { return s.apiAddr }

// ControlURL is the base URL of the control listener, "" when there is none.
func (s *Server) ControlURL() string {
	if s.ctlAddr == "" {
		return ""
	}
	return "http://" + s.ctlAddr
}

// startAPI binds the API listener on apiAddr, serves it and returns the
// bound address. s.mu is held.
func (s *Server) startAPI() (string, error) {
	ln, err := net.Listen("tcp", s.apiAddr)
	if err != nil {
		return "", fmt.Errorf("crmsim: api listener: %w", err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(s.serveAPI),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.apiSrv = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln)
	}()
	return ln.Addr().String(), nil
}

// stopAPI closes the API listener and every connection on it. s.mu is held.
func (s *Server) stopAPI() {
	if s.apiSrv != nil {
		s.apiSrv.Close()
		s.apiSrv = nil
	}
}

// SetData replaces the system string, all bills and list overrides.
func (s *Server) SetData(d *Data) error {
	bills := map[string]*bill{}
	for i, raw := range d.Bills {
		sum, err := parseSummary(raw, true)
		if err != nil {
			return fmt.Errorf("crmsim: bills[%d]%w", i, err)
		}
		bills[sum.id] = &bill{raw: bytes.Clone(raw), sum: sum}
	}
	over := map[string]*summary{}
	for i, raw := range d.List {
		sum, err := parseSummary(raw, false)
		if err != nil {
			return fmt.Errorf("crmsim: list[%d]%w", i, err)
		}
		over[sum.id] = sum
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.system, s.bills, s.over, s.sorted, s.settled = d.System, bills, over, nil, map[string]bool{}
	return nil
}

// SetSystem sets the system string hello answers with.
func (s *Server) SetSystem(system string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.system = system
}

// SetLatency sets the base latency added to every /api/v2 call.
func (s *Server) SetLatency(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("crmsim: latency %v is negative", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
	return nil
}

// SetClockOffset sets the simulator's clock against the machine's: every
// /api/v2 answer carries Date = the call's arrival plus d (negative: the
// upstream is behind), as an upstream would whose clock differs from the
// PC's by -d; 0 leaves Date to net/http.
func (s *Server) SetClockOffset(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = d
}

// SetMaxConcurrent sets how many /api/v2 calls are served at once (see
// Config.MaxConcurrent); 0 means no limit.
func (s *Server) SetMaxConcurrent(n int) error {
	if n < 0 {
		return fmt.Errorf("crmsim: max concurrent %d is negative", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxConc = n
	return nil
}

// Concurrency reports the most /api/v2 calls that were open at once (calls
// refused for Config.MaxConcurrent count while they wait out the base
// latency) and how many calls were refused for it, since start or
// ResetCounters.
func (s *Server) Concurrency() (peak int, refused int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.refused
}

// PutBill adds or replaces a bill, keyed by its own id. raw must be a JSON
// object with an id and a date; it is served byte for byte and listed with a
// summary derived from it (replacing any list override for that id).
func (s *Server) PutBill(raw []byte) error {
	sum, err := parseSummary(raw, true)
	if err != nil {
		return fmt.Errorf("crmsim: bill%w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bills[sum.id] = &bill{raw: bytes.Clone(raw), sum: sum}
	delete(s.over, sum.id)
	s.sorted = nil
	return nil
}

// PutBillAs stores any bytes (even invalid JSON, or a bill without an id)
// as the answer of bill/byid/id, to test how clients treat bad bills. When
// raw is a listable bill its derived summary is listed; otherwise a summary
// the id already had (from an earlier bill or the list) stays.
func (s *Server) PutBillAs(id string, raw []byte) error {
	if id == "" || strings.ContainsAny(id, "/?#") {
		return fmt.Errorf("crmsim: bill id %q is empty or contains /?#", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &bill{raw: bytes.Clone(raw)}
	if sum, err := parseSummary(raw, true); err == nil && sum.id == id {
		b.sum = sum
		delete(s.over, id)
	} else if old := s.bills[id]; old != nil && old.sum != nil {
		b.sum = old.sum
	}
	s.bills[id] = b
	s.sorted = nil
	return nil
}

// PutListEntry gives a bill its own list entry: raw, a JSON object with an
// id and a date, is served byte for byte in every list answer (no
// parameter, date=, number=) in place of the summary derived from the bill,
// as the cloud builds its list apart from its bills. The id need not have a
// bill (bill/byid then answers 404). The entry stays until PutBill,
// PutBillAs with a listable bill, DeleteListEntry or DeleteBill for the id.
func (s *Server) PutListEntry(raw []byte) error {
	sum, err := parseSummary(raw, false)
	if err != nil {
		return fmt.Errorf("crmsim: list entry%w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.over[sum.id] = sum
	s.sorted = nil
	return nil
}

// DeleteListEntry drops the list entry PutListEntry (or a data file's list)
// gave id, so its bill is listed with the derived summary again; it reports
// whether there was one.
func (s *Server) DeleteListEntry(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.over[id]
	delete(s.over, id)
	s.sorted = nil
	return ok
}

// DeleteBill drops a bill and its list summary; it reports whether there
// was one.
func (s *Server) DeleteBill(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b := s.bills[id]
	_, o := s.over[id]
	delete(s.bills, id)
	delete(s.over, id)
	delete(s.settled, id)
	s.sorted = nil
	return b || o
}

// Bills reports how many bills are stored.
func (s *Server) Bills() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bills)
}

// Counters returns the number of /api/v2 calls that arrived, by kind
// (KindHello, ...), including faulted, refused-by-token and duplicate calls.
// Connections refused by the "refuse" fault never arrive and are not counted.
func (s *Server) Counters() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int64, len(s.counters))
	for k, v := range s.counters {
		m[k] = v
	}
	return m
}

// Call is one /api/v2 call as it arrived, for tests that ask when the
// client called, not only how often.
type Call struct {
	Time   time.Time `json:"time"` // arrival, before any latency or fault
	Kind   string    `json:"kind"` // KindHello, ...
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"`
	Fault  string    `json:"fault,omitempty"` // the fault mode applied (or FaultMaxConcurrent), "" for a normal answer
}

// maxCalls bounds the calls Calls keeps: past it the oldest half goes.
const maxCalls = 1 << 16

// Calls returns the /api/v2 calls that arrived (at most the last 65,536),
// oldest first, as Counters counts them.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = *c
	}
	return out
}

// ResetCounters sets all counters to zero, forgets the calls, and resets
// the peak concurrency and refusals of Concurrency.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters = map[string]int64{}
	s.calls = nil
	s.peak, s.refused = s.open, 0
}

// list returns the summaries matching the query, newest first. s.mu is held.
func (s *Server) list(date, number string) []*summary {
	if s.sorted == nil {
		all := make([]*summary, 0, len(s.bills)+len(s.over))
		for id, b := range s.bills {
			if _, ok := s.over[id]; !ok && b.sum != nil {
				all = append(all, b.sum)
			}
		}
		for _, o := range s.over {
			all = append(all, o)
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].date != all[j].date {
				return all[i].date > all[j].date
			}
			return idLess(all[j].id, all[i].id)
		})
		s.sorted = all
	}
	if date == "" && number == "" && len(s.settled) == 0 {
		return s.sorted
	}
	var out []*summary
	for _, sum := range s.sorted {
		if date != "" && !strings.HasPrefix(sum.date, date+" ") {
			continue
		}
		if number != "" && sum.number != number {
			continue
		}
		if number == "" && s.settled[sum.id] {
			continue
		}
		out = append(out, sum)
	}
	return out
}

// idLess orders integer ids numerically (any length) and others as text.
func idLess(a, b string) bool {
	if intRe.MatchString(a) && intRe.MatchString(b) && a[0] != '-' && b[0] != '-' {
		if len(a) != len(b) {
			return len(a) < len(b)
		}
	}
	return a < b
}

// answer is a complete normal response, computed before any fault bends it.
type answer struct {
	status int
	body   []byte
}

// errorBody is Evotor's documented error body.
func errorBody(code int, reason, subject string) []byte {
	type item struct {
		Code    int    `json:"code"`
		Reason  string `json:"reason"`
		Subject string `json:"subject"`
	}
	b, _ := json.Marshal(struct {
		Errors []item `json:"errors"`
	}{[]item{{code, reason, subject}}})
	return b
}

func errAnswer(status, code int, reason, subject string) answer {
	return answer{status, errorBody(code, reason, subject)}
}

// kindOf classifies an /api/v2 path.
func kindOf(path string) string {
	switch {
	case path == "/api/v2/hello":
		return KindHello
	case path == "/api/v2/list":
		return KindList
	case strings.HasPrefix(path, "/api/v2/bill/byid/"):
		return KindBill
	case path == "/api/v2/receipts":
		return KindReceipts
	}
	return KindOther
}

// route computes the normal answer of a call, token check included.
func (s *Server) route(r *http.Request, kind string) answer {
	if s.cfg.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.cfg.Token {
		return errAnswer(http.StatusUnauthorized, CodeUnauthorized, "missing or wrong bearer token", "Authorization")
	}
	wantMethod := http.MethodGet
	if kind == KindReceipts {
		wantMethod = http.MethodPost
	}
	if kind != KindOther && r.Method != wantMethod {
		return errAnswer(http.StatusMethodNotAllowed, CodeMethod, "method "+r.Method+" not allowed, use "+wantMethod, r.URL.Path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case KindHello:
		var buf bytes.Buffer
		buf.WriteString(`{"system": `)
		buf.Write(jsonString(s.system))
		buf.WriteString(`, "protocol": "0.1.0"}`)
		return answer{http.StatusOK, buf.Bytes()}
	case KindList:
		q := r.URL.Query()
		date := q.Get("date")
		if date == "today" {
			date = time.Now().In(s.loc).Format(time.DateOnly)
		} else if date != "" {
			if _, err := time.Parse(time.DateOnly, date); err != nil {
				return errAnswer(http.StatusBadRequest, CodeSyntax, "date must be today or YYYY-MM-DD", "date")
			}
		}
		var buf bytes.Buffer
		buf.WriteByte('[')
		for i, sum := range s.list(date, q.Get("number")) {
			if i > 0 {
				buf.WriteString(", ")
			}
			buf.Write(sum.raw)
		}
		buf.WriteByte(']')
		return answer{http.StatusOK, buf.Bytes()}
	case KindBill:
		id := strings.TrimPrefix(r.URL.Path, "/api/v2/bill/byid/")
		b, ok := s.bills[id]
		if !ok || id == "" {
			return errAnswer(http.StatusNotFound, CodeNotFound, "bill not found", "id")
		}
		return answer{http.StatusOK, b.raw}
	case KindReceipts:
		return answer{http.StatusOK, nil}
	}
	return errAnswer(http.StatusNotFound, CodeNotFound, "no such route", r.URL.Path)
}

// serveAPI serves one /api/v2 call: count, the concurrency limit, record a
// receipt, base latency, the active fault, then the normal answer.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	kind := kindOf(r.URL.Path)
	call := &Call{Time: time.Now(), Kind: kind, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	s.mu.Lock()
	s.counters[kind]++
	if len(s.calls) >= maxCalls {
		s.calls = append(s.calls[:0], s.calls[len(s.calls)-maxCalls/2:]...)
	}
	s.calls = append(s.calls, call)
	latency := s.latency
	if s.clock != 0 {
		w.Header().Set("Date", time.Now().Add(s.clock).UTC().Format(http.TimeFormat))
	}
	s.open++
	s.peak = max(s.peak, s.open)
	over := s.maxConc > 0 && s.inProgress >= s.maxConc
	if over {
		s.refused++
	} else {
		s.inProgress++
	}
	s.mu.Unlock()
	// The slot frees before net/http flushes the answer, so a client that
	// sends its next call on seeing an answer finds it free.
	defer func() {
		s.mu.Lock()
		s.open--
		if !over {
			s.inProgress--
		}
		s.mu.Unlock()
	}()

	var rec *Receipt
	if kind == KindReceipts && r.Method == http.MethodPost {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxReceiptBody+1))
		if err != nil {
			return // the client went away mid-body
		}
		rec = s.record(r, body)
		if len(body) > MaxReceiptBody {
			s.finish(rec, http.StatusRequestEntityTooLarge, "", false)
			writeAnswer(w, errAnswer(http.StatusRequestEntityTooLarge, CodeTooLarge, "receipt body over 16 MiB", "body"))
			return
		}
	}
	if !sleep(ctx, latency) {
		return
	}
	if over {
		s.mu.Lock()
		call.Fault = FaultMaxConcurrent
		s.mu.Unlock()
		s.finish(rec, http.StatusTooManyRequests, FaultMaxConcurrent, false)
		writeAnswer(w, errAnswer(http.StatusTooManyRequests, CodeRateLimited, "too many calls at once", r.URL.Path))
		return
	}

	f, on, release := s.activeFault(kind)
	applied := ""
	for on && f.Mode == FaultHang {
		applied = FaultHang
		s.finish(rec, 0, FaultHang, false)
		select {
		case <-ctx.Done():
			return
		case <-release:
		}
		f, on, release = s.activeFault(kind)
	}
	if !on {
		f = Fault{Mode: FaultNone}
	} else {
		applied = f.Mode
	}
	if applied != "" {
		s.mu.Lock()
		call.Fault = applied
		s.mu.Unlock()
	}

	a := s.route(r, kind)
	switch f.Mode {
	case FaultSlow:
		if !sleep(ctx, f.slowLatency()) {
			s.finish(rec, 0, applied, false)
			return
		}
	case FaultRefuse:
		s.finish(rec, 0, applied, false)
		resetConn(w)
		return
	case Fault500:
		a = errAnswer(http.StatusInternalServerError, CodeInternal, "simulated internal error", r.URL.Path)
	case Fault429:
		w.Header().Set("Retry-After", f.retryAfter())
		a = errAnswer(http.StatusTooManyRequests, CodeRateLimited, "simulated rate limit", r.URL.Path)
	case Fault503:
		if ra := f.retryAfter(); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		a = errAnswer(http.StatusServiceUnavailable, CodeUnavailable, "simulated unavailability", r.URL.Path)
	case Fault400:
		a = errAnswer(http.StatusBadRequest, CodeSyntax, "simulated bad request", r.URL.Path)
	case FaultMalformed:
		a = answer{http.StatusOK, malformed(a.body)}
	case FaultCut:
		s.finish(rec, a.status, applied, false)
		cut(w, a)
		return
	case FaultHuge:
		s.finish(rec, http.StatusOK, applied, false)
		huge(w, kind)
		return
	}
	delivered := a.status == http.StatusOK && f.Mode != FaultMalformed
	s.finish(rec, a.status, applied, delivered)
	if delivered && rec != nil && s.cfg.Settle {
		s.settle(rec.Body)
	}
	writeAnswer(w, a)
}

// settle applies a delivered receipt to the bill it names (Config.Settle).
func (s *Server) settle(body []byte) {
	var ev struct {
		Data struct {
			Type   string `json:"type"`
			Extras struct {
				BillID           string `json:"billId"`
				SettlementMethod string `json:"settlementMethod"`
			} `json:"extras"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &ev) != nil || ev.Data.Extras.BillID == "" {
		return
	}
	id, method := ev.Data.Extras.BillID, ev.Data.Extras.SettlementMethod
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.bills[id]; !ok {
		return
	}
	switch {
	case ev.Data.Type == "SELL" && (method == "" || method == "FullSettlement"):
		s.settled[id] = true
	case ev.Data.Type == "PAYBACK":
		delete(s.settled, id)
	}
}

// Settled reports whether a receipt settled the bill (Config.Settle).
func (s *Server) Settled(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settled[id]
}

func writeAnswer(w http.ResponseWriter, a answer) {
	if len(a.body) > 0 {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// resetConn drops the connection with a TCP reset and no answer.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// cut sends the status line and headers with the full Content-Length, then
// only part of the body, and closes the connection.
func cut(w http.ResponseWriter, a answer) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	declared := len(a.body)
	if declared < 64 {
		declared = 64
	}
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		a.status, http.StatusText(a.status), declared)
	_, _ = buf.Write(a.body[:len(a.body)/2])
	_ = buf.Flush()
}

// malformed turns an answer into invalid JSON: the first half of it and a
// stray brace, or a fixed broken object when there is nothing to cut.
func malformed(body []byte) []byte {
	if len(body) < 4 {
		return []byte(`{"id": 1, "date": "2026-`)
	}
	out := bytes.Clone(body[:len(body)/2])
	return append(out, "}{,"...)
}

// HugeSize is the size of a "huge" answer: 50 MiB.
const HugeSize = 50 << 20

// huge streams a valid JSON answer of at least HugeSize bytes (chunked, no
// Content-Length): a list of summaries for list, an object with a long
// padding array for everything else.
func huge(w http.ResponseWriter, kind string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	open, elem, end := `{"padding": [`, `"`+strings.Repeat("x", 1000)+`"`, `]}`
	if kind == KindList {
		open, end = `[`, `]`
		elem = `{"id": 999999, "date": "2026-01-01 00:00:00", "summ": 1, "number": "HUGE", "customername": "` + strings.Repeat("x", 900) + `"}`
	}
	chunk := []byte(strings.Repeat(elem+", ", 64))
	rc := http.NewResponseController(w)
	n, _ := io.WriteString(w, open)
	for n < HugeSize {
		m, err := w.Write(chunk)
		if err != nil {
			return
		}
		n += m
	}
	_, _ = io.WriteString(w, elem+end)
	_ = rc.Flush()
}

// errClosed is returned by control operations on a closed server.
var errClosed = errors.New("crmsim: server closed")
