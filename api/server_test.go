package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/storage"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testServer is a real HTTP server on 127.0.0.1 over a real store.
type testServer struct {
	*httptest.Server
	store   *storage.Store
	journal *journaltest.Journal
	handler *api.Server
}

// testHosts are the Host names the tests' requests carry besides
// loopback's: httptest.NewRequest's example.com and the shop PC the
// console tests pretend to be.
var testHosts = []string{"example.com", "shop-pc"}

// lastEntry is the newest entry of the server's journal.
func (ts *testServer) lastEntry(t *testing.T) shopbridge.JournalEntry {
	t.Helper()
	e, ok := ts.journal.Last()
	if !ok {
		t.Fatal("nothing in the journal")
	}
	return e
}

func newServer(t *testing.T, cfg api.Config) *testServer {
	t.Helper()
	ts := &testServer{store: cfg.Store, journal: &journaltest.Journal{}}
	if ts.store == nil {
		ts.store = storetest.MustOpen(t)
	}
	cfg.Store = ts.store
	if cfg.Journal == nil {
		cfg.Journal = ts.journal
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if cfg.Hosts == nil {
		cfg.Hosts = testHosts
	}
	ts.handler = api.New(cfg)
	ts.Server = httptest.NewServer(ts.handler)
	t.Cleanup(ts.Close)
	return ts
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (ts *testServer) do(t *testing.T, method, path string, body io.Reader, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (ts *testServer) get(t *testing.T, path string, header ...string) answer {
	t.Helper()
	return ts.do(t, http.MethodGet, path, nil, header...)
}

func (ts *testServer) post(t *testing.T, path, body string, header ...string) answer {
	t.Helper()
	return ts.do(t, http.MethodPost, path, strings.NewReader(body), header...)
}

type evotorError struct {
	Errors []struct {
		Code    int    `json:"code"`
		Reason  string `json:"reason"`
		Subject string `json:"subject"`
	} `json:"errors"`
}

// wantError checks status and Evotor error body; subject "*" is any.
func wantError(t *testing.T, what string, a answer, status, code int, subject string) {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: status %d, want %d (body %s)", what, a.status, status, a.body)
		return
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want JSON", what, ct)
	}
	var e evotorError
	if err := json.Unmarshal(a.body, &e); err != nil || len(e.Errors) != 1 {
		t.Errorf("%s: body %s is not the Evotor error body (%v)", what, a.body, err)
		return
	}
	got := e.Errors[0]
	if got.Code != code || (subject != "*" && got.Subject != subject) || got.Reason == "" {
		t.Errorf("%s: error %+v, want code %d subject %q and a reason", what, got, code, subject)
	}
}

// Bills of the fixture, as the upstream lists them (newest first).
var fixtureSummaries = []string{
	`{"id": 123456789012345678901, "date": "2026-03-23 01:15:00", "summ": 4604.04, "number": "49040-CRM", "customername": "\u0418\u043b\u044c\u044f \"Papa\" 🙂"}`,
	`{"id": 49024, "date": "2026-03-22 15:42:37", "summ": 3216.02, "number": "50259", "customername": "Максим Рудой"}`,
	`{"id": 49020, "date": "2026-03-22 14:31:52", "summ": 3394.86, "number": "50255", "customername": "Дмитрий Кузьмин"}`,
	`{"id": 48934, "date": "2026-03-20 21:33:51", "summ": 30130, "number": "48934-CRM", "customername": "Даниил"}`,
}

var syncTime = time.Date(2026, 3, 22, 22, 30, 0, 0, time.UTC)

func seed(t *testing.T, s *storage.Store) {
	t.Helper()
	var sums []shopbridge.BillSummary
	for _, raw := range fixtureSummaries {
		sum, err := shopbridge.ParseSummary([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
	}
	if _, err := s.ApplyList(sums, storage.ListAll, syncTime); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutBill(mustRead(t, "testdata/bill.json"), syncTime); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func listOf(idx ...int) string {
	var parts []string
	for _, i := range idx {
		parts = append(parts, fixtureSummaries[i])
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestHello(t *testing.T) {
	ts := newServer(t, api.Config{})
	a := ts.get(t, "/api/v2/hello")
	if a.status != 200 || string(a.body) != `{"system":"","protocol":"0.1.0"}` {
		t.Errorf("hello before any upstream hello = %d %s", a.status, a.body)
	}
	if err := ts.store.SetSystem("CRM, Evotor \"1С\""); err != nil {
		t.Fatal(err)
	}
	a = ts.get(t, "/api/v2/hello")
	var v struct{ System, Protocol string }
	if err := json.Unmarshal(a.body, &v); err != nil || v.System != `CRM, Evotor "1С"` || v.Protocol != "0.1.0" {
		t.Errorf("hello = %s (%v)", a.body, err)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("hello Content-Type %q", ct)
	}
}

func TestList(t *testing.T) {
	// 22:30 UTC on the 22nd is 01:30 on the 23rd in the shop (UTC+3).
	now := time.Date(2026, 3, 22, 22, 30, 0, 0, time.UTC)
	ts := newServer(t, api.Config{Timezone: time.FixedZone("MSK", 3*3600), Now: func() time.Time { return now }})

	a := ts.get(t, "/api/v2/list")
	if a.status != 200 || string(a.body) != "[]" {
		t.Errorf("list of an empty store = %d %s, want []", a.status, a.body)
	}
	if h := a.header.Get("X-Shopbridge-Synced-At"); h != "" {
		t.Errorf("X-Shopbridge-Synced-At %q before any sync", h)
	}
	seed(t, ts.store)

	tests := []struct {
		name, query, want string
	}{
		{"none", "", listOf(0, 1, 2, 3)},
		{"date=today in the shop's zone", "?date=today", listOf(0)},
		{"date", "?date=2026-03-22", listOf(1, 2)},
		{"date with no bills", "?date=2026-03-21", "[]"},
		{"number", "?number=50259", listOf(1)},
		{"number, escaped", "?number=49040%2DCRM", listOf(0)},
		{"unknown number", "?number=nope", "[]"},
		{"number and its date", "?number=50259&date=2026-03-22", listOf(1)},
		{"number and another date", "?number=50259&date=today", "[]"},
		{"unknown parameters ignored", "?foo=bar&page=2&date=2026-03-22&x", listOf(1, 2)},
		{"empty date", "?date=", listOf(0, 1, 2, 3)},
		{"empty number", "?number=", listOf(0, 1, 2, 3)},
	}
	for _, tt := range tests {
		a := ts.get(t, "/api/v2/list"+tt.query)
		if a.status != 200 || string(a.body) != tt.want {
			t.Errorf("%s: list%s = %d\n%s\nwant\n%s", tt.name, tt.query, a.status, a.body, tt.want)
		}
		if !json.Valid(a.body) {
			t.Errorf("%s: answer is not JSON", tt.name)
		}
		if h := a.header.Get("X-Shopbridge-Synced-At"); h != "2026-03-22T22:30:00Z" {
			t.Errorf("%s: X-Shopbridge-Synced-At = %q", tt.name, h)
		}
	}

	bad := []struct {
		name, query string
		code        int
		subject     string
	}{
		{"not a date", "?date=yesterday", api.CodeInvalidValue, "date"},
		{"no such day", "?date=2026-02-30", api.CodeInvalidValue, "date"},
		{"short date", "?date=2026-3-22", api.CodeInvalidValue, "date"},
		{"date with time", "?date=2026-03-22T10:00:00", api.CodeInvalidValue, "date"},
		{"bad escape", "?date=%zz", api.CodeSyntax, "date"},
	}
	for _, tt := range bad {
		wantError(t, tt.name, ts.get(t, "/api/v2/list"+tt.query), 400, tt.code, tt.subject)
	}

	// Settled here: off the list, still found by number.
	a = ts.post(t, "/api/v2/receipts", receiptBody("ev-settle", "SELL", "49024", "FullSettlement"))
	if a.status != 200 {
		t.Fatalf("receipt: %d %s", a.status, a.body)
	}
	if a := ts.get(t, "/api/v2/list"); string(a.body) != listOf(0, 2, 3) {
		t.Errorf("list after settling 49024 = %s", a.body)
	}
	if a := ts.get(t, "/api/v2/list?number=50259"); string(a.body) != listOf(1) {
		t.Errorf("number of a settled bill = %s", a.body)
	}
}

func TestBillByID(t *testing.T) {
	ts := newServer(t, api.Config{})
	bill := mustRead(t, "testdata/bill.json")
	if _, _, err := ts.store.PutBill(bill, syncTime); err != nil {
		t.Fatal(err)
	}
	a := ts.get(t, "/api/v2/bill/byid/123456789012345678901")
	if a.status != 200 || !bytes.Equal(a.body, bytes.TrimSpace(bill)) {
		t.Errorf("bill = %d\n%s", a.status, a.body)
	}
	if a.header.Get("Content-Length") != fmt.Sprint(len(a.body)) {
		t.Errorf("Content-Length %q for %d bytes", a.header.Get("Content-Length"), len(a.body))
	}
	if h := a.header.Get("X-Shopbridge-Synced-At"); h != "" {
		t.Errorf("X-Shopbridge-Synced-At %q before any full list", h)
	}
	if _, err := ts.store.ApplyList(nil, storage.ListAll, syncTime); err != nil {
		t.Fatal(err)
	}
	if h := ts.get(t, "/api/v2/bill/byid/123456789012345678901").header.Get("X-Shopbridge-Synced-At"); h != "2026-03-22T22:30:00Z" {
		t.Errorf("X-Shopbridge-Synced-At = %q after a full list", h)
	}
	for _, id := range []string{"1", "999999999999999999999999"} {
		wantError(t, "unknown bill "+id, ts.get(t, "/api/v2/bill/byid/"+id), 404, api.CodeNotFound, "id")
	}
	for _, id := range []string{"abc", "-1", "1.5", "007", "%20", strings.Repeat("9", 41)} {
		wantError(t, "bad id "+id, ts.get(t, "/api/v2/bill/byid/"+id), 404, api.CodeNotFound, "id")
	}
}

// readThrough is an upstream that knows some bills; it stores what it
// serves, as sync's read-through does.
type readThrough struct {
	store  *storage.Store
	bills  map[string][]byte
	panics bool
	calls  int
	mu     sync.Mutex
}

func (rt *readThrough) BillByID(ctx context.Context, id string) (*shopbridge.Bill, error) {
	rt.mu.Lock()
	rt.calls++
	rt.mu.Unlock()
	if rt.panics {
		panic("read-through exploded")
	}
	body, ok := rt.bills[id]
	if !ok {
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "upstream does not know bill %s", id)
	}
	b, _, err := rt.store.PutBill(body, time.Now())
	return b, err
}

func (rt *readThrough) ListByNumber(ctx context.Context, number string) ([]shopbridge.BillSummary, error) {
	var out []shopbridge.BillSummary
	for _, body := range rt.bills {
		b, _, err := rt.store.PutBill(body, time.Now())
		if err != nil {
			return nil, err
		}
		if b.Summary.Number == number {
			out = append(out, b.Summary)
		}
	}
	return out, nil
}

func TestReadThrough(t *testing.T) {
	s := storetest.MustOpen(t)
	rt := &readThrough{store: s, bills: map[string][]byte{"777": []byte(`{"id": 777, "date": "2026-03-22 10:00:00", "summ": 10.10, "number": "R-777", "customer": {"name": "Ира "}}`)}}
	ts := newServer(t, api.Config{Store: s, ReadThrough: rt})
	a := ts.get(t, "/api/v2/bill/byid/777")
	if a.status != 200 || string(a.body) != string(rt.bills["777"]) {
		t.Errorf("read-through bill = %d %s", a.status, a.body)
	}
	if e := ts.lastEntry(t); e.Source != "upstream" {
		t.Errorf("journal source %q, want upstream", e.Source)
	}
	wantError(t, "unknown upstream bill", ts.get(t, "/api/v2/bill/byid/778"), 404, api.CodeNotFound, "id")
	a = ts.get(t, "/api/v2/list?number=R-777")
	want := `[{"id":777,"date":"2026-03-22 10:00:00","summ":10.10,"number":"R-777","customername":"Ира"}]`
	if a.status != 200 || string(a.body) != want {
		t.Errorf("read-through number = %d %s", a.status, a.body)
	}
	calls := rt.calls
	// Now stored: answered locally.
	if a := ts.get(t, "/api/v2/bill/byid/777"); a.status != 200 || rt.calls != calls {
		t.Errorf("stored bill: %d, %d upstream calls", a.status, rt.calls-calls)
	}
	if a := ts.get(t, "/api/v2/list?number=R-778"); a.status != 200 || string(a.body) != "[]" {
		t.Errorf("unknown number = %d %s", a.status, a.body)
	}
}

func TestPanicIsAnswered(t *testing.T) {
	s := storetest.MustOpen(t)
	ts := newServer(t, api.Config{Store: s, ReadThrough: &readThrough{store: s, panics: true}})
	a := ts.get(t, "/api/v2/bill/byid/5")
	wantError(t, "panic", a, 500, api.CodeInternal, "*")
	if strings.Contains(string(a.body), "exploded") {
		t.Errorf("a panic's text reached the terminal: %s", a.body)
	}
	if a := ts.get(t, "/api/v2/hello"); a.status != 200 {
		t.Errorf("server after a panic: %d", a.status)
	}
}

func TestRoutes(t *testing.T) {
	ts := newServer(t, api.Config{})
	tests := []struct {
		name, method, path string
		status, code       int
		subject            string
	}{
		{"unknown route", "GET", "/api/v2/nope", 404, api.CodeNotFound, "/api/v2/nope"},
		{"other version", "GET", "/api/v3/list", 404, api.CodeNotFound, "/api/v3/list"},
		{"root", "GET", "/", 404, api.CodeNotFound, "/"},
		{"trailing slash", "GET", "/api/v2/list/", 404, api.CodeNotFound, "*"},
		{"bill without id", "GET", "/api/v2/bill/byid/", 404, api.CodeNotFound, "*"},
		{"delete list", "DELETE", "/api/v2/list", 405, api.CodeMethod, "/api/v2/list"},
		{"post hello", "POST", "/api/v2/hello", 405, api.CodeMethod, "/api/v2/hello"},
		{"get receipts", "GET", "/api/v2/receipts", 405, api.CodeMethod, "/api/v2/receipts"},
		{"put bill", "PUT", "/api/v2/bill/byid/1", 405, api.CodeMethod, "/api/v2/bill/byid/1"},
	}
	for _, tt := range tests {
		a := ts.do(t, tt.method, tt.path, nil)
		wantError(t, tt.name, a, tt.status, tt.code, tt.subject)
		if tt.status == 405 && a.header.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", tt.name)
		}
	}
}

func TestTerminalToken(t *testing.T) {
	ts := newServer(t, api.Config{TerminalToken: "s3cret"})
	seed(t, ts.store)
	for _, path := range []string{"/api/v2/list", "/api/v2/bill/byid/49024"} {
		wantError(t, path+" without token", ts.get(t, path), 401, api.CodeUnauthorized, "Authorization")
		wantError(t, path+" wrong token", ts.get(t, path, "Authorization", "Bearer s3cre"), 401, api.CodeUnauthorized, "Authorization")
		wantError(t, path+" basic auth", ts.get(t, path, "Authorization", "Basic czNjcmV0"), 401, api.CodeUnauthorized, "Authorization")
		if a := ts.get(t, path, "Authorization", "Bearer s3cret"); a.status == 401 {
			t.Errorf("%s with the token: 401", path)
		}
	}
	if a := ts.get(t, "/api/v2/list", "Authorization", "bearer s3cret"); a.status != 200 {
		t.Errorf("lower-case bearer: %d", a.status)
	}
	wantError(t, "receipt without token", ts.post(t, "/api/v2/receipts", receiptBody("ev-1", "SELL", "", "")), 401, api.CodeUnauthorized, "Authorization")
	if _, err := ts.store.Receipt("ev-1"); err == nil {
		t.Error("a receipt without the token was stored")
	}
	if a := ts.post(t, "/api/v2/receipts", receiptBody("ev-1", "SELL", "", ""), "Authorization", "Bearer s3cret"); a.status != 200 {
		t.Errorf("receipt with the token: %d %s", a.status, a.body)
	}
	if a := ts.get(t, "/api/v2/hello"); a.status != 200 {
		t.Errorf("hello without the token: %d, want 200", a.status)
	}
}

func TestAllowList(t *testing.T) {
	// The README's example: an allow list naming the shop's LAN only. The
	// test client on loopback still gets through (the operator commands
	// depend on it); other addresses are judged by the list.
	allow := []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	ts := newServer(t, api.Config{Allow: allow})
	for _, path := range []string{"/api/v2/hello", "/api/v2/list", "/healthz", "/metrics", "/admin/api/status"} {
		if a := ts.get(t, path); a.status != 200 {
			t.Errorf("%s from loopback with --allow 192.168.1.0/24: %d %s, want 200", path, a.status, a.body)
		}
	}
	lan := api.New(api.Config{Hosts: testHosts, Store: storetest.MustOpen(t), Logger: quietLogger(), Allow: allow})
	for addr, want := range map[string]int{
		"192.168.1.20:1": 200, "127.0.0.1:1": 200, "127.3.4.5:1": 200, "[::1]:1": 200, "[::ffff:127.0.0.1]:1": 200,
		"192.168.2.20:1": 403, "10.1.2.3:1": 403, "203.0.113.5:1": 403, "garbage": 403,
	} {
		for _, path := range []string{"/api/v2/hello", "/nope"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", path, nil)
			req.RemoteAddr = addr
			lan.ServeHTTP(rec, req)
			code := want
			if path == "/nope" && want == 200 {
				code = 404 // let through, then routed
			}
			if rec.Code != code {
				t.Errorf("%s from %s with --allow 192.168.1.0/24: %d, want %d", path, addr, rec.Code, code)
			}
			if want == 403 && !strings.Contains(rec.Body.String(), "not allowed") {
				t.Errorf("403 from %s without the reason: %s", addr, rec.Body)
			}
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v2/receipts", strings.NewReader(receiptBody("ev-1", "SELL", "", "")))
	req.RemoteAddr = "10.1.2.3:1"
	lan.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("receipt from 10.1.2.3 with --allow 192.168.1.0/24: %d, want 403", rec.Code)
	}

	// Default: private ranges yes, public no (the handler, called with
	// crafted client addresses).
	h := api.New(api.Config{Hosts: testHosts, Store: storetest.MustOpen(t), Logger: quietLogger()})
	for addr, want := range map[string]int{
		"192.168.1.20:50000": 200, "10.1.2.3:1": 200, "172.31.0.1:1": 200, "169.254.3.3:1": 200,
		"[fe80::1]:1": 200, "[fd00::5]:1": 200, "[::ffff:192.168.1.20]:1": 200, "127.0.0.1:1": 200,
		"203.0.113.5:1": 403, "172.32.0.1:1": 403, "[2001:db8::1]:1": 403, "garbage": 403,
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/v2/hello", nil)
		req.RemoteAddr = addr
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("hello from %s: %d, want %d", addr, rec.Code, want)
		}
	}
}

// TestAllowListPerConnection: with ConnContext the address check is made
// once per connection, with the same verdicts as per request; over a real
// kept-alive loopback connection (loopback is always allowed) every
// request is served.
func TestAllowListPerConnection(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	h := api.New(api.Config{Hosts: testHosts, Store: storetest.MustOpen(t), Logger: quietLogger(), Allow: allow})
	for addr, want := range map[string]int{
		"10.1.2.3:1": 200, "127.0.0.1:1": 200, "[::1]:1": 200, "192.168.1.20:50000": 403, "203.0.113.5:1": 403,
	} {
		c1, c2 := net.Pipe()
		ctx := h.ConnContext(context.Background(), remoteConn{c1, addr})
		c1.Close()
		c2.Close()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/v2/hello", nil).WithContext(ctx)
		req.RemoteAddr = addr
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("hello over a connection from %s: %d, want %d", addr, rec.Code, want)
		}
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnContext = h.ConnContext
	ts.Start()
	defer ts.Close()
	for i := range 3 {
		resp, err := ts.Client().Get(ts.URL + "/api/v2/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("request %d over loopback: %d, want 200", i, resp.StatusCode)
		}
	}
}

// remoteConn is a connection from a given address.
type remoteConn struct {
	net.Conn
	addr string
}

func (c remoteConn) RemoteAddr() net.Addr {
	ap, err := netip.ParseAddrPort(c.addr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

func TestStoreClosed(t *testing.T) {
	ts := newServer(t, api.Config{})
	seed(t, ts.store)
	if err := ts.store.Close(); err != nil {
		t.Fatal(err)
	}
	wantError(t, "list", ts.get(t, "/api/v2/list"), 503, api.CodeUnavailable, "store")
	wantError(t, "list by number", ts.get(t, "/api/v2/list?number=50259"), 503, api.CodeUnavailable, "store")
	wantError(t, "bill", ts.get(t, "/api/v2/bill/byid/123456789012345678901"), 503, api.CodeUnavailable, "store")
	wantError(t, "receipt", ts.post(t, "/api/v2/receipts", receiptBody("ev-1", "SELL", "", "")), 503, api.CodeUnavailable, "store")
	wantError(t, "backup", ts.get(t, "/admin/api/backup"), 503, api.CodeUnavailable, "store")
	wantError(t, "journal", ts.get(t, "/admin/api/journal"), 503, api.CodeUnavailable, "store")
	if a := ts.get(t, "/healthz"); a.status != 503 {
		t.Errorf("healthz with the store closed: %d %s", a.status, a.body)
	}
	// hello answers from memory: the daemon is there, the store is not.
	if a := ts.get(t, "/api/v2/hello"); a.status != 200 {
		t.Errorf("hello with the store closed: %d", a.status)
	}
}

func TestHealthz(t *testing.T) {
	ts := newServer(t, api.Config{})
	a := ts.get(t, "/healthz")
	if a.status != 200 || string(a.body) != "ok" {
		t.Errorf("healthz = %d %q", a.status, a.body)
	}
}

func TestMetrics(t *testing.T) {
	ts := newServer(t, api.Config{})
	seed(t, ts.store)
	ts.get(t, "/api/v2/bill/byid/123456789012345678901")
	ts.get(t, "/api/v2/bill/byid/123456789012345678901")
	ts.get(t, "/api/v2/bill/byid/1")
	ts.post(t, "/api/v2/receipts", receiptBody("ev-1", "SELL", "", ""))
	ts.post(t, "/api/v2/receipts", receiptBody("ev-1", "SELL", "", ""))
	a := ts.get(t, "/metrics")
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics = %d %q", a.status, a.header.Get("Content-Type"))
	}
	for _, want := range []string{
		`shopbridge_requests_total{kind="BILL",status="200"} 2`,
		`shopbridge_requests_total{kind="BILL",status="404"} 1`,
		`shopbridge_requests_total{kind="RECEIPT",status="200"} 2`,
		`shopbridge_request_duration_seconds_count{kind="BILL",status="200"} 2`,
		`shopbridge_request_duration_seconds_bucket{kind="BILL",status="200",le="+Inf"} 2`,
		`shopbridge_receipts_accepted_total 1`,
		`shopbridge_outbox_receipts 1`,
		`shopbridge_store_commits_total `,
	} {
		if !strings.Contains(string(a.body), want+"\n") && !strings.Contains(string(a.body), want) {
			t.Errorf("metrics lack %q:\n%s", want, a.body)
		}
	}
}

func TestJournalRecords(t *testing.T) {
	ts := newServer(t, api.Config{})
	seed(t, ts.store)
	ts.get(t, "/api/v2/list?date=2026-03-22&number=50%20259", "X-Evotor-Device-UUID", "dev-7", "Authorization", "Bearer tok")
	e := ts.lastEntry(t)
	if e.Kind != "LIST" || e.Method != "GET" || e.Path != "/api/v2/list" || e.Query != "date=2026-03-22&number=50 259" ||
		e.Device != "dev-7" || e.Client != "127.0.0.1" || e.Status != 200 || string(e.RespBody) != "[]" || e.Source != "store" {
		t.Errorf("journal entry = %+v", e)
	}
	body := receiptBody("ev-j", "SELL", "", "")
	ts.post(t, "/api/v2/receipts", body)
	// An accepted receipt's bytes are in the store: the entry names it.
	if e := ts.lastEntry(t); e.Kind != "RECEIPT" || e.ReqReceipt != "ev-j" || e.ReqBody != nil || e.Status != 200 {
		t.Errorf("receipt entry = %+v", e)
	}
	// A refused one keeps its own bytes.
	other := receiptBody("ev-j", "PAYBACK", "", "")
	ts.post(t, "/api/v2/receipts", other)
	if e := ts.lastEntry(t); e.Status != 409 || e.ReqReceipt != "" || string(e.ReqBody) != other {
		t.Errorf("conflicting receipt entry = %+v", e)
	}
	ts.post(t, "/api/v2/receipts", body)
	if e := ts.lastEntry(t); e.Source != "duplicate" {
		t.Errorf("duplicate receipt entry source %q", e.Source)
	}
	ts.get(t, "/api/v2/bill/byid/1")
	if e := ts.lastEntry(t); e.Kind != "BILL" || e.Status != 404 || !strings.Contains(string(e.RespBody), `"code":2004`) {
		t.Errorf("404 entry = %+v", e)
	}
	for _, e := range ts.journal.Entries() {
		if strings.Contains(fmt.Sprintf("%+v", e), "tok") {
			t.Errorf("the Authorization token reached the journal: %+v", e)
		}
	}
}

// TestConcurrentTerminals drives every call at once from many goroutines:
// pooled buffers, metrics and the journal must not mix answers up (run
// with -race).
func TestConcurrentTerminals(t *testing.T) {
	ts := newServer(t, api.Config{})
	seed(t, ts.store)
	bill := bytes.TrimSpace(mustRead(t, "testdata/bill.json"))
	wantList := listOf(0, 1, 2, 3)
	commits := ts.store.Commits()
	const workers, rounds = 16, 10
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds*4)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := ts.Client()
			get := func(path string) (int, []byte) {
				resp, err := client.Get(ts.URL + path)
				if err != nil {
					return 0, []byte(err.Error())
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, b
			}
			for i := range rounds {
				if st, b := get("/api/v2/list?number=50259"); st != 200 || string(b) != listOf(1) {
					errs <- fmt.Sprintf("number list: %d %s", st, b)
				}
				if st, b := get("/api/v2/bill/byid/123456789012345678901"); st != 200 || !bytes.Equal(b, bill) {
					errs <- fmt.Sprintf("bill: %d %.80s", st, b)
				}
				if st, b := get("/api/v2/list?date=2026-03-20"); st != 200 || string(b) != listOf(3) {
					errs <- fmt.Sprintf("date list: %d %s", st, b)
				}
				resp, err := client.Post(ts.URL+"/api/v2/receipts", "application/json",
					strings.NewReader(receiptBody(fmt.Sprintf("ev-%d-%d", w, i), "SELL", "", "")))
				if err != nil {
					errs <- err.Error()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Sprintf("receipt: %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if a := ts.get(t, "/api/v2/list"); string(a.body) != wantList {
		t.Errorf("list after the load = %s", a.body)
	}
	st, _ := ts.store.Stats()
	if st.Receipts != workers*rounds {
		t.Errorf("%d receipts stored, want %d", st.Receipts, workers*rounds)
	}
	t.Logf("%d receipts over HTTP from %d clients took %d commits", workers*rounds, workers, ts.store.Commits()-commits)
}
